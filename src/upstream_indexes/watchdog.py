"""The watchdog of an index build, on a second connection: it reads the build's phase and counters
(pg_stat_progress_create_index), the time left in a phase that counts, and,
while it waits on a lock, whom it waits for; and it enforces --max-wait by cancelling
a build that waited too long before building; a build that has built its index
and only waits (for old snapshots, for writers before validation) is cancelled
only past --max-wait-after-build. On a Citus coordinator the build's backend
only waits for its shard commands: the watchdog reads those on the workers
instead."""

import math
import threading
import time
from collections.abc import Callable

import psycopg

from . import backends, catalog, db
from .config import Target
from .db import connect, one_line
from .errors import ConnectionProblem, NoAnswer
from .records import Record

POLL_SECONDS = 0.25
RECONNECT_SECONDS = 10.0  # how long the watchdog tries to connect again after its connection failed
CANCEL_SECONDS = 2.0  # how long it gives the cancel of a build it can no longer watch
# VALIDATE CONSTRAINT's only phase (queries/build_progress.sql): it waits for its lock before any work.
VALIDATING = "validating"
# The phases of CREATE INDEX CONCURRENTLY up to and while it builds its index ("running": a Citus shard
# command whose phase is not known yet). A wait before the build costs nothing to cancel; once the index
# is built, cancelling throws that work away.
UNBUILT_PHASES = ("initializing", "waiting for writers before build", "building index", "running", VALIDATING)


def built(phase: str | None) -> bool:
    """Whether a build in `phase` has built its index (it then only validates or waits). A phase may
    carry a suffix (Citus: which shard commands)."""
    return phase is not None and not phase.startswith(UNBUILT_PHASES)


def counter(phase: str | None, blocks_done, blocks_total, tuples_done, tuples_total) -> tuple[int, int, str] | None:
    """The counter pg_stat_progress_create_index advances in this phase: blocks while it scans the
    table, tuples while it loads or scans the index; None in the others (waiting, sorting)."""
    phase = phase or ""
    if "scanning table" in phase and blocks_total:
        return blocks_done or 0, blocks_total, "blocks"
    if ("loading tuples" in phase or "scanning index" in phase) and tuples_total:
        return tuples_done or 0, tuples_total, "tuples"
    return None


class Snapshot(Record):
    """One look at the build backend."""

    elapsed: float
    phase: str | None
    blocks_done: int | None
    blocks_total: int | None
    tuples_done: int | None
    tuples_total: int | None
    waiting_seconds: float  # 0 when not waiting on a lock
    blocker: backends.Backend | None
    wal_position: int | None = None  # the server's WAL insert position (bytes from 0/0) at this look
    seconds_left: float | None = None  # in this phase, at its pace so far (None: no counter, or no pace yet)

    @property
    def built(self) -> bool:
        return built(self.phase)

    @property
    def counter(self) -> tuple[int, int, str] | None:
        """(done, total, unit) of the counter this phase advances, or None."""
        return counter(self.phase, self.blocks_done, self.blocks_total, self.tuples_done, self.tuples_total)


class Pace:
    """The time left in a phase that counts blocks or tuples, at the pace since the phase began."""

    def __init__(self):
        self._start: tuple[str | None, float, int] | None = None  # phase, when first seen, its count then

    def seconds_left(self, phase: str | None, now: float, count: tuple[int, int, str] | None) -> float | None:
        if count is None:
            self._start = None
            return None
        done, total, _ = count
        if self._start is None or self._start[0] != phase or done < self._start[2]:
            self._start = (phase, now, done)
            return None
        _, since, done_then = self._start
        if done == done_then or now == since:
            return None
        return (total - done) * (now - since) / (done - done_then)


