"""Production topology, with real parts: PgBouncer 1.18 in front of the test server (transaction and
session pooling), and a hot standby streaming from it (pg_basebackup -R).

Through a transaction-mode pooler, nothing of ours may stay on a pooled server connection: the
next client of the pool gets it (a read-only default there fails the app's writes). migrate and
rollback refuse such a pooler before any change; status and verify work through it.
"""

import os
import re
import time
from pathlib import Path

import psycopg
import pytest

from live import Holder, Running, build_phase, unchanged_snapshot, wait_until
from support import assert_all_built, assert_none_built, assert_refused, error_lines, index_defs, invoke
from topology import PGBOUNCER, STANDBY_NAME, assert_pool_clean, pooled_sessions, start_pooler, start_standby

# CI installs PgBouncer (.ci/run): there these tests never skip.
pytestmark = [pytest.mark.topology,
              pytest.mark.skipif(not Path(PGBOUNCER).exists() and os.environ.get("CI") != "true",
                                 reason="PgBouncer is not installed (apt-get install pgbouncer; .ci/run does)")]

POOL_SIZE = 2


@pytest.fixture(scope="module")
def transaction_pooler(server, tmp_path_factory):
    pooler = start_pooler(server, tmp_path_factory.mktemp("pgbouncer-transaction"), "transaction", POOL_SIZE)
    yield pooler
    pooler.stop()


@pytest.fixture(scope="module")
def session_pooler(server, tmp_path_factory):
    # Two migrators at once hold four server connections each (lock, yoyo, build, watcher).
    pooler = start_pooler(server, tmp_path_factory.mktemp("pgbouncer-session"), "session", 12)
    yield pooler
    pooler.stop()


def test_the_pool_check_sees_a_leak(transaction_pooler, db):
    """The check the tests below rely on fails on a session setting left on a pooled connection."""
    with transaction_pooler.connect(db.name) as client:
        client.execute("SET default_transaction_read_only = on")
    with pytest.raises(AssertionError, match="kept our settings"):
        assert_pool_clean(transaction_pooler, db, POOL_SIZE)
    pooled_sessions(transaction_pooler, db, POOL_SIZE, lambda client: client.execute("RESET ALL"))
    assert_pool_clean(transaction_pooler, db, POOL_SIZE)


@pytest.mark.parametrize("command", ["status", "verify"])
@pytest.mark.slow
def test_read_only_commands_work_through_a_transaction_pooler_and_leave_nothing(transaction_pooler, db, command):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    result = invoke(command, "--dsn", transaction_pooler.conninfo(db.name), *(["--strict"] if command == "verify" else []))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert_pool_clean(transaction_pooler, db, POOL_SIZE)


@pytest.mark.parametrize("command", ["migrate", "rollback"])
@pytest.mark.slow
def test_migrate_and_rollback_refuse_a_transaction_pooler_before_any_change(transaction_pooler, db, command):
    if command == "rollback":
        assert invoke("migrate", "--dsn", db.url).returncode == 0
    with db.connect() as conn:
        before = unchanged_snapshot(conn)
    result = invoke(command, "--dsn", transaction_pooler.conninfo(db.name))
    assert_refused(result, "pooler that shares server sessions", "session-mode pool")
    with db.connect() as conn:
        assert unchanged_snapshot(conn) == before  # no index, no bookkeeping table or row
        assert conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0] == 0
    assert_pool_clean(transaction_pooler, db, POOL_SIZE)


@pytest.mark.slow
def test_everything_works_through_a_session_pooler_and_leaves_nothing(session_pooler, db):
    url = session_pooler.conninfo(db.name)
    for args in (["migrate"], ["status"], ["verify", "--strict"], ["rollback", "--all", "--yes"], ["migrate"]):
        result = invoke(*args, "--dsn", url)
        assert result.returncode == 0, result.stdout + result.stderr
    with db.connect() as conn:
        assert_all_built(conn)
    # Idle server connections after all those runs: as many as the busiest run held.
    assert_pool_clean(session_pooler, db, 4)


