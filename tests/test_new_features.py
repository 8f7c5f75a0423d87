"""What users of Flyway, Alembic, Sqitch and Django reach for (issue 15): migrate / rollback --to,
settings in pyproject.toml, accept (Flyway repair), status history, confirming a large rollback."""

import json
import os
import re
import pty

import pytest

from live import Holder
from support import ALL_IDS, applied_ids, assert_all_built, clean_env, index_defs, invoke
from upstream_indexes.settings import KEYS

CLAIM, DRIFT, UPLOAD = sorted(ALL_IDS)


def ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def refused(result, fragment):
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result


# --- --to in both directions ----------------------------------------------------------

def test_migrate_to_and_rollback_to(db):
    ok(invoke("migrate", "--dsn", db.url, "--to", "0002"))
    with db.connect() as conn:
        assert applied_ids(conn) == {CLAIM, DRIFT}
        assert set(index_defs(conn)) == {"claim_cust_date_outcome_cov", "drift_cust_date_sev_cov"}
    again = ok(invoke("migrate", "--dsn", db.url, "--to", CLAIM))
    assert f"nothing to migrate: all 1 migrations up to {CLAIM} applied" in again.stdout

    ok(invoke("migrate", "--dsn", db.url))
    with db.connect() as conn:
        assert_all_built(conn)

    back = ok(invoke("rollback", "--dsn", db.url, "--to", "0001", "--yes"))
    assert back.stdout.index(f"{UPLOAD}: rolled back") < back.stdout.index(f"{DRIFT}: rolled back")  # newest first
    with db.connect() as conn:
        assert applied_ids(conn) == {CLAIM}
        assert set(index_defs(conn)) == {"claim_cust_date_outcome_cov"}
    ok(invoke("rollback", "--dsn", db.url, "--to", "0001"))  # nothing after it: nothing to do
    with db.connect() as conn:
        assert applied_ids(conn) == {CLAIM}


def test_to_an_unknown_or_unapplied_migration_is_refused(db):
    refused(invoke("migrate", "--dsn", db.url, "--to", "0009"), "--to 0009: no such migration")
    refused(invoke("rollback", "--dsn", db.url, "--to", "0002"), f"--to 0002: {DRIFT} is not applied")
    refused(invoke("rollback", "--dsn", db.url, "--to", "0001", "--all"), "--all and --to together")
    refused(invoke("migrate", "--dsn", db.url, "--to", ""), "--to is empty")
    with db.connect() as conn:
        assert applied_ids(conn) == set() and index_defs(conn) == {}


# --- confirming a rollback of several indexes outside the demo ----------------------------

def on_terminal(*args, answer):
    """`invoke <args>` with a terminal as stdin, answering `answer` to whatever it asks."""
    primary, secondary = pty.openpty()
    try:
        os.write(primary, answer.encode())
        return invoke(*args, stdin=secondary)
    finally:
        os.close(primary)
        os.close(secondary)


def test_rollback_of_several_asks_on_a_terminal_and_refuses_without_one(db):
    ok(invoke("migrate", "--dsn", db.url))
    no_terminal = refused(invoke("rollback", "--all", "--dsn", db.url), "No terminal to ask on: pass --yes")
    assert "roll back 3 migrations" in no_terminal.stderr
    refused(invoke("rollback", "--count", "2", "--dsn", db.url), "pass --yes")
    declined = on_terminal("rollback", "--all", "--dsn", db.url, answer="n\n")
    assert declined.returncode == 2, declined.stdout + declined.stderr
    assert declined.stderr.endswith("[y/N] error: rollback not confirmed; nothing was changed\n"), declined.stderr
    with db.connect() as conn:
        assert_all_built(conn)

    ok(invoke("rollback", "--dsn", db.url))  # one: no question
    ok(on_terminal("rollback", "--all", "--dsn", db.url, answer="y\n"))
    with db.connect() as conn:
        assert applied_ids(conn) == set() and index_defs(conn) == {}


# --- settings in pyproject.toml ---------------------------------------------------------

def settings_env(tmp_path, text, **extra):
    """The environment of a run whose settings file is `text` under [tool.upstream-indexes]."""
    path = tmp_path / "pyproject.toml"
    path.write_text(f"[project]\nname = \"app\"\n\n[tool.upstream-indexes]\n{text}\n")
    return clean_env(UPSTREAM_INDEXES_SETTINGS=str(path), **extra)