class Watchdog:
    """A thread that polls the build backend `pid` until stopped.

    Every poll goes to `on_snapshot`. When the backend has waited on a lock
    for more than `max_wait` seconds in a row before building its index, or
    more than `max_wait_after_build` after building it, it is cancelled
    (pg_cancel_backend), `cancelled_by` names the session it waited for and
    `cancelled_after_build` says which. `last_phase` is the phase of its last look.

    Its own connection may fail (a DBA terminates it, an idle timeout, a network that stops
    answering: a look without an answer in db.ANSWER_SECONDS): it connects again, for up to
    RECONNECT_SECONDS, and tells `on_reconnect` why it had to. If it cannot, `lost` says why, and
    `build`, the connection running the statements it watches (None: not ours to stop), is
    cancelled; if not even the cancel reaches the server within CANCEL_SECONDS, every connection of
    ours is cut (`cut_off`): a build never runs on without its --max-wait.
    """

    def __init__(self, target: Target, pid: int, max_wait: float, on_snapshot: Callable[[Snapshot], None],
                 max_wait_after_build: float = math.inf, build: psycopg.Connection | None = None,
                 on_reconnect: Callable[[str], None] = lambda cause: None):
        self.target = target
        self.pid = pid
        self.max_wait = max_wait
        self.max_wait_after_build = max_wait_after_build
        self.on_snapshot = on_snapshot
        self.build = build
        self.on_reconnect = on_reconnect
        self.cancelled_by: backends.Backend | None = None
        self.cancelled = False
        self.cancelled_after_build = False
        self.last_blocker: backends.Backend | None = None
        self.last_phase: str | None = None
        self.lost: str | None = None  # why it could not watch on, once it could not
        self.cut_off = False  # the build's cancel did not reach the server: every connection was cut
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{pid}", daemon=True)
        self._started = time.monotonic()
        self._wait_started: float | None = None
        self._waited_built: bool | None = None  # whether the current wait began after the build
        self._pace = Pace()

    def __enter__(self) -> "Watchdog":
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
        conn = self._conn
        while True:
            try:
                with conn:
                    citus = None
                    while not self._stop.wait(POLL_SECONDS):
                        with db.answered_within(conn, db.ANSWER_SECONDS, "watching the build", others_too=False):
                            citus = catalog.has_citus(conn) if citus is None else citus
                            self._look(conn, citus)
                return
            except (psycopg.Error, NoAnswer) as exc:
                if self._stop.is_set() or db.interrupted():
                    return  # ended on purpose: the statements it watched have ended, or Ctrl-C
                cause = one_line(exc) if isinstance(exc, psycopg.Error) else \
                    f"no answer within {db.ANSWER_SECONDS:g}s"
                conn = self._reconnect(cause)
                if conn is None:
                    return

    def _reconnect(self, cause: str) -> psycopg.Connection | None:
        """A new connection, within RECONNECT_SECONDS (then None, after ending what it watched)."""
        deadline = time.monotonic() + RECONNECT_SECONDS
        while True:
            try:
                conn = connect(self.target)
            except ConnectionProblem as problem:
                if time.monotonic() < deadline and not self._stop.wait(1.0):
                    continue
                if not self._stop.is_set():
                    self._give_up(f"{cause}; then {problem}")
                return None
            if self._stop.is_set():  # what it watched ended meanwhile
                conn.close()
                return None
            self.on_reconnect(cause)
            return conn

    def _give_up(self, why: str) -> None:
        """Watching is over: cancel the statements it watched, if ours; cut everything if even that fails."""
        self.lost = why
        if self.build is None:
            return
        deadline = time.monotonic() + CANCEL_SECONDS
        try:
            self.build.cancel_safe(timeout=CANCEL_SECONDS)
            while db.busy(self.build) and time.monotonic() < deadline:
                time.sleep(0.05)
        except psycopg.Error:
            pass  # the cancel did not get through either
        if db.busy(self.build):
            self.cut_off = True
            db.cut_all()

    def _look(self, conn: psycopg.Connection, citus: bool) -> None:
        rows = catalog.fetch(conn, "build_progress", {"pid": self.pid})
        if not rows:
            return
        row = rows[0]
        wal_position = row["wal_position"]  # the coordinator's, also under Citus
        now = time.monotonic()
        blocker = None
        shard_row = _on_shards(conn, self.pid) if citus else None
        row = shard_row or row
        phase_built = built(row["phase"])
        if row["waiting"]:
            # A wait after the build is a wait of its own, with its own limit.
            if self._waited_built != phase_built:
                self._wait_started, self._waited_built = None, phase_built
            self._wait_started = self._wait_started or now
            if shard_row:
                blocker = shard_row["blocker"]
            else:
                blocker_pid = row["locker_pid"] or next(iter(row["blocking_pids"] or []), None)
                blocker = backends.backend(conn, blocker_pid) if blocker_pid else None
            self.last_blocker = blocker or self.last_blocker
        else:
            self._wait_started = None
        waited = now - self._wait_started if self._wait_started else 0.0
        self.last_phase = row["phase"]
        counts = (row["blocks_done"], row["blocks_total"], row["tuples_done"], row["tuples_total"])
        self.on_snapshot(Snapshot(
            elapsed=now - self._started, phase=row["phase"],
            blocks_done=row["blocks_done"], blocks_total=row["blocks_total"],
            tuples_done=row["tuples_done"], tuples_total=row["tuples_total"],
            waiting_seconds=waited, blocker=blocker, wal_position=wal_position,
            seconds_left=self._pace.seconds_left(row["phase"], now, counter(row["phase"], *counts))))
        limit = self.max_wait_after_build if phase_built else self.max_wait
        if waited > limit and not self.cancelled:
            self.cancelled = True
            self.cancelled_after_build = phase_built
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
    blocker = (backends.Backend(first["blocker_pid"], first["blocker_role"], first["blocker_state"],
                               first["blocker_age_seconds"], first["blocker_query"], node=first["node"])
               if first["blocker_pid"] else None)
    return {"waiting": first["waiting"], "blocker": blocker,
            "phase": f"{first['phase'] or 'running'} ({len(shards)} shard commands on workers; "
                     f"{first['shard_index'] or 'a shard'} on {first['node']})",
            **{counter: sum(s[counter] or 0 for s in shards)
               for counter in ("blocks_done", "blocks_total", "tuples_done", "tuples_total")}}