@pytest.mark.slow
def test_two_migrators_through_a_session_pooler(session_pooler, db):
    url = session_pooler.conninfo(db.name)
    holder = Holder(db.connect())  # keeps the first one's build busy long enough to be seen
    runs = [Running("migrate", "--dsn", url), Running("migrate", "--dsn", url)]
    wait_until(lambda: any("waiting for the migrator in pid" in line for run in runs for line in list(run.stdout)),
               "one migrate to wait for the other")
    holder.release()
    results = [run.finish() for run in runs]
    assert [r.returncode for r in results] == [0, 0], [r.stdout + r.stderr for r in results]
    assert sum("nothing to migrate" in r.stdout for r in results) == 1
    with db.connect() as conn:
        assert_all_built(conn)


def test_killed_migrator_through_a_session_pooler(session_pooler, db):
    url = session_pooler.conninfo(db.name)
    holder = Holder(db.connect())
    killed = Running("migrate", "--dsn", url)
    with db.connect() as conn:
        wait_until(lambda: build_phase(conn, "upstream_claimrecord", "waiting for old snapshots"),
                   "the claim index build to wait for old snapshots")
    killed.kill()
    holder.release()
    result = invoke("migrate", "--dsn", url)
    assert result.returncode == 0, result.stdout + result.stderr
    with db.connect() as conn:
        assert_all_built(conn)


def test_max_wait_through_a_session_pooler_watches_the_real_build(session_pooler, db):
    """The pooler gives its clients keys of its own (BackendKeyData): the watcher must watch the
    server session that builds, found with pg_backend_pid(), or --max-wait and progress see nothing."""
    holder = Holder(db.connect(), lock_table="upstream_claimrecord")  # the claim build waits to start
    try:
        result = Running("migrate", "--dsn", session_pooler.conninfo(db.name), "--max-wait", "1",
                         "--retries", "0").finish(timeout=60)
    finally:
        holder.release()
    assert result.returncode == 3, result.stdout + result.stderr
    [error] = error_lines(result)
    assert f"pid {holder.pid}" in error
    with db.connect() as conn:
        assert_none_built(conn)


# --- hot standby --------------------------------------------------------------


@pytest.fixture(scope="module")
def standby(server, tmp_path_factory):
    standby = start_standby(server, tmp_path_factory.mktemp("standby"))
    yield standby
    standby.stop()


@pytest.fixture
def replica_db(db, standby, server):
    """The test's database, replayed on the standby."""
    standby.caught_up(server)
    return db


@pytest.mark.slow
def test_verify_and_status_on_a_standby_after_migrate_on_the_primary(replica_db, standby, server):
    db = replica_db
    result = invoke("migrate", "--dsn", db.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"standby {STANDBY_NAME} \(.*streaming\): replay \d+\.\ds behind, \d+ bytes", result.stdout), \
        result.stdout
    standby.caught_up(server)
    on_standby = standby.conninfo(db.name)
    verified = invoke("verify", "--strict", "--dsn", on_standby)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert " 0 fail" in verified.stdout and "Index Only Scan on claim_cust_date_outcome_cov" in verified.stdout
    status = invoke("status", "--dsn", on_standby)
    assert status.returncode == 0, status.stdout + status.stderr
    for command in ("migrate", "rollback"):
        refused = invoke(command, "--dsn", on_standby)
        assert_refused(refused, "read-only standby; run against the primary")


def slow_build(db, table: str, run: Running, seconds: float) -> None:
    """Keep `run`'s build on `table` busy for `seconds` (a snapshot it waits for), then let it finish."""
    holder = Holder(db.connect())
    with db.connect() as conn:
        wait_until(lambda: build_phase(conn, table, "waiting for old snapshots"),
                   f"the build on {table} to wait for old snapshots")
    time.sleep(seconds)
    holder.release()