def test_help_shows_the_effective_defaults(tmp_path):
    env = settings_env(tmp_path, 'max-wait = 7\nretries = 0\ndsn-env = "APP_DB"')
    shown = " ".join(invoke("--help", "migrate", env=env).stdout.split())
    assert "(default 7, from pyproject.toml [tool.upstream-indexes])" in shown, shown
    assert "(default 0, from pyproject.toml [tool.upstream-indexes])" in shown, shown
    assert "(default 5)" in shown and "(default: APP_DB, then PG* variables" in shown, shown
    built_in = " ".join(invoke("--help", "migrate").stdout.split())
    assert f"(default {KEYS['max-wait'].default})" in built_in and f"(default {KEYS['retries'].default})" in built_in


def test_settings_override_defaults_and_flags_override_settings(db, tmp_path):
    env = settings_env(tmp_path, "max-wait = 1\nretries = 0\nbackoff = 0", DATABASE_URL=db.url)
    holder = Holder(db.connect(), lock_table="upstream_claimrecord")  # keeps the claim build from starting
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
    result = invoke("status", env=settings_env(tmp_path, text))
    refused(result, fragment)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# --- accept (Flyway repair) -----------------------------------------------------------

def recorded_sha256(db, migration_id):
    with db.connect() as conn:
        row = conn.execute("SELECT sha256 FROM _upstream_indexes_checksum WHERE migration_id = %s",
                           [migration_id]).fetchone()
    return row and row[0]


def test_accept_records_a_reviewed_edit_and_refuses_a_changed_definition(db, migrations_copy):
    folder = ("--migrations", str(migrations_copy))
    refused(invoke("accept", "0002", "--dsn", db.url, *folder), f"{DRIFT} is not applied")
    ok(invoke("migrate", "--dsn", db.url, *folder))
    unchanged = ok(invoke("accept", "0002", "--dsn", db.url, *folder))
    assert "nothing to accept: its files are as applied" in unchanged.stdout

    old = recorded_sha256(db, DRIFT)
    rollback_file = migrations_copy / f"{DRIFT}.rollback.sql"
    rollback_file.write_text(rollback_file.read_text().replace("without blocking writes", "without blocking any write"))
    refused(invoke("migrate", "--dsn", db.url, *folder), "changed after it was applied")
    accepted = ok(invoke("accept", "0002", "--dsn", db.url, *folder))
    new = recorded_sha256(db, DRIFT)
    assert new != old
    assert f"sha256 {old} -> {new}" in accepted.stdout, accepted.stdout
    assert "nothing to migrate" in ok(invoke("migrate", "--dsn", db.url, *folder)).stdout
    ok(invoke("status", "--dsn", db.url, *folder))

    forward = migrations_copy / f"{DRIFT}.sql"
    forward.write_text(forward.read_text().replace("severity) INCLUDE (id)", "severity DESC) INCLUDE (id)"))
    refused(invoke("accept", DRIFT, "--dsn", db.url, *folder),
            f"{DRIFT}: not accepted: the catalog's drift_cust_date_sev_cov is foreign")
    assert recorded_sha256(db, DRIFT) == new


# --- status history -----------------------------------------------------------------------

def test_status_shows_when_by_whom_and_how_long(db):
    ok(invoke("migrate", "--dsn", db.url, "--to", "0002"))
    ok(invoke("rollback", "--dsn", db.url))
    ok(invoke("migrate", "--dsn", db.url))
    status = invoke("status", "--dsn", db.url)
    lines = status.stdout.splitlines()
    claim_line = next(i for i, line in enumerate(lines) if line.startswith(CLAIM))
    note = re.fullmatch(r"  applied (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC by (\S+)@(\S+) "
                        r"\(role \S+ from (?:local socket|[\d.:a-f]+), ([\d.]+)s\)", lines[claim_line + 1])
    assert note, lines
    assert float(note[4]) > 0
    doc = json.loads(invoke("status", "--dsn", db.url, "--json").stdout)
    operations = [(e["migration"], e["operation"]) for e in doc["history"]]
    assert operations == [(CLAIM, "apply"), (DRIFT, "apply"), (DRIFT, "rollback"), (DRIFT, "apply"),
                          (UPLOAD, "apply")], operations
    assert all(re.fullmatch(r"role \S+ from \S+( socket)?, [\d.]+s", e["note"]) for e in doc["history"])


def test_build_settings_reach_the_server_and_a_bad_one_changes_nothing(db, tmp_path):
    bad = settings_env(tmp_path, 'maintenance-work-mem = "1kB"', DATABASE_URL=db.url)
    refused(invoke("migrate", env=bad), "settings: maintenance_work_mem = '1kB': ")  # the server's range
    with db.connect() as conn:
        assert index_defs(conn) == {}
    good = settings_env(tmp_path, 'maintenance-work-mem = "128MB"\nmax-parallel-maintenance-workers = 0',
                        DATABASE_URL=db.url)
    ok(invoke("migrate", env=good))
    with db.connect() as conn:
        assert_all_built(conn)
