"""Faults caused for real while `invoke migrate` runs: a build cancelled, the
migrator SIGKILLed, a transaction that keeps a build waiting, the app writing
throughout, two migrators at once, server notices. Each test ends by checking
the catalog: three valid indexes or none, zero INVALID, yoyo agreeing.

A REPEATABLE READ transaction (live.Holder) is what makes a build wait
deterministically: CREATE INDEX CONCURRENTLY builds, then waits "for old
snapshots" until it ends (a wait after the build: --max-wait-after-build
bounds it); one that has written a row keeps it from building ("waiting for
writers before build": --max-wait). The tests poll pg_stat_progress_create_index
for the phase instead of sleeping.
"""

import json
import re
import statistics
import threading
import time
import uuid

import psycopg
import pytest
from psycopg import sql

from live import (Holder, Running, Writer, backends_gone, build_phase, migrate_while_writing,
                  one_built_the_other_waited, wait_until, waiting_claim_build)
from support import (ALL_IDS, CLAIM_INDEX, CLAIMS, applied_ids, assert_all_built, assert_none_built, assert_refused,
                     error_lines, index_defs, index_oid, invalid_index_count, invoke)
from upstream_indexes.paths import ROOT

QUICK = ("--max-wait", "1", "--backoff", "0.2")  # give up waiting after 1s, retry after 0.2s, 0.4s, ...
AFTER_BUILD = ("--max-wait-after-build", "1")  # and a built index waiting to become valid after 1s


def test_build_cancelled_by_another_session_then_migrate_again(db):
    holder = Holder(db.connect())
    with db.connect() as conn:
        run = Running("migrate", "--dsn", db.url)
        conn.execute("SELECT pg_cancel_backend(%s)", [waiting_claim_build(conn)])
        result = run.finish()
    holder.release()
    assert result.returncode == 1, result.stdout + result.stderr
    [error] = error_lines(result)
    assert f"apply of {CLAIM_INDEX} was cancelled by another session" in error
    assert f"{CLAIM_INDEX} is INVALID (left by a failed or cancelled build): dropping it" in result.stdout
    with db.connect() as conn:
        assert_none_built(conn)

    again = invoke("migrate", "--dsn", db.url)
    assert again.returncode == 0, again.stdout + again.stderr
    with db.connect() as conn:
        assert_all_built(conn)


@pytest.mark.parametrize("orphan", ["finished", "still running", "aborted"])
def test_killed_migrate_then_migrate_again_at_once(db, orphan):
    """SIGKILL of `invoke migrate` mid-build. The server goes on with the orphaned build until it ends
    (finished), or until it waits in vain (still running: the next migrate waits for it), or stops
    it when it notices the client is gone (aborted; client_connection_check_interval, PostgreSQL 14+)."""
    with db.connect() as conn:
        if orphan == "aborted" and conn.info.server_version < 140000:
            pytest.skip("client_connection_check_interval is PostgreSQL 14+: on 12 and 13 an orphaned build "
                        "runs on until it ends (the other two cases; docs/versions.md)")
        if orphan == "aborted":
            conn.execute(sql.SQL("ALTER DATABASE {} SET client_connection_check_interval = '100ms'")
                         .format(sql.Identifier(db.name)))
        holder = Holder(db.connect())
        killed = Running("migrate", "--dsn", db.url)
        pid = waiting_claim_build(conn)
        killed.kill()
        if orphan == "finished":
            holder.release()
            wait_until(lambda: backends_gone(conn, pid), "the orphaned build to finish")
            assert index_defs(conn)[CLAIM_INDEX][1] is True  # valid, and recorded nowhere
            built_by_orphan = index_oid(conn, CLAIM_INDEX)
        elif orphan == "aborted":
            wait_until(lambda: backends_gone(conn, pid), "the server to abort the orphaned build")
            assert invalid_index_count(conn) == 1
            holder.release()
        assert applied_ids(conn) == set()
        assert conn.execute("SELECT count(*) FROM yoyo_lock").fetchone()[0] == 1  # the killed run's

        again = Running("migrate", "--dsn", db.url)
        if orphan == "still running":
            again.wait_for_line(rf"CREATE INDEX for {CLAIM_INDEX} is still running in pid {pid}")
            assert not backends_gone(conn, pid)
            holder.release()
        result = again.finish()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "removing a stale yoyo lock" in result.stdout
    expected = {
        "finished": f"{CLAIM_INDEX} already exists, valid and identical to ours",
        "still running": f"that build ended; {CLAIM_INDEX} is now valid",
        "aborted": f"{CLAIM_INDEX} is INVALID (left by a failed or cancelled build): dropping it",
    }[orphan]
    assert expected in result.stdout
    with db.connect() as conn:
        assert_all_built(conn)
        if orphan == "finished":
            assert index_oid(conn, CLAIM_INDEX) == built_by_orphan  # recorded, not rebuilt


