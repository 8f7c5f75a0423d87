"""No demo by accident (issue 19): `embedded = false` under [tool.upstream-indexes], or
UPSTREAM_INDEXES_EMBEDDED=0, turns the embedded fallback off; then a run with no database
configured is one line naming the switch and the ways to configure one, exit 2, nothing started."""

import pytest

from support import assert_refused, clean_env, invoke, json_report, settings_env
from upstream_indexes import settings
from upstream_indexes.config import Target, resolve_target
from upstream_indexes.errors import ConnectionProblem

WAYS = "give --dsn URL, or set DATABASE_URL (postgresql://user@host:5432/db), or libpq's PGHOST / PGSERVICE / PGDATABASE"


@pytest.mark.parametrize("task", ["migrate", "rollback", "status", "verify"])
def test_the_variable_turns_the_demo_off(task):
    result = invoke(task, env=clean_env(UPSTREAM_INDEXES_EMBEDDED="0"))
    assert_refused(result, f"no database configured, and the embedded demo is off "
                           f"(UPSTREAM_INDEXES_EMBEDDED=0): {WAYS}")
    assert result.stdout == "", result.stdout  # no database line, no server started


@pytest.mark.slow
def test_the_setting_turns_the_demo_off_and_names_the_url_variable(tmp_path):
    env = settings_env(tmp_path, 'embedded = false\ndsn-env = "APP_DATABASE_URL"')
    result = invoke("migrate", env=env)
    assert_refused(result, f"no database configured, and the embedded demo is off (embedded = false in "
                           f"{tmp_path / 'pyproject.toml'}): give --dsn URL, or set APP_DATABASE_URL")
    doc = json_report(invoke("migrate", "--json", env=env))
    assert doc["database"] is None and doc["exit_code"] == 2 and "embedded demo is off" in doc["error"]


def test_a_configured_database_is_used_as_before(db, tmp_path):
    result = invoke("status", env=settings_env(tmp_path, "embedded = false", UPSTREAM_INDEXES_EMBEDDED="0",
                                               DATABASE_URL=db.url))
    assert result.returncode == 1, result.stdout + result.stderr  # connected: three migrations pending
    assert result.stdout.splitlines()[0].endswith("(from DATABASE_URL)"), result.stdout


@pytest.fixture
def settings_file(tmp_path, monkeypatch):
    """In-process: settings read from a file of the test's (`embedded = false`)."""
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.upstream-indexes]\nembedded = false\n")
    monkeypatch.setenv(settings.ENV_FILE, str(path))
    settings.load.cache_clear()
    yield path
    settings.load.cache_clear()


def test_the_variable_wins_over_the_setting(settings_file):
    with pytest.raises(ConnectionProblem, match=r"embedded demo is off \(embedded = false in "):
        resolve_target(None, {})
    with pytest.raises(ConnectionProblem, match=r"embedded demo is off \(UPSTREAM_INDEXES_EMBEDDED=no\)"):
        resolve_target(None, {"UPSTREAM_INDEXES_EMBEDDED": "no"})
    assert resolve_target(None, {"UPSTREAM_INDEXES_EMBEDDED": "1"}) == Target(None, "embedded demo server",
                                                                            is_demo=True)


def test_a_bad_switch_is_one_error_line(tmp_path):
    assert_refused(invoke("status", env=clean_env(UPSTREAM_INDEXES_EMBEDDED="maybe")),
                   "UPSTREAM_INDEXES_EMBEDDED must be 0 or 1 (or false, true, no, yes, off, on), not 'maybe'")
    assert_refused(invoke("status", env=settings_env(tmp_path, 'embedded = "no"')),
                   "embedded must be true or false, not 'no'")
