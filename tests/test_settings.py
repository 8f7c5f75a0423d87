"""Settings in pyproject.toml's [tool.upstream-indexes]: they replace the built-in defaults (and
`invoke --help` shows the effective ones), a flag overrides them, `dsn-env` names the variable
holding the database URL, `migrations` is relative to the file; the build settings reach the
server; a bad setting is one error line."""

import pytest

from live import Holder
from support import CLAIMS, assert_all_built, assert_ok, assert_refused, index_defs, invoke, settings_env
from upstream_indexes.settings import KEYS


def test_help_shows_the_effective_defaults(tmp_path):
    env = settings_env(tmp_path, 'max-wait = 7\nretries = 0\ndsn-env = "APP_DB"')
    shown = " ".join(invoke("--help", "migrate", env=env).stdout.split())
    assert "(default 7, from pyproject.toml [tool.upstream-indexes])" in shown, shown
    assert "(default 0, from pyproject.toml [tool.upstream-indexes])" in shown, shown
    assert "(default 5)" in shown and "(default: APP_DB, then PG* variables" in shown, shown
    built_in = " ".join(invoke("--help", "migrate").stdout.split())
    assert f"(default {KEYS['max-wait'].default})" in built_in and f"(default {KEYS['retries'].default})" in built_in


@pytest.mark.slow
def test_settings_override_defaults_and_flags_override_settings(db, tmp_path):
    env = settings_env(tmp_path, "max-wait = 1\nretries = 0\nbackoff = 0", DATABASE_URL=db.url)
    holder = Holder(db.connect(), lock_table=CLAIMS)  # keeps the claim build from starting
    try:
        from_settings = invoke("migrate", env=env)
        from_flags = invoke("migrate", "--max-wait", "2", "--retries", "1", env=env)
    finally:
        holder.release()
    assert from_settings.returncode == 3, from_settings.stdout + from_settings.stderr
    assert "waiting more than 1s on each of 1 attempts" in from_settings.stderr, from_settings.stderr
    assert from_flags.returncode == 3, from_flags.stdout + from_flags.stderr
    assert "waiting more than 2s on each of 2 attempts" in from_flags.stderr, from_flags.stderr


def test_dsn_env_names_the_variable_holding_the_url(db, tmp_path):
    env = settings_env(tmp_path, 'dsn-env = "APP_DATABASE"', APP_DATABASE=db.url,
                       DATABASE_URL="postgresql://nobody@127.0.0.1:1/nothing")
    result = invoke("status", env=env)
    assert result.returncode == 1, result.stdout + result.stderr  # connected: pending work
    assert result.stdout.splitlines()[0].endswith("(from APP_DATABASE)"), result.stdout


def test_migrations_folder_relative_to_the_settings_file(tmp_path, migrations_copy):
    for path in migrations_copy.glob("0003.*"):
        path.unlink()
    env = settings_env(migrations_copy.parent, 'migrations = "migrations"')
    script = invoke("sql", env=env)
    assert script.returncode == 0, script.stderr
    assert "claim_cust_date_outcome_cov" in script.stdout and "upload_cust_date_status_cov" not in script.stdout


@pytest.mark.parametrize("text, fragment", [
    ("max_wait = 5", "unknown key 'max_wait'"),
    ("retries = -1", "retries must be a whole number >= 0, not -1"),
    ('max-wait = "soon"', "max-wait must be a number >= 0.1, not 'soon'"),
    ("max-wait = ", "cannot read"),
    ('maintenance-work-mem = "lots"', "maintenance-work-mem must be a size such as \"1GB\""),
])
def test_a_bad_setting_is_one_error_line(tmp_path, text, fragment):
    assert_refused(invoke("status", env=settings_env(tmp_path, text)), fragment)


@pytest.mark.slow
def test_build_settings_reach_the_server_and_a_bad_one_changes_nothing(db, tmp_path):
    bad = settings_env(tmp_path, 'maintenance-work-mem = "1kB"', DATABASE_URL=db.url)
    assert_refused(invoke("migrate", env=bad), "settings: maintenance_work_mem = '1kB': ")  # the server's range
    with db.connect() as conn:
        assert index_defs(conn) == {}
    good = settings_env(tmp_path, 'maintenance-work-mem = "128MB"\nmax-parallel-maintenance-workers = 0',
                        DATABASE_URL=db.url)
    assert_ok(invoke("migrate", env=good))
    with db.connect() as conn:
        assert_all_built(conn)