@pytest.mark.parametrize("read_table", [False, True], ids=["holds a snapshot", "has read the table"])
@pytest.mark.slow
def test_transaction_held_past_the_wait_limit(db, read_table):
    """Issue 13: the build is built and only waits for the transaction's snapshot; --max-wait does not
    cancel that, --max-wait-after-build does, and then it is not retried (the same session would hold up
    a new build the same way)."""
    holder = Holder(db.connect(), read_table=CLAIMS if read_table else None)
    result = invoke("migrate", "--dsn", db.url, *QUICK, *AFTER_BUILD, "--retries", "1")
    with db.connect() as conn:
        state_when_it_gave_up = (invalid_index_count(conn), applied_ids(conn), set(index_defs(conn)))
    holder.release()

    assert result.returncode == 3, result.stdout + result.stderr
    [error] = error_lines(result)
    assert f"pid {holder.pid} (" in error and "idle in transaction" in error
    assert "(attempt 2 of 2)" not in result.stdout
    assert (f"{CLAIM_INDEX} was built and only waiting (waiting for old snapshots) for pid {holder.pid} ("
            in result.stdout and "--max-wait-after-build 1s ended the wait: build cancelled" in result.stdout)
    if read_table:
        # DROP INDEX CONCURRENTLY waits for every lock on the table: the leftover must outlive the reader.
        assert f"{CLAIM_INDEX} is left INVALID" in error and "drops the leftover first" in error
        assert state_when_it_gave_up == (1, set(), {CLAIM_INDEX})
    else:
        assert f"{CLAIM_INDEX} not built: it was built and only waiting (waiting for old snapshots)" in error
        assert "its INVALID index dropped, and not retried" in error
        assert state_when_it_gave_up == (0, set(), set())

    again = invoke("migrate", "--dsn", db.url, *QUICK)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (f"{CLAIM_INDEX} is INVALID" in again.stdout) == read_table
    with db.connect() as conn:
        assert_all_built(conn)


@pytest.mark.slow
def test_writer_released_before_the_retry_limit(db):
    """A write in progress keeps the build from starting: --max-wait cancels it (nothing built yet) and
    it is retried. The leftover's DROP INDEX CONCURRENTLY waits for that writer too (up to --max-wait):
    released once the build is cancelled, the drop and the retry go ahead."""
    holder = Holder(db.connect(), write_table=CLAIMS)
    run = Running("migrate", "--dsn", db.url, "--max-wait", "3", "--backoff", "0.2", "--retries", "3")
    run.wait_for_line(rf"{CLAIM_INDEX}.*for pid {holder.pid} .*build cancelled")
    holder.release()
    run.wait_for_line("retrying in")
    result = run.finish()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"building {CLAIM_INDEX} on {CLAIMS} ... (attempt 2 of 4)" in result.stdout
    assert f"built {CLAIM_INDEX} in" in result.stdout
    with db.connect() as conn:
        assert_all_built(conn)


def test_writes_go_on_while_migrate_builds_and_waits(db, server, capsys):
    """Every write succeeds, also while a build waits for a transaction; the worst write latency is
    recorded for the benchmark (printed, and saved under benchmarks/scratch/), not asserted."""
    writer = Writer(db)
    started = time.perf_counter()
    result = migrate_while_writing(db, writer, 200)
    migrate_seconds = time.perf_counter() - started

    assert result.returncode == 0, result.stdout + result.stderr
    assert writer.failures == []
    with db.connect() as conn:
        assert_all_built(conn)
        version = conn.info.server_version
    latencies_ms = sorted(latency * 1000 for latency in writer.latencies)
    measured = {
        "what": "write latency (single-statement transactions: inserts and updates on the three tables) during "
                "`invoke migrate` at test scale, a REPEATABLE READ transaction holding the first build waiting",
        "server_version": version, "server": server.kind, "writes": len(latencies_ms),
        "failed_writes": len(writer.failures), "migrate_seconds": round(migrate_seconds, 2),
        "max_ms": round(latencies_ms[-1], 2), "p99_ms": round(latencies_ms[int(len(latencies_ms) * 0.99)], 2),
        "median_ms": round(statistics.median(latencies_ms), 2),
    }
    scratch = ROOT / "benchmarks" / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / f"write-latency-during-migrate.pg{version // 10000}.json").write_text(json.dumps(measured, indent=2))
    with capsys.disabled():
        print(f"\nworst write latency during migrate (PostgreSQL {version // 10000}): {measured['max_ms']} ms "
              f"over {measured['writes']} writes (p99 {measured['p99_ms']} ms, median {measured['median_ms']} ms)")


