"""Lock queue safety of the ALTER TABLE steps (issue 18, point 4). ADD CONSTRAINT ... NOT VALID,
ADD CONSTRAINT ... USING INDEX and DROP CONSTRAINT need a brief ACCESS EXCLUSIVE lock; while one
waits for it, every later query on the table queues behind it. A transaction holding the table
open (live.Holder) makes migrate wait: each attempt gives up after its short lock_timeout, so an
INSERT issued while migrate waits completes within that lock timeout, while the transaction is
still open; migrate retries with backoff within --max-wait, names the session (pid, state, age,
query), and stops (exit 3) having changed nothing, or goes on once the session ends."""

import pytest
import time

import psycopg

from kinds import examples
from live import Holder, Running, wait_until
from support import invoke
from upstream_indexes.partitions import SHORT_LOCK_TIMEOUT

pytestmark = pytest.mark.slow  # each test migrates a database, some several times

UPLOADS = "upstream_upload"
LOCK_TIMEOUT_S = float(SHORT_LOCK_TIMEOUT.removesuffix("s"))
INSERT = ("INSERT INTO upstream_upload (customer_id, uploaded_at, filename, status, validation_errors, "
          "data_quality_issues) VALUES (1, now(), 'x.csv', 'processing', '[]', '{}')")


def waiting_alter(conn, text: str) -> int | None:
    """The pid of a backend of ours waiting for a lock in a statement containing `text`."""
    row = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'upstream-indexes' "
                       "AND wait_event_type = 'Lock' AND query ILIKE %s", [f"%{text}%"]).fetchone()
    return row[0] if row else None


def constraint(conn, name: str) -> tuple | None:
    return conn.execute("SELECT convalidated FROM pg_constraint WHERE conname = %s", [name]).fetchone()


def test_an_insert_issued_while_migrate_waits_completes_within_the_lock_timeout(db, tmp_path):
    folder = examples(tmp_path / "migrations", "0004")
    holder = Holder(db.connect(), read_table=UPLOADS)  # idle in transaction, ACCESS SHARE on uploads
    run = Running("migrate", "--dsn", db.url, "--migrations", str(folder), "--max-wait", "6", "--backoff", "0.5")
    with db.connect() as conn, db.connect() as app:
        wait_until(lambda: waiting_alter(conn, "ADD CONSTRAINT upload_status_valid"), "migrate's ADD to wait")
        started = time.monotonic()
        app.execute(INSERT)  # queued behind the waiting ALTER, until its lock_timeout gives up
        latency = time.monotonic() - started
        # The holder's transaction is still open: the insert went through because migrate gave up, not because
        # the session that blocked it ended. The slack is for a loaded machine; never the holder's time.
        assert holder.conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert latency < LOCK_TIMEOUT_S + 1.0, latency
        result = run.finish()
        assert constraint(conn, "upload_status_valid") is None  # nothing changed
    holder.release()
    assert result.returncode == 3, result.stdout + result.stderr
    retries = [line for line in result.stdout.splitlines() if "held the lock past 2s: gave up" in line]
    assert len(retries) >= 2, result.stdout  # retried, with backoff
    assert (f"0004.upload_status_valid: pid {holder.pid} (postgres, idle in transaction, open " in retries[0]
            and f"'SELECT count(*) FROM \"{UPLOADS}\"'" in retries[0])
    assert result.stderr.startswith(
        "error: 0004.upload_status_valid: `ALTER TABLE upstream_upload ADD CONSTRAINT upload_status_valid CHECK "
        f"(status IN ('processing', 'success', 'failed', 'partial')) NOT VALID` not run: pid {holder.pid} (postgres, "
        "idle in transaction, open ")
    assert "past its lock_timeout of 2s on every attempt within --max-wait 6s" in result.stderr


def test_migrate_goes_on_once_the_session_ends(db, tmp_path):
    folder = examples(tmp_path / "migrations", "0004")
    holder = Holder(db.connect(), read_table=UPLOADS)
    run = Running("migrate", "--dsn", db.url, "--migrations", str(folder), "--max-wait", "60", "--backoff", "0.5")
    run.wait_for_line(r"held the lock past 2s: gave up, so that no query queues behind it; retrying in")
    holder.release()
    result = run.finish()
    assert result.returncode == 0, result.stdout + result.stderr
    with db.connect() as conn:
        assert constraint(conn, "upload_status_valid") == (True,)


def test_a_rollbacks_drop_constraint_waits_the_same_way(db, tmp_path):
    folder = examples(tmp_path / "migrations", "0004")
    assert invoke("migrate", "--dsn", db.url, "--migrations", str(folder)).returncode == 0
    holder = Holder(db.connect(), read_table=UPLOADS)
    run = Running("rollback", "--dsn", db.url, "--migrations", str(folder), "--max-wait", "3")
    with db.connect() as conn, db.connect() as app:
        wait_until(lambda: waiting_alter(conn, "DROP CONSTRAINT IF EXISTS upload_status_valid"), "the DROP to wait")
        started = time.monotonic()
        app.execute(INSERT)
        assert time.monotonic() - started < LOCK_TIMEOUT_S + 1.0
        result = run.finish()
        assert result.returncode == 3, result.stdout + result.stderr
        assert f"pid {holder.pid} (postgres, idle in transaction" in result.stderr
        assert constraint(conn, "upload_status_valid") == (True,)  # still there, still recorded
    holder.release()
    assert invoke("rollback", "--dsn", db.url, "--migrations", str(folder)).returncode == 0
