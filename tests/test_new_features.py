"""What users of Flyway, Alembic, Sqitch and Django reach for (issue 15): migrate / rollback --to,
settings in pyproject.toml, accept (Flyway repair), status history, confirming a large rollback."""

import os
import pty

from support import ALL_IDS, EXPECTED_INDEXDEFS, applied_ids, assert_all_built, index_defs, invoke

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
