"""Output whose reader has gone (`invoke status | head -1`): no traceback, the work carries on,
the command's own exit code."""

import json
import os
import subprocess

import pytest

from support import assert_all_built, clean_env, invoke_argv
from upstream_indexes.paths import ROOT


def run_with_closed(stream: str, *args: str) -> subprocess.CompletedProcess:
    """`invoke <args>` with `stream` ("stdout" or "stderr") a pipe nobody reads any more; the other captured."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to write_end now fails with EPIPE, as after `head` exits
    other = "stderr" if stream == "stdout" else "stdout"
    try:
        return subprocess.run(invoke_argv(*args), cwd=ROOT, env=clean_env(), text=True, timeout=300,
                              **{stream: write_end, other: subprocess.PIPE})
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", [("sql",), ("--list",), ("django-state", "--after", "0018_add_claim_indexes")])
def test_printing_tasks_end_quietly_when_stdout_is_closed(args):
    result = run_with_closed("stdout", *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_migrate_finishes_its_work_when_stdout_is_closed(db):
    result = run_with_closed("stdout", "migrate", "--dsn", db.url)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    with db.connect() as conn:
        assert_all_built(conn)


def test_json_report_complete_when_stderr_is_closed(db):
    result = run_with_closed("stderr", "status", "--json", "--dsn", db.url)
    assert result.returncode == 1  # pending work: status's own code
    assert json.loads(result.stdout)["exit_code"] == 1
