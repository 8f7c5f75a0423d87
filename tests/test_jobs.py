"""`invoke migrate --jobs N`: builds of indexes on different tables side by side (PostgreSQL 14+),
observed for real in pg_stat_progress_create_index; each recorded as its own build ends; never two
on one table; the migrator lock with two runs at once; a SIGKILL mid-build, then a run that
converges; and on PostgreSQL 13 one at a time, saying why.

A REPEATABLE READ transaction (live.Holder) keeps every build waiting "for old snapshots" after
its scan, so builds that run side by side are seen side by side, deterministically.

With the kinds of issue 18: unique plain indexes side by side, constraints and partial indexes one
at a time (and a line why).
"""

import io
import re
import signal
import threading

import psycopg
import pytest
from psycopg import sql
from rich.console import Console

from kinds import next_migrations, only, remove_drift_duplicates, server_major
from live import SNAPSHOT_WAIT, WRITERS_WAIT, Holder, Running, backends_gone, one_built_the_other_waited, wait_until
from support import (ALL_IDS, CLAIMS, EXPECTED_INDEXDEFS, TEST_SCALE, applied_ids, assert_all_built, assert_none_built,
                     invalid_index_count, invoke, pinned_server_or_skip)
from upstream_indexes import demo
from upstream_indexes import index_events
from upstream_indexes.live import LiveDisplay
from upstream_indexes.watchdog import Snapshot



@pytest.fixture
def db14(db):
    """The test's database, on a server that builds side by side (under `--pg 13` these are skipped;
    the last test covers 13 on a server of its own)."""
    with db.connect() as conn:
        if conn.info.server_version < 140000:
            pytest.skip("--jobs builds side by side on PostgreSQL 14+ only")
    return db


def builds_in(conn: psycopg.Connection, phase: str) -> set[str]:
    """The tables a CREATE INDEX runs on now, in `phase`."""
    rows = conn.execute("SELECT relid::regclass::text FROM pg_stat_progress_create_index WHERE phase = %s",
                        [phase]).fetchall()
    return {table for (table,) in rows}


def all_three_waiting(conn: psycopg.Connection) -> bool:
    return len(builds_in(conn, SNAPSHOT_WAIT)) == 3


def test_jobs_3_builds_the_three_side_by_side(db14):
    holder = Holder(db14.connect())
    with db14.connect() as conn:
        run = Running("migrate", "--dsn", db14.url, "--jobs", "3")
        # All three built and waiting at once: with --jobs 1 the second starts only once the first ended.
        wait_until(lambda: all_three_waiting(conn), "three builds waiting for old snapshots at once")
        assert applied_ids(conn) == set()
        # The plain display: each running build's own lines, named, with the session it waits for.
        for name in EXPECTED_INDEXDEFS:
            run.wait_for_line(rf"^  {name}: waiting for old snapshots: waiting for pid {holder.pid} ")
        holder.release()
        result = run.finish()
        assert result.returncode == 0, result.stdout + result.stderr
        assert all(f"built {name} in" in result.stdout for name in EXPECTED_INDEXDEFS)
        assert "one index at a time" not in result.stdout
        assert_all_built(conn)
        applies = conn.execute("SELECT migration_id FROM _yoyo_log WHERE operation = 'apply'").fetchall()
        assert sorted(id for (id,) in applies) == sorted(ALL_IDS)


def test_each_build_is_recorded_as_it_ends_while_another_still_waits(db14):
    """A session that has written to the claims table (and holds no snapshot) keeps only the claim
    build waiting for writers; the other two, started beside it, are built and recorded meanwhile."""
    writer = db14.connect()
    writer.execute(sql.SQL("BEGIN; LOCK TABLE {} IN ROW EXCLUSIVE MODE").format(sql.Identifier(CLAIMS)))
    try:
        with db14.connect() as conn:
            run = Running("migrate", "--dsn", db14.url, "--jobs", "3", "--max-wait", "120")
            wait_until(lambda: applied_ids(conn) == ALL_IDS - {"0001.claim_cust_date_outcome_cov"},
                       "the drift and upload indexes recorded")
            assert builds_in(conn, WRITERS_WAIT) == {CLAIMS}  # still waiting: it started first, it ends last
            writer.execute("COMMIT")
            result = run.finish()
            assert result.returncode == 0, result.stdout + result.stderr
            assert_all_built(conn)
    finally:
        writer.close()


def test_two_indexes_on_one_table_are_never_built_at_once(db14, migrations_copy):
    new_index = "claim_cust_payer_date_cov"
    made = invoke("new", new_index, "--table", CLAIMS, "--columns", "customer_id, payer, decided_date desc",
                  "--include", "id", "--migrations", str(migrations_copy))
    assert made.returncode == 0, made.stdout + made.stderr
    holder = Holder(db14.connect())
    with db14.connect() as conn:
        run = Running("migrate", "--dsn", db14.url, "--jobs", "4", "--migrations", str(migrations_copy))
        wait_until(lambda: all_three_waiting(conn), "three builds waiting for old snapshots at once")
        # Four jobs, four pending, one table twice: the fourth waits for the claim build to end.
        running = conn.execute("SELECT count(*) FROM pg_stat_progress_create_index").fetchone()[0]
        assert running == 3
        assert "building claim_cust_payer_date_cov" not in "\n".join(run.stdout)
        holder.release()
        result = run.finish()
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"built {new_index} in" in result.stdout
        assert invalid_index_count(conn) == 0
        assert len(applied_ids(conn)) == 4


