"""Watch an index build from a second connection: its phase and counters
(pg_stat_progress_create_index), and, while it waits on a lock, whom it waits
for. Enforces --max-wait by cancelling a build that waited too long. On a
Citus coordinator the build's backend only waits for its shard commands: the
watcher reads those on the workers instead."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from . import catalog
from .config import Target
from .db import connect

POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Snapshot:
    """One look at the build backend."""

    elapsed: float
    phase: str | None
    blocks_done: int | None
    blocks_total: int | None
    tuples_done: int | None
    tuples_total: int | None
    waiting_seconds: float  # 0 when not waiting on a lock
    blocker: catalog.Backend | None
    wal_position: int | None = None  # the server's WAL insert position (bytes from 0/0) at this look


class Watcher:
    """A thread that polls the build backend `pid` until stopped.

    Every poll goes to `on_snapshot`. When the backend has waited on a lock
    for more than `max_wait` seconds in a row, it is cancelled
    (pg_cancel_backend) and `cancelled_by` names the session it waited for.
    """

    def __init__(self, target: Target, pid: int, max_wait: float, on_snapshot: Callable[[Snapshot], None]):
        self.target = target
        self.pid = pid
        self.max_wait = max_wait
        self.on_snapshot = on_snapshot
        self.cancelled_by: catalog.Backend | None = None
        self.cancelled = False
        self.last_blocker: catalog.Backend | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{pid}", daemon=True)

    def __enter__(self) -> "Watcher":
        # Connected here, not in the thread: a build never starts unwatched (no --max-wait), and a
        # refused connection (a full connection limit) is the caller's ConnectionProblem, not a
        # thread's traceback.
        self._conn = connect(self.target)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            with self._conn as conn:
                self._poll(conn)
        except psycopg.Error:
            pass  # the server or the connection went away: the build's own connection reports it

    def _poll(self, conn: psycopg.Connection) -> None:
        started = time.monotonic()
        wait_started: float | None = None
        citus = catalog.has_citus(conn)
        while not self._stop.wait(POLL_SECONDS):
            rows = catalog.fetch(conn, "build_progress", {"pid": self.pid})
            if not rows:
                continue
            row = rows[0]
            wal_position = row["wal_position"]  # the coordinator's, also under Citus
            now = time.monotonic()
            blocker = None
            shard_row = _on_shards(conn, self.pid) if citus else None
            row = shard_row or row
            if row["waiting"]:
                wait_started = wait_started or now
                if shard_row:
                    blocker = shard_row["blocker"]
                else:
                    blocker_pid = row["locker_pid"] or next(iter(row["blocking_pids"] or []), None)
                    blocker = catalog.backend(conn, blocker_pid) if blocker_pid else None
                self.last_blocker = blocker or self.last_blocker
            else:
                wait_started = None
            waited = now - wait_started if wait_started else 0.0
            self.on_snapshot(Snapshot(
                elapsed=now - started, phase=row["phase"],
                blocks_done=row["blocks_done"], blocks_total=row["blocks_total"],
                tuples_done=row["tuples_done"], tuples_total=row["tuples_total"],
                waiting_seconds=waited, blocker=blocker, wal_position=wal_position))
            if waited > self.max_wait and not self.cancelled:
                self.cancelled = True
                self.cancelled_by = blocker
                # ::int: Citus adds a pg_cancel_backend(bigint), for its global pids.
                conn.execute("SELECT pg_cancel_backend(%s::int)", [self.pid])


def _on_shards(conn: psycopg.Connection, pid: int) -> dict | None:
    """Citus: the build's shard commands on the workers as one progress row (the coordinator's backend
    only waits for them): the phase of the first that waits on a lock (else of the first), which shard
    and node, counters summed, and the session it waits for there. None when no shard command runs."""
    shards = catalog.fetch(conn, "citus_build_progress", {"pid": pid})
    if not shards:
        return None
    first = shards[0]  # a waiting one first
    blocker = (catalog.Backend(first["blocker_pid"], first["blocker_role"], first["blocker_state"],
                               first["blocker_age_seconds"], first["blocker_query"], node=first["node"])
               if first["blocker_pid"] else None)
    return {"waiting": first["waiting"], "blocker": blocker,
            "phase": f"{first['phase'] or 'running'} ({len(shards)} shard commands on workers; "
                     f"{first['shard_index'] or 'a shard'} on {first['node']})",
            **{counter: sum(s[counter] or 0 for s in shards)
               for counter in ("blocks_done", "blocks_total", "tuples_done", "tuples_total")}}