def test_two_migrates_started_together(db):
    holder = Holder(db.connect())  # keeps the first one's build busy long enough to be seen
    runs = [Running("migrate", "--dsn", db.url), Running("migrate", "--dsn", db.url)]
    found = wait_until(lambda: next(((run, match) for run in runs for line in list(run.stdout)
                                     if (match := re.search(r"waiting for the migrator in pid (\d+)", line))), None),
                       "one migrate to wait for the other")
    waiter, named = found
    with db.connect() as conn:
        lock_holder = conn.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted").fetchone()[0]
    assert int(named.group(1)) == lock_holder
    holder.release()
    one_built_the_other_waited(runs, waiter)
    with db.connect() as conn:
        assert_all_built(conn)


def test_server_notices_are_shown(db):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    with db.connect() as conn:
        conn.execute("DROP INDEX upload_cust_date_status_cov")  # by hand, behind the tool's back
    result = invoke("rollback", "--dsn", db.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'server NOTICE: index "upload_cust_date_status_cov" does not exist, skipping' in result.stdout
    with db.connect() as conn:
        assert applied_ids(conn) == ALL_IDS - {"0003.upload_cust_date_status_cov"}
        assert set(index_defs(conn)) == {"claim_cust_date_outcome_cov", "drift_cust_date_sev_cov"}
        assert invalid_index_count(conn) == 0


@pytest.mark.slow
def test_rollback_refuses_a_foreign_index_unless_forced(db):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    with db.connect() as conn:  # a DBA replaced it by hand with another definition
        conn.execute("DROP INDEX drift_cust_date_sev_cov")
        conn.execute("CREATE INDEX drift_cust_date_sev_cov ON upstream_driftevent (customer_id)")
        before = index_defs(conn)
    refused = invoke("rollback", "--all", "--yes", "--dsn", db.url)
    errors = assert_refused(refused, "drift_cust_date_sev_cov exists with another definition", lines=2)
    assert "rollback --force drops it anyway" in errors[-1]
    with db.connect() as conn:
        assert index_defs(conn) == before and applied_ids(conn) == ALL_IDS
    forced = invoke("rollback", "--all", "--force", "--yes", "--dsn", db.url)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    with db.connect() as conn:
        assert_none_built(conn)


@pytest.mark.slow
def test_rollback_waiting_on_a_reader_past_max_wait(db):
    """DROP INDEX CONCURRENTLY first marks the index invalid, then waits for every lock on the table:
    cancelled there, the index stays INVALID and recorded; the next rollback (or migrate) finishes it."""
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    holder = Holder(db.connect(), read_table="upstream_upload")
    blocked = invoke("rollback", "--dsn", db.url, "--max-wait", "1")
    with db.connect() as conn:
        state_when_it_gave_up = (invalid_index_count(conn), applied_ids(conn))
    holder.release()
    assert blocked.returncode == 3, blocked.stdout + blocked.stderr
    [error] = error_lines(blocked)
    assert f"pid {holder.pid} (" in error and "still recorded as applied" in error
    assert state_when_it_gave_up == (1, ALL_IDS)

    again = invoke("rollback", "--dsn", db.url, "--max-wait", "1")
    assert again.returncode == 0, again.stdout + again.stderr
    with db.connect() as conn:
        assert set(index_defs(conn)) == {"claim_cust_date_outcome_cov", "drift_cust_date_sev_cov"}
        assert applied_ids(conn) == ALL_IDS - {"0003.upload_cust_date_status_cov"}
        assert invalid_index_count(conn) == 0


# A rollback's DROP INDEX CONCURRENTLY marks the index INVALID before it waits: a cancel leaves it INVALID
# and still recorded as applied; the next migrate must call it that, not a failed build's leftover.
CANCELLED_DROP = f"{CLAIM_INDEX} is INVALID (left by a cancelled DROP INDEX CONCURRENTLY of a rollback)"


@pytest.mark.slow
def test_the_next_migrate_names_a_cancelled_drop(db):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    # A session that has read the claims: the drop marks the index INVALID, then waits for it, past --max-wait.
    holder = Holder(db.connect(), read_table=CLAIMS)
    try:
        stopped = invoke("rollback", "--to", "0001", "--dsn", db.url, "--yes")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        cancelled = invoke("rollback", "--dsn", db.url, "--max-wait", "1")
        assert cancelled.returncode == 3, cancelled.stdout + cancelled.stderr
    finally:
        holder.release()
    with db.connect() as conn:
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass",
                            [CLAIM_INDEX]).fetchone() == (False,)

    planned = invoke("migrate", "--dry-run", "--dsn", db.url)
    assert f"0001.{CLAIM_INDEX}: {CANCELLED_DROP}: migrate drops it, then builds it" in planned.stdout, planned.stdout
    again = invoke("migrate", "--dsn", db.url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"0001.{CLAIM_INDEX}: {CANCELLED_DROP}: dropping it with DROP INDEX CONCURRENTLY" in again.stdout, again.stdout
    assert "failed or cancelled build" not in again.stdout
    with db.connect() as conn:
        assert_all_built(conn)


def test_watcher_refused_a_connection_stops_before_the_build(db, server):
    """The role's connection limit leaves no room for the watcher's connection (the fourth, after
    the runner's, yoyo's and the build's): one error line, no traceback, no build left unwatched."""
    name, password = f"app_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    with db.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CONNECTION LIMIT 3 PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(password)))
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(name)))
        for table in ("upstream_claimrecord", "upstream_driftevent", "upstream_upload"):
            conn.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier(table), sql.Identifier(name)))
    try:
        result = invoke("migrate", "--dsn", server.url(db.name, name, password))
        [error] = assert_refused(result, "too many connections")
        assert error.startswith("error: cannot connect: ")
        with db.connect() as conn:
            assert index_defs(conn) == {} and invalid_index_count(conn) == 0 and applied_ids(conn) == set()
    finally:
        with db.connect() as conn:
            conn.execute(sql.SQL("DROP OWNED BY {0}; DROP ROLE {0}").format(sql.Identifier(name)))


