"""For tests that act while the tool runs: `invoke` as a running process whose
output lines can be awaited, sessions that hold a snapshot or a lock the way
an application or pg_dump does, the application writing, polling the server
for a state (never fixed sleeps), and a snapshot of everything a failed run
must leave unchanged."""

import random
import re
import subprocess
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg import sql

from support import CLAIMS, EXPECTED_INDEXDEFS, clean_env, invoke_argv
from upstream_indexes.paths import ROOT

T = TypeVar("T")
POLL_SECONDS = 0.05
# The phase of a CREATE INDEX CONCURRENTLY that has built its index and waits for older transactions.
SNAPSHOT_WAIT = "waiting for old snapshots"
# The phase of one that waits, before it builds, for a transaction that has written to the table.
WRITERS_WAIT = "waiting for writers before build"


def wait_until(probe: Callable[[], T], what: str, timeout: float = 60) -> T:
    """Call probe() until it returns something truthy; return that. Fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(POLL_SECONDS)


class Running:
    """`invoke <args>` started as a separate process; its output collected line by line as it comes."""

    def __init__(self, *args: str, env: dict | None = None):
        self.process = subprocess.Popen(invoke_argv(*args), cwd=ROOT, env=env or clean_env(),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.process.stdout, self.stdout),
                                               (self.process.stderr, self.stderr))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def wait_for_line(self, pattern: str, timeout: float = 60) -> re.Match:
        """The first stdout line matching `pattern` (a regex), once the process has printed it."""
        def probe():
            found = next((m for m in map(re.compile(pattern).search, list(self.stdout)) if m), None)
            if not found and self.process.poll() is not None:
                raise AssertionError(f"exited {self.process.returncode} without printing /{pattern}/:\n"
                                     + "\n".join(self.stdout + self.stderr))
            return found
        return wait_until(probe, f"/{pattern}/ in the output of {self.process.args[3:]}", timeout)

    def finish(self, timeout: float = 120) -> subprocess.CompletedProcess:
        self.process.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return subprocess.CompletedProcess(self.process.args, self.process.returncode,
                                           "\n".join(self.stdout), "\n".join(self.stderr))

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind runs in the process."""
        self.process.kill()
        self.finish()


def one_built_the_other_waited(runs: list[Running], waiter: Running) -> None:
    """Two migrators started together end: both 0, the one that did not wait built every index, the
    one that waited for it found nothing to do."""
    results = {run: run.finish() for run in runs}
    assert [r.returncode for r in results.values()] == [0, 0], [r.stdout + r.stderr for r in results.values()]
    [builder] = [run for run in runs if run is not waiter]
    assert all(f"built {name} in" in results[builder].stdout for name in EXPECTED_INDEXDEFS)
    assert "nothing to migrate" in results[waiter].stdout and "building" not in results[waiter].stdout


class Holder:
    """A session holding a REPEATABLE READ transaction open, as a long report or pg_dump does.

    Its snapshot makes CREATE INDEX CONCURRENTLY wait ("waiting for old
    snapshots") after the build. With `read_table` it has also read that table
    and holds ACCESS SHARE on it until it ends, which makes DROP INDEX
    CONCURRENTLY on that table wait too. Waits before the build instead:
    with `write_table` it has updated a row of that table (uncommitted, as the
    app in mid-transaction): CREATE INDEX CONCURRENTLY waits for it ("waiting
    for writers before build"), and so would a DROP INDEX CONCURRENTLY. With
    `lock_table` it holds SHARE UPDATE EXCLUSIVE on it (as a manual VACUUM or
    another concurrent build does): the build waits for the lock before it
    creates anything.
    """

    def __init__(self, conn: psycopg.Connection, read_table: str | None = None, write_table: str | None = None,
                 lock_table: str | None = None):
        self.conn = conn
        self.pid = conn.info.backend_pid
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        if read_table:
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(read_table)))
        elif write_table:
            conn.execute(sql.SQL("UPDATE {0} SET id = id WHERE id = (SELECT min(id) FROM {0})").format(
                sql.Identifier(write_table)))
        elif lock_table:
            conn.execute(sql.SQL("LOCK TABLE {} IN SHARE UPDATE EXCLUSIVE MODE").format(sql.Identifier(lock_table)))
        else:
            conn.execute("SELECT 1")

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.execute("COMMIT")
            self.conn.close()


