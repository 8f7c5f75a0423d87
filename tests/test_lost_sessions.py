"""No session of ours is lost silently: each of migrate's four server sessions is terminated in turn
(pg_terminate_backend, as a DBA or an idle timeout does) while its claim build waits on a writer.

- the watchdog's: it connects again, says so, and --max-wait still ends the wait (exit 3); when it
  cannot connect again, it cancels the build rather than let it wait unbounded (exit 3);
- the build's, the ledger's (yoyo's) and the one holding the migrator lock: the run ends in one
  line, exit 1 (a step failed part-way), no traceback and no library warning.

After each, the next `invoke migrate` converges.
"""

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from live import WRITERS_WAIT, Holder, Running, build_phase, wait_until, waiting_claim_build
from support import CLAIM_INDEX, CLAIMS, app_role, error_lines, invalid_index_count, migrate_converges
from upstream_indexes.config import APPLICATION_NAME

pytestmark = pytest.mark.slow  # each a migrate held up, a session ended, and the next run


def sessions_of_migrate(conn: psycopg.Connection) -> dict[str, int]:
    """The pids of a migrate's four sessions while its build waits, in the order it opens them: the
    runner's (which holds the migrator lock), the ledger's, the build's (running the CREATE INDEX) and
    its watchdog's."""
    def found():
        ours = conn.execute(
            "SELECT pid, query LIKE '%%CREATE INDEX CONCURRENTLY%%' FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = %s"
            " ORDER BY backend_start", [APPLICATION_NAME]).fetchall()
        locker = conn.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = ANY(%s)",
                              [[pid for pid, _ in ours]]).fetchone()
        if len(ours) != 4 or not ours[2][1] or not locker:
            return None
        assert ours[0][0] == locker[0], (ours, locker)
        return dict(zip(("runner", "ledger", "build", "watchdog"), (pid for pid, _ in ours)))
    return wait_until(found, "migrate's four sessions, its build waiting")


def terminate(conn: psycopg.Connection, pid: int) -> None:
    assert conn.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]


def test_the_watchdog_terminated_connects_again_and_max_wait_still_ends_the_wait(db):
    """The issue's measurement: the watchdog's backend terminated while a build waited behind an open
    writer; --max-wait 8 did not end the wait, the writer's end did (45 s later, exit 0). Here the
    writer never ends before the run does."""
    with db.connect() as conn:
        holder = Holder(db.connect(), lock_table=CLAIMS)
        run = Running("migrate", "--dsn", db.url, "--max-wait", "6", "--retries", "0")
        sessions = sessions_of_migrate(conn)
        terminate(conn, sessions["watchdog"])
        try:
            result = run.finish(timeout=60)  # the holder is released only after the run has ended
        finally:
            holder.release()
        assert invalid_index_count(conn) == 0
    assert result.returncode == 3, result.stdout + result.stderr
    assert (f"  {CLAIM_INDEX}: the watchdog's connection failed (terminating connection due to administrator "
            "command); connected again: it watches on, --max-wait holds") in result.stdout
    [error] = error_lines(result)
    assert error.startswith(f"error: {CLAIM_INDEX} not built: pid {holder.pid} (") and "more than 6s" in error
    migrate_converges(db.url, db.connect)


def test_a_watchdog_that_cannot_connect_again_cancels_the_build(db):
    """Its role's connection limit, lowered meanwhile, leaves it no room: rather than let the build wait
    on without --max-wait, it cancels it (the server answers the cancel), and the run ends (exit 3)."""
    with app_role(db) as url, db.connect() as conn:
        role = sql.Identifier(conninfo_to_dict(url)["user"])
        holder = Holder(db.connect(), lock_table=CLAIMS)
        run = Running("migrate", "--dsn", url, "--max-wait", "600")
        try:
            sessions = sessions_of_migrate(conn)
            conn.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT 3").format(role))  # the four it has stay
            terminate(conn, sessions["watchdog"])
            result = run.finish(timeout=60)
        finally:  # the role is dropped on the way out: nothing of it may still wait
            if run.process.poll() is None:
                run.kill()
            holder.release()
            conn.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT -1").format(role))
        assert not build_phase(conn, CLAIMS, "initializing") and invalid_index_count(conn) == 0
        assert result.returncode == 3, result.stdout + result.stderr
        [error] = error_lines(result)
        assert error.startswith(f"error: 0001.{CLAIM_INDEX}: apply of {CLAIM_INDEX}: the watchdog lost its "
                                "connection and could not connect again (terminating connection due to administrator "
                                "command; then cannot connect: "), error
        assert "too many connections for role" in error and "so it was cancelled;" in error
        migrate_converges(url, db.connect)  # before the role goes, with the tables it owns


@pytest.mark.parametrize("session, said, next_run_says", [
    ("build", f"error: 0001.{CLAIM_INDEX}: lost the connection to the server during the apply of {CLAIM_INDEX} "
              "(terminating connection due to administrator command)",
     f"{CLAIM_INDEX} is INVALID (left by a failed or cancelled build): dropping it"),
    ("ledger", "error: lost the ledger's session (yoyo's, which writes the records; terminating connection due to "
               "administrator command): what was recorded stays recorded",
     f"{CLAIM_INDEX} already exists, valid and identical to ours"),
    ("runner", f"error: 0001.{CLAIM_INDEX}: the apply of {CLAIM_INDEX} is done but not recorded: the session "
               "holding the migrator lock (pid ",
     f"{CLAIM_INDEX} already exists, valid and identical to ours"),
])
def test_a_terminated_session_ends_the_run_in_one_line_and_the_next_run_converges(db, session, said, next_run_says):
    """The writer ends right after: a build whose own session was terminated is gone (INVALID); one
    whose ledger or migrator lock session was, finishes, and is left for the next run to record."""
    with db.connect() as conn:
        holder = Holder(db.connect(), write_table=CLAIMS)
        run = Running("migrate", "--dsn", db.url)
        waiting_claim_build(conn, WRITERS_WAIT)
        terminate(conn, sessions_of_migrate(conn)[session])
        holder.release()
        result = run.finish(timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    [error] = error_lines(result)
    assert error.startswith(said), error
    assert "Warning" not in result.stderr and "Exception ignored" not in result.stderr
    assert next_run_says in migrate_converges(db.url, db.connect).stdout
