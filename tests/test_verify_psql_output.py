"""The verify scripts as a DBA runs them with psql (issue 23): what they print on stdout is psql's
command tags, not the 170-column value of the settings expected.sql sets before the first check."""

import subprocess

import pytest

from support import clean_env, invoke
from upstream_indexes.paths import VERIFY_DIR


@pytest.mark.parametrize("script", ["indexes.sql", "plans.sql"])
def test_psql_prints_no_settings_value_before_the_checks(server, db, script):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    run = subprocess.run([server.psql, "-X", "-v", "ON_ERROR_STOP=1", "-d", db.conninfo, "-f",
                          str(VERIFY_DIR / script)], capture_output=True, text=True, env=clean_env(), timeout=120)
    assert run.returncode == 0, run.stderr
    assert "set_config" not in run.stdout and "index_name" not in run.stdout, run.stdout
    assert all(len(line) <= 80 for line in run.stdout.splitlines()), run.stdout
    assert "NOTICE:  pass: " in run.stderr
