"""invoke migrate / rollback / status against a real server, run as a user runs them: migrate and
rollback --to, confirming a rollback of several, status and its history, where we connect."""

import json
import os
import pty
import re
import subprocess
import uuid

import pytest

from support import (ALL_IDS, EXPECTED_INDEXDEFS, applied_ids, assert_all_built, assert_none_built, assert_ok,
                     assert_refused, clean_env, index_defs, invoke)
from upstream_indexes.config import Target, resolve_target

CLAIM, DRIFT, UPLOAD = sorted(ALL_IDS)


def index_oids(conn):
    return dict(conn.execute("SELECT relname, oid FROM pg_class WHERE relname = ANY(%s)",
                             [list(EXPECTED_INDEXDEFS)]).fetchall())


def test_migrate_builds_the_three_indexes_valid_with_exact_definitions(db):
    result = invoke("migrate", "--dsn", db.url)
    assert result.returncode == 0, result.stderr
    with db.connect() as conn:
        assert_all_built(conn)
    for name in EXPECTED_INDEXDEFS:
        assert f"built {name} in" in result.stdout
    assert result.stdout.splitlines()[0].startswith("database: ")


@pytest.mark.slow
def test_second_migrate_changes_nothing_and_says_so(db):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    with db.connect() as conn:
        before = index_oids(conn)
    again = invoke("migrate", "--dsn", db.url)
    assert again.returncode == 0, again.stderr
    assert "nothing to migrate" in again.stdout
    with db.connect() as conn:
        assert index_oids(conn) == before
        assert_all_built(conn)


@pytest.mark.slow
def test_rollback_one_then_all_then_migrate_round_trip(db):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    one = invoke("rollback", "--dsn", db.url)
    assert one.returncode == 0, one.stderr
    with db.connect() as conn:
        assert set(index_defs(conn)) == {"claim_cust_date_outcome_cov", "drift_cust_date_sev_cov"}
        assert applied_ids(conn) == ALL_IDS - {"0003.upload_cust_date_status_cov"}
    everything = invoke("rollback", "--all", "--yes", "--dsn", db.url)
    assert everything.returncode == 0, everything.stderr
    with db.connect() as conn:
        assert_none_built(conn)
    back = invoke("migrate", "--dsn", db.url)
    assert back.returncode == 0, back.stderr
    with db.connect() as conn:
        assert_all_built(conn)


@pytest.mark.slow
def test_rollback_count(db):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    assert invoke("rollback", "--count", "2", "--yes", "--dsn", db.url).returncode == 0
    with db.connect() as conn:
        assert set(index_defs(conn)) == {"claim_cust_date_outcome_cov"}
        assert applied_ids(conn) == {"0001.claim_cust_date_outcome_cov"}


@pytest.mark.slow
def test_rollback_count_with_all_is_refused(db):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    assert_refused(invoke("rollback", "--dsn", db.url, "--count", "1", "--all"), "--count and --all")
    status = invoke("status", "--dsn", db.url)
    assert status.returncode == 0, status.stdout  # nothing rolled back


def test_rollback_with_nothing_applied_says_so(db):
    result = invoke("rollback", "--dsn", db.url)
    assert result.returncode == 0
    assert "nothing to roll back" in result.stdout


# --- --to in both directions ----------------------------------------------------------

@pytest.mark.slow
def test_migrate_to_and_rollback_to(db):
    assert_ok(invoke("migrate", "--dsn", db.url, "--to", "0002"))
    with db.connect() as conn:
        assert applied_ids(conn) == {CLAIM, DRIFT}
        assert set(index_defs(conn)) == {"claim_cust_date_outcome_cov", "drift_cust_date_sev_cov"}
    again = assert_ok(invoke("migrate", "--dsn", db.url, "--to", CLAIM))
    assert f"nothing to migrate: all 1 migrations up to {CLAIM} applied" in again.stdout

    assert_ok(invoke("migrate", "--dsn", db.url))
    with db.connect() as conn:
        assert_all_built(conn)

    back = assert_ok(invoke("rollback", "--dsn", db.url, "--to", "0001", "--yes"))
    assert back.stdout.index(f"{UPLOAD}: rolled back") < back.stdout.index(f"{DRIFT}: rolled back")  # newest first
    with db.connect() as conn:
        assert applied_ids(conn) == {CLAIM}
        assert set(index_defs(conn)) == {"claim_cust_date_outcome_cov"}
    assert_ok(invoke("rollback", "--dsn", db.url, "--to", "0001"))  # nothing after it: nothing to do
    with db.connect() as conn:
        assert applied_ids(conn) == {CLAIM}