def build_phase(conn: psycopg.Connection, table: str, phase: str) -> int | None:
    """The pid of a CREATE INDEX on `table` in `phase` (pg_stat_progress_create_index), or None."""
    row = conn.execute("SELECT pid FROM pg_stat_progress_create_index"
                       " WHERE relid = to_regclass(%s) AND phase = %s", [table, phase]).fetchone()
    return row[0] if row else None


def waiting_claim_build(conn: psycopg.Connection, phase: str = SNAPSHOT_WAIT) -> int:
    """The pid of the claim index build once it waits in `phase`: for old snapshots (the index exists,
    not yet valid), or for writers (a Holder that wrote to claims: nothing built yet)."""
    return wait_until(lambda: build_phase(conn, CLAIMS, phase), f"the claim index build to be {phase}")


def backends_gone(conn: psycopg.Connection, *pids: int) -> bool:
    """None of these backends is on the server any more."""
    return conn.execute("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = ANY(%s)", [list(pids)]).fetchone()[0]


class Writer(threading.Thread):
    """The application: inserts and updates on the indexed tables, each its own transaction, timed."""

    STATEMENTS = (
        "INSERT INTO upstream_claimrecord (customer_id, upload_id, payer, cpt, submitted_date, decided_date,"
        " outcome, processed_at, updated_at) SELECT customer_id, upload_id, payer, cpt, submitted_date,"
        " decided_date, outcome, now(), now() FROM upstream_claimrecord WHERE id = %(id)s",
        "UPDATE upstream_claimrecord SET outcome = 'denied', updated_at = now() WHERE id = %(id)s",
        "UPDATE upstream_driftevent SET severity = severity + 0.01 WHERE id = %(id)s",
        "UPDATE upstream_upload SET status = 'processed' WHERE id = %(id)s",
    )

    SEED = 4

    def __init__(self, db):
        super().__init__(daemon=True)
        self.conn = db.connect()
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def params(self, rng: random.Random) -> dict:
        """The next statement's values (subclasses with other statements give more)."""
        return {"id": rng.randint(1, 3000)}

    def run(self) -> None:
        rng = random.Random(self.SEED)
        with self.conn:
            while not self.stop.is_set():
                for statement in self.STATEMENTS:
                    started = time.perf_counter()
                    try:
                        self.conn.execute(statement, self.params(rng))
                    except Exception as exc:  # every failure counts; the test lists them
                        self.failures.append(f"{type(exc).__name__}: {exc}")
                    self.latencies.append(time.perf_counter() - started)


def migrate_while_writing(db, writer: Writer, writes_during_wait: int) -> subprocess.CompletedProcess:
    """`invoke migrate` while `writer` writes throughout, its first build held waiting (a Holder) until
    `writes_during_wait` more writes have landed in that wait; the run's result, the writer stopped."""
    holder = Holder(db.connect())
    writer.start()
    run = Running("migrate", "--dsn", db.url)
    with db.connect() as conn:
        waiting_claim_build(conn)
        before = len(writer.latencies)
        wait_until(lambda: len(writer.latencies) >= before + writes_during_wait, "writes while the build waits")
    holder.release()
    result = run.finish()
    writer.stop.set()
    writer.join()
    return result


def unchanged_snapshot(conn: psycopg.Connection) -> dict:
    """Everything a run that could not run must leave as it was: every relation (with each index's
    definition and validity) in the database, and the rows of any bookkeeping table."""
    relations = conn.execute(
        "SELECT n.nspname, c.relname, c.relkind::text, pg_get_indexdef(c.oid), i.indisvalid"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_index i ON i.indexrelid = c.oid"
        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1, 2").fetchall()
    snapshot = {"relations": relations}
    for table in ("_yoyo_migration", "_yoyo_log", "yoyo_lock", "_upstream_indexes_checksum"):
        if conn.execute("SELECT to_regclass(%s)", [table]).fetchone()[0]:
            snapshot[table] = sorted(map(str, conn.execute(
                sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))).fetchall()))
    return snapshot