@pytest.mark.slow
def test_two_migrates_with_jobs_started_together(db14):
    holder = Holder(db14.connect())  # keeps the first one's builds busy long enough to be seen
    runs = [Running("migrate", "--dsn", db14.url, "--jobs", "3") for _ in range(2)]
    waiter = wait_until(lambda: next((run for run in runs for line in list(run.stdout)
                                      if "waiting for the migrator in pid" in line), None),
                        "one migrate to wait for the other")
    with db14.connect() as conn:
        wait_until(lambda: all_three_waiting(conn), "the other one's three builds at once")
    holder.release()
    one_built_the_other_waited(runs, waiter)
    with db14.connect() as conn:
        assert_all_built(conn)


@pytest.mark.parametrize("orphans", ["still running", "aborted"])
@pytest.mark.slow
def test_killed_jobs_run_then_migrate_again_converges(db14, orphans):
    """SIGKILL while three builds run. The server goes on with them (the next run waits for each,
    then records it), or aborts them when it notices the client is gone (the next run drops each
    INVALID leftover and builds again)."""
    with db14.connect() as conn:
        if orphans == "aborted":
            conn.execute(sql.SQL("ALTER DATABASE {} SET client_connection_check_interval = '100ms'")
                         .format(sql.Identifier(db14.name)))
        holder = Holder(db14.connect())
        killed = Running("migrate", "--dsn", db14.url, "--jobs", "3")
        wait_until(lambda: all_three_waiting(conn), "three builds waiting for old snapshots at once")
        pids = [pid for (pid,) in conn.execute("SELECT pid FROM pg_stat_progress_create_index")]
        killed.kill()
        if orphans == "aborted":
            wait_until(lambda: backends_gone(conn, *pids), "the server to abort the orphaned builds")
            assert invalid_index_count(conn) == 3
            holder.release()
        assert applied_ids(conn) == set()

        again = Running("migrate", "--dsn", db14.url, "--jobs", "3")
        if orphans == "still running":
            for name in EXPECTED_INDEXDEFS:
                again.wait_for_line(rf"CREATE INDEX for {name} is still running in pid \d+")
            holder.release()
        result = again.finish()
        assert result.returncode == 0, result.stdout + result.stderr
        assert "removing a stale yoyo lock" in result.stdout
        expected = ("that build ended; {} is now valid" if orphans == "still running" else
                    "{} is INVALID (left by a failed or cancelled build): dropping it")
        assert all(expected.format(name) in result.stdout for name in EXPECTED_INDEXDEFS)
        assert_all_built(conn)


@pytest.mark.slow
def test_a_failed_build_stops_the_run_once_the_others_are_built_and_recorded(db14):
    holder = Holder(db14.connect())
    with db14.connect() as conn:
        run = Running("migrate", "--dsn", db14.url, "--jobs", "3")
        wait_until(lambda: all_three_waiting(conn), "three builds waiting for old snapshots at once")
        claim_build = conn.execute("SELECT pid FROM pg_stat_progress_create_index"
                                   " WHERE relid = %s::regclass", [CLAIMS]).fetchone()[0]
        conn.execute("SELECT pg_cancel_backend(%s)", [claim_build])
        run.wait_for_line("claim_cust_date_outcome_cov is INVALID .*: dropping it")
        holder.release()
        result = run.finish()
        assert result.returncode == 1, result.stdout + result.stderr
        [error] = result.stderr.strip().splitlines()
        assert "apply of claim_cust_date_outcome_cov was cancelled by another session" in error
        assert applied_ids(conn) == ALL_IDS - {"0001.claim_cust_date_outcome_cov"}
        assert invalid_index_count(conn) == 0

        again = invoke("migrate", "--dsn", db14.url, "--jobs", "3")
        assert again.returncode == 0, again.stdout + again.stderr
        assert_all_built(conn)


def test_ctrl_c_cancels_every_running_build_then_migrate_again(db14):
    holder = Holder(db14.connect())
    with db14.connect() as conn:
        run = Running("migrate", "--dsn", db14.url, "--jobs", "3")
        wait_until(lambda: all_three_waiting(conn), "three builds waiting for old snapshots at once")
        run.process.send_signal(signal.SIGINT)
        result = run.finish()
        assert result.returncode == 130, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        wait_until(lambda: conn.execute("SELECT count(*) = 0 FROM pg_stat_progress_create_index").fetchone()[0],
                   "no build running")
        assert invalid_index_count(conn) == 3 and applied_ids(conn) == set()
        holder.release()

        again = invoke("migrate", "--dsn", db14.url, "--jobs", "3")
        assert again.returncode == 0, again.stdout + again.stderr
        assert_all_built(conn)


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_bad_jobs_value_is_one_error_line_and_changes_nothing(db, value):
    result = invoke("migrate", "--dsn", db.url, "--jobs", value)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == f"error: --jobs must be a number >= 1, not {value!r}"
    with db.connect() as conn:
        assert_none_built(conn)