@pytest.mark.slow
def test_to_an_unknown_or_unapplied_migration_is_refused(db):
    assert_refused(invoke("migrate", "--dsn", db.url, "--to", "0009"), "--to 0009: no such migration")
    assert_refused(invoke("rollback", "--dsn", db.url, "--to", "0002"), f"--to 0002: {DRIFT} is not applied")
    assert_refused(invoke("rollback", "--dsn", db.url, "--to", "0001", "--all"), "--all and --to together")
    assert_refused(invoke("migrate", "--dsn", db.url, "--to", ""), "--to is empty")
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


@pytest.mark.slow
def test_rollback_of_several_asks_on_a_terminal_and_refuses_without_one(db):
    assert_ok(invoke("migrate", "--dsn", db.url))
    no_terminal = assert_refused(invoke("rollback", "--all", "--dsn", db.url), "No terminal to ask on: pass --yes")
    assert "roll back 3 migrations" in no_terminal[0]
    assert_refused(invoke("rollback", "--count", "2", "--dsn", db.url), "pass --yes")
    declined = on_terminal("rollback", "--all", "--dsn", db.url, answer="n\n")
    assert declined.returncode == 2, declined.stdout + declined.stderr
    assert declined.stderr.endswith("[y/N] error: rollback not confirmed; nothing was changed\n"), declined.stderr
    with db.connect() as conn:
        assert_all_built(conn)

    assert_ok(invoke("rollback", "--dsn", db.url))  # one: no question
    assert_ok(on_terminal("rollback", "--all", "--dsn", db.url, answer="y\n"))
    with db.connect() as conn:
        assert applied_ids(conn) == set() and index_defs(conn) == {}


# --- status ---------------------------------------------------------------------------

def status_rows(stdout):
    return {line.split()[0]: line.split()[1:4] for line in stdout.splitlines() if line[:4].isdigit()}


@pytest.mark.slow
def test_status_before_during_and_after(db):
    before = invoke("status", "--dsn", db.url)
    assert before.returncode == 1
    assert {row[0] for row in status_rows(before.stdout).values()} == {"pending"}
    assert {row[2] for row in status_rows(before.stdout).values()} == {"missing"}
    with db.connect() as conn:
        # status is read-only: yoyo's tables are not created by it
        assert conn.execute("SELECT to_regclass('_yoyo_migration')").fetchone()[0] is None

    assert invoke("migrate", "--dsn", db.url).returncode == 0
    assert invoke("rollback", "--dsn", db.url).returncode == 0
    during = invoke("status", "--dsn", db.url)
    assert during.returncode == 1
    rows = status_rows(during.stdout)
    assert rows["0001.claim_cust_date_outcome_cov"] == ["applied", "claim_cust_date_outcome_cov", "valid"]
    assert rows["0003.upload_cust_date_status_cov"] == ["pending", "upload_cust_date_status_cov", "missing"]

    assert invoke("migrate", "--dsn", db.url).returncode == 0
    after = invoke("status", "--dsn", db.url)
    assert after.returncode == 0, after.stdout
    assert {tuple(row) for row in status_rows(after.stdout).values()} == {
        ("applied", name, "valid") for name in EXPECTED_INDEXDEFS}


def test_status_flags_an_invalid_index(db):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    with db.connect() as conn:
        conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'drift_cust_date_sev_cov'::regclass")
    result = invoke("status", "--dsn", db.url)
    assert result.returncode == 1
    assert status_rows(result.stdout)["0002.drift_cust_date_sev_cov"][2] == "INVALID"


@pytest.mark.parametrize("forward", ["0001.claim_cust_date_outcome_cov.sql", "0002.drift_cust_date_sev_cov.sql",
                                     "0003.upload_cust_date_status_cov.sql"])
def test_psql_on_a_forward_file_gives_the_runners_index(db, server, forward):
    from upstream_indexes.paths import MIGRATIONS_DIR

    subprocess.run([server.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db.conninfo, "-f",
                    str(MIGRATIONS_DIR / forward)], check=True, capture_output=True, env=clean_env())
    with db.connect() as conn:
        by_psql = index_defs(conn)
    name = forward.split(".")[1]
    assert by_psql == {name: (EXPECTED_INDEXDEFS[name], True)}