@pytest.mark.slow
def test_max_replica_lag_waits_for_a_paused_standby(replica_db, standby, server):
    """A build that takes 1.5s while the standby's replay is paused leaves it at least 1.5s behind:
    the next build waits, then gives up (exit 3) past --max-wait; resumed replay lets it go on."""
    db = replica_db
    with standby.replay_paused(server):
        run = Running("migrate", "--dsn", db.url, "--max-replica-lag", "1", "--max-wait", "3")
        slow_build(db, "upstream_claimrecord", run, 1.5)
        gave_up = run.finish()
    assert gave_up.returncode == 3, gave_up.stdout + gave_up.stderr
    assert re.search(rf"waiting for standby {STANDBY_NAME} .* to be under --max-replica-lag 1s", gave_up.stdout)
    [error] = error_lines(gave_up)
    assert f"standby {STANDBY_NAME}" in error and "--max-replica-lag 1s" in error
    with db.connect() as conn:
        assert list(index_defs(conn)) == ["claim_cust_date_outcome_cov"]  # built, then the wait gave up

    with standby.replay_paused(server):
        run = Running("migrate", "--dsn", db.url, "--max-replica-lag", "1", "--max-wait", "120")
        slow_build(db, "upstream_driftevent", run, 1.5)
        run.wait_for_line(rf"waiting for standby {STANDBY_NAME}")
        with db.connect() as conn:
            assert sorted(index_defs(conn)) == ["claim_cust_date_outcome_cov", "drift_cust_date_sev_cov"]
    result = run.finish()
    assert result.returncode == 0, result.stdout + result.stderr
    with db.connect() as conn:
        assert_all_built(conn)


@pytest.mark.slow
def test_max_replica_lag_needs_a_role_that_reads_replay_positions(replica_db, server):
    db = replica_db
    role = "app_no_monitor"
    with db.connect() as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'no-monitor-secret'")
        try:
            for table in ("upstream_claimrecord", "upstream_driftevent", "upstream_upload"):
                conn.execute(f"ALTER TABLE {table} OWNER TO {role}")
            conn.execute(f"GRANT CREATE ON SCHEMA public TO {role}")
            result = invoke("migrate", "--dsn", db.server.conninfo(db.name, user=role, password="no-monitor-secret"),
                            "--max-replica-lag", "5")
            assert result.returncode == 2, result.stdout + result.stderr
            assert f"role {role} may not read the replay position of standby {STANDBY_NAME}" in result.stderr
            assert_none_built(conn)
        finally:
            for table in ("upstream_claimrecord", "upstream_driftevent", "upstream_upload"):
                conn.execute(f"ALTER TABLE {table} OWNER TO CURRENT_USER")
            conn.execute(f"REVOKE CREATE ON SCHEMA public FROM {role}")
            conn.execute(f"DROP ROLE {role}")


@pytest.mark.slow
def test_rollback_while_a_standby_query_uses_the_index(replica_db, standby, server):
    """The primary's DROP INDEX CONCURRENTLY does not wait for queries on a standby; the standby's
    replay does, up to max_standby_streaming_delay (3s here), then cancels the query."""
    db = replica_db
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    standby.caught_up(server)
    reader = standby.connect(db.name)
    # A long report on the standby: its transaction has run a query on the newest index's table
    # (planning locks every index of the table, until the transaction ends).
    reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    reader.execute("SELECT id, uploaded_at, status FROM upstream_upload WHERE customer_id = 1 "
                   "ORDER BY uploaded_at DESC LIMIT 10").fetchall()
    assert reader.execute("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() "
                          "AND relation = 'upload_cust_date_status_cov'::regclass").fetchone()[0] == 1
    started = time.monotonic()
    result = invoke("rollback", "--dsn", db.url)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    standby.caught_up(server)  # replay went on: the standby's query was cancelled
    print(f"rollback with a standby query holding the index: {took:.1f}s; the standby replayed the drop "
          f"{time.monotonic() - started:.1f}s after the rollback started; rollback printed:\n{result.stdout}")
    with pytest.raises(psycopg.OperationalError, match="conflict with recovery"):
        reader.execute("SELECT 1")
    reader.close()
    with standby.connect(db.name) as conn:
        assert conn.execute("SELECT to_regclass('upload_cust_date_status_cov')").fetchone()[0] is None