@pytest.mark.npm
@pytest.mark.pg
@pytest.mark.slow
def test_on_postgresql_13_jobs_builds_one_at_a_time_and_says_why(tmp_path_factory):
    with pinned_server_or_skip("13", tmp_path_factory.mktemp("pg13")) as server:
        name = server.create_database()
        with server.connect(name) as conn:
            demo.load(conn, TEST_SCALE)
        holder = Holder(server.connect(name))
        with server.connect(name) as conn:
            run = Running("migrate", "--dsn", server.conninfo(name), "--jobs", "3")
            run.wait_for_line("building claim_cust_date_outcome_cov")
            wait_until(lambda: builds_in(conn, SNAPSHOT_WAIT), "the first build to wait for old snapshots")
            assert conn.execute("SELECT count(*) FROM pg_stat_progress_create_index").fetchone()[0] == 1
            holder.release()
            result = run.finish()
            assert result.returncode == 0, result.stdout + result.stderr
            [why] = [line for line in result.stdout.splitlines() if "one index at a time" in line]
            assert re.fullmatch(r"--jobs 3: building one index at a time: before PostgreSQL 14 \(this server is "
                                r"13\.\d+\) each CREATE INDEX CONCURRENTLY waits for the snapshots of every "
                                r"other one running, even on another table", why), why
            assert_all_built(conn)


def test_terminal_display_shows_each_running_build():
    out = io.StringIO()
    reporter = LiveDisplay(out, Console(file=out, force_terminal=True, width=80, color_system=None))
    phases = dict(zip(EXPECTED_INDEXDEFS, ("building index: scanning table", "building index: sorting live tuples",
                                           "waiting for old snapshots")))
    all_shown, ended = threading.Barrier(len(phases) + 1), threading.Event()

    def build(name):  # as the runner's build threads do
        with index_events.statements(reporter, name):
            reporter.emit(index_events.Progress(name, Snapshot(elapsed=2.5, phase=phases[name], blocks_done=5, blocks_total=10,
                                                     tuples_done=None, tuples_total=None, waiting_seconds=0,
                                                     blocker=None)))
            all_shown.wait(10)
            ended.wait(10)

    threads = [threading.Thread(target=build, args=(name,)) for name in phases]
    for thread in threads:
        thread.start()
    all_shown.wait(10)
    before = len(out.getvalue())
    reporter._live.refresh()
    frame = out.getvalue()[before:]
    ended.set()
    for thread in threads:
        thread.join(10)
    assert all(f"  {name}: {phase}" in frame for name, phase in phases.items()), frame
    assert reporter._live is None  # the display is gone once the last build ended


# --- the kinds of issue 18: unique plain indexes side by side, the others one at a time ---

@pytest.mark.slow
def test_jobs_builds_unique_plain_indexes_side_by_side(db, tmp_path):
    if server_major(db) < 14:
        pytest.skip("--jobs builds one at a time before PostgreSQL 14")
    folder = only(next_migrations(tmp_path / "migrations"), "0005")
    with db.connect() as conn:
        remove_drift_duplicates(conn)
    result = invoke("migrate", "--jobs", "2", "--dsn", db.url, "--migrations", str(folder))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "one index at a time" not in result.stdout and "built drift_event_unique in" in result.stdout


@pytest.mark.slow
def test_jobs_runs_constraints_and_partial_indexes_one_at_a_time(db, tmp_path):
    if server_major(db) < 14:
        pytest.skip("--jobs builds one at a time before PostgreSQL 14")
    folder = next_migrations(tmp_path / "migrations")
    with db.connect() as conn:
        remove_drift_duplicates(conn)
    result = invoke("migrate", "--jobs", "3", "--dsn", db.url, "--migrations", str(folder))
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("--jobs 3: building one index at a time: upload_status_valid, drift_event_unique are constraints: an "
            "ALTER TABLE's brief lock, and a VALIDATE's scan, whose snapshot every concurrent build would wait for"
            in result.stdout)
    only(folder, "0007")
    assert invoke("rollback", "--to", "0003", "--yes", "--dsn", db.url, "--migrations", str(folder)).returncode == 0
    partial = invoke("migrate", "--jobs", "3", "--dsn", db.url, "--migrations", str(folder))
    assert partial.returncode == 0 and ("upload_processing_cov has an expression or a WHERE, and PostgreSQL makes "
                                        "every concurrent build wait for the snapshots of such a one") in partial.stdout