@pytest.mark.slow
def test_status_shows_when_by_whom_and_how_long(db):
    assert_ok(invoke("migrate", "--dsn", db.url, "--to", "0002"))
    assert_ok(invoke("rollback", "--dsn", db.url))
    assert_ok(invoke("migrate", "--dsn", db.url))
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


# --- where we connect -------------------------------------------------------

def database_line(result):
    return result.stdout.splitlines()[0]


def test_dsn_flag_wins_over_database_url_and_libpq_env(db, server):
    other = server.create_database()
    try:
        env = clean_env(DATABASE_URL=server.url(other), PGDATABASE=other)
        result = invoke("status", "--dsn", db.url, env=env)
        assert f"/{db.name}" in database_line(result) and "(from --dsn)" in database_line(result)
    finally:
        server.drop_database(other)


def test_database_url_wins_over_libpq_env(db, server):
    other = server.create_database()
    try:
        result = invoke("status", env=clean_env(DATABASE_URL=db.url, PGDATABASE=other))
        assert f"/{db.name}" in database_line(result) and "(from DATABASE_URL)" in database_line(result)
    finally:
        server.drop_database(other)


def test_libpq_environment_is_used_when_no_url(db):
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(db.conninfo)
    env = clean_env(**{f"PG{key.upper()}": str(value) for key, value in params.items()
                       if key in ("host", "port", "user", "password")}, PGDATABASE=db.name)
    result = invoke("migrate", env=env)
    assert result.returncode == 0, result.stderr
    assert "(from libpq environment)" in database_line(result)
    with db.connect() as conn:
        assert_all_built(conn)


def test_embedded_demo_is_the_last_resort():
    assert resolve_target(None, {}) == Target(None, "embedded demo server", is_demo=True)
    assert resolve_target(None, {"PGSERVICE": "prod"}).source == "libpq environment"
    assert resolve_target("postgres://u@h/d", {"DATABASE_URL": "postgresql://x@y/z"}).conninfo == "postgres://u@h/d"


def test_yoyo_style_url_is_accepted(db):
    result = invoke("status", "--dsn", db.url.replace("postgresql://", "postgresql+psycopg://"))
    assert result.returncode == 1, result.stderr  # pending work, but connected


def test_dry_run_says_what_migrate_would_do_and_changes_nothing(db):
    with db.connect() as conn:
        conn.execute("CREATE INDEX drift_cust_date_sev_cov ON upstream_driftevent "
                     "USING btree (customer_id, created_at DESC, severity) INCLUDE (id)")  # by hand
    result = invoke("migrate", "--dry-run", "--dsn", db.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0001.claim_cust_date_outcome_cov: migrate builds claim_cust_date_outcome_cov on upstream_claimrecord" \
        in result.stdout
    assert "drift_cust_date_sev_cov exists, valid and identical to ours: migrate only records it" in result.stdout
    assert result.stdout.rstrip().endswith("dry run: nothing was changed")
    with db.connect() as conn:
        assert applied_ids(conn) == set()
        assert conn.execute("SELECT to_regclass('_yoyo_migration')").fetchone()[0] is None
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname LIKE '%_cov'").fetchone()[0] == 1


# --- no password in any output ---------------------------------------------

SECRET = "Sup3r-s3cret-pw"


@pytest.mark.slow
def test_no_password_in_any_output(db, server):
    role = f"app_{uuid.uuid4().hex[:8]}"
    with db.connect() as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{SECRET}'")
    try:
        url = server.url(db.name, user=role, password=SECRET)
        outputs = [invoke(*args, "--dsn", url) for args in (["migrate"], ["status"], ["rollback", "--all", "--yes"])]
        assert [r.returncode for r in outputs] == [0, 0, 0], [r.stderr for r in outputs]
        outputs.append(invoke("status", "--dsn", url.replace(db.name, "no_such_database")))
        outputs.append(invoke("status", env=clean_env(DATABASE_URL=url)))
        outputs.append(invoke("status", "--dsn", f"host=localhost password={SECRET} port=notaport"))
        assert outputs[3].returncode == 2 and "no_such_database" in outputs[3].stderr
        for result in outputs:
            assert SECRET not in result.stdout + result.stderr
        assert "***" in database_line(outputs[0])
    finally:
        with db.connect() as conn:
            conn.execute(f"REASSIGN OWNED BY {role} TO CURRENT_USER")
            conn.execute(f"DROP ROLE {role}")