# An index build that takes its time on any machine: each comparison of its sort sleeps 10 ms
# (an operator class of its own; no expression, so PostgreSQL 14+ counts it a "safe" build).
SLOW_BUILD_SETUP = """
CREATE FUNCTION slow_int4_cmp(int4, int4) RETURNS int4 LANGUAGE plpgsql IMMUTABLE
    AS $$ BEGIN PERFORM pg_sleep(0.01); RETURN btint4cmp($1, $2); END $$;
CREATE OPERATOR CLASS slow_int4_ops FOR TYPE int4 USING btree AS
    OPERATOR 1 < , OPERATOR 2 <= , OPERATOR 3 = , OPERATOR 4 >= , OPERATOR 5 > ,
    FUNCTION 1 slow_int4_cmp(int4, int4);
CREATE TABLE app_report (n int4);
INSERT INTO app_report SELECT (i * 7919) % 300 FROM generate_series(1, 300) AS i;
"""


def test_a_concurrent_index_build_on_another_table(db):
    """12 and 13: CREATE INDEX CONCURRENTLY waits for old snapshots, among them that of a
    concurrent build on another table (the app's own migration, say): migrate shows it as the
    blocker and gives up after --max-wait-after-build like for any other. 14+ ignores such a build:
    migrate finishes while it runs (docs/versions.md)."""
    with db.connect() as conn:
        conn.execute(SLOW_BUILD_SETUP)
        other = db.connect()
        other_pid = other.info.backend_pid

        def build():
            with pytest.raises(psycopg.errors.QueryCanceled):  # by us, below
                other.execute("CREATE INDEX CONCURRENTLY app_report_n ON app_report (n slow_int4_ops)")

        other_build = threading.Thread(target=build, daemon=True)
        other_build.start()
        wait_until(lambda: build_phase(conn, "app_report", "building index: loading tuples in tree")
                   or build_phase(conn, "app_report", "building index: sorting live tuples"),
                   "the other build to sort")
        result = invoke("migrate", "--dsn", db.url, *QUICK, *AFTER_BUILD, "--retries", "0")
        other_still_building = bool(build_phase(conn, "app_report", "building index: sorting live tuples"))
        conn.execute("SELECT pg_cancel_backend(%s)", [other_pid])
        other_build.join(60)
        other.close()
        conn.execute("DROP INDEX app_report_n")  # the cancelled build's INVALID leftover

        if conn.info.server_version < 140000:
            assert result.returncode == 3, result.stdout + result.stderr
            [error] = error_lines(result)
            assert f"pid {other_pid} (" in error
            assert "CREATE INDEX CONCURRENTLY app_report_n" in error
            assert_none_built(conn)
        else:
            assert result.returncode == 0, result.stdout + result.stderr
            assert other_still_building
            assert_all_built(conn)
