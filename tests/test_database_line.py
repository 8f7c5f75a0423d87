"""The database line (issue 23): every command's first line, db.start's (and db.reset's, the same code)
and --json's database.name say the same thing the same way, and so do the docs' examples of it."""

import json
import re

import pytest

from support import clean_env, invoke
from upstream_indexes import embedded
from upstream_indexes.paths import ROOT

LINE = re.compile(r"^database: (?P<name>.+) \((?:demo data|from [^)]+)\)$")


@pytest.mark.pg
def test_the_embedded_demo_reads_the_same_everywhere():
    was_running = embedded.is_running()
    try:
        started = invoke("db.start")
        status = invoke("status")
        as_json = invoke("status", "--json")
    finally:
        if not was_running:
            embedded.stop()
    assert started.returncode == 0, started.stderr
    line = started.stdout.splitlines()[-1]
    assert line == "database: embedded demo server in .pgdata/ (demo data)", started.stdout
    assert status.stdout.splitlines()[0] == line, status.stdout
    assert as_json.stderr.splitlines()[0] == line, as_json.stderr
    database = json.loads(as_json.stdout)["database"]
    assert database == {"name": "embedded demo server in .pgdata/", "source": "embedded demo server", "demo": True}


def test_a_dsn_reads_the_same_in_the_line_and_in_json(db):
    line = invoke("status", "--dsn", db.url).stdout.splitlines()[0]
    as_json = invoke("status", "--json", "--dsn", db.url, env=clean_env())
    assert LINE.match(line) and line.endswith("(from --dsn)"), line
    assert json.loads(as_json.stdout)["database"]["name"] == LINE.match(line)["name"]


def test_the_docs_show_the_line_as_the_commands_print_it():
    shown = [(path.name, line) for path in sorted((ROOT / "docs").glob("*.md"))
             for line in path.read_text().splitlines() if line.startswith("database: ")]
    assert shown
    assert all(LINE.match(line) for _, line in shown), shown
    assert all("demo data" not in line or line == "database: embedded demo server in .pgdata/ (demo data)"
               for _, line in shown), shown
