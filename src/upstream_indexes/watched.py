"""A session's statements run under the watchdog, and how they ended, sorted: done; blocked (a
Blocked: --max-wait, --max-wait-after-build or a lock_timeout ended a wait; the caller may retry);
failed (StepFailed); the connection lost (LostConnection). Also the wait, watched, for a build of
our name that another backend runs (a killed run's orphan)."""

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import pq

from . import backends, catalog, db, index_events, planner, topology
from .catalog import IndexState, State
from .db import one_line
from .errors import (CancelledByAnother, LostConnection, OrphanOutlasted, StatementFailed, ToolError,
                     WatchdogLost)
from .ledger import Ledger
from .migrations import IndexMigration
from .partitions import SHORT_LOCK_TIMEOUT
from .records import Record
from .run import Run
from .sessions import Session
from .watchdog import Snapshot, Watchdog, built

# A build's sort out of temporary file space: disk_full (53100), configuration_limit_exceeded (53400:
# temp_file_limit). Either way the operator's levers are the same (errors.TEMP_SPACE_HINT).
TEMP_SPACE_SQLSTATES = ("53100", "53400")
ORPHAN_POLL_SECONDS = 1.0  # how often the state of an index another backend builds is read again


class Blocked(Record):
    """Why a watched session stopped waiting: for whom, in which phase, ended by which limit."""

    blocker: str  # the session it waited for, as the operator should see it
    phase: str | None
    limit: str  # what ended the wait: a flag, or the migration file's lock_timeout

    @property
    def after_build(self) -> bool:
        """The index was built: the wait was only for it to become valid."""
        return built(self.phase)


def execute(run: Run, book: Ledger, session: Session) -> Blocked | None:
    """Run the session's statements on a new connection of the ledger's, watched; None when they all ran.

    The caller cleans up after a failed statement, under --max-wait. When --max-wait,
    --max-wait-after-build or a lock_timeout stopped it: a Blocked naming the session it waited for.
    Other database errors raise StepFailed (LostConnection when the connection is gone).
    """
    m = session.migration
    run.wal_marks.append(topology.mark(book.connection))
    with book.build_connection() as conn, _settings_reset(conn):
        conn.add_notice_handler(lambda d: run.listener.emit(
            index_events.ServerNotice(m.index, d.severity_nonlocalized, d.message_primary)))
        # For this session only: _settings_reset's RESET ALL takes them back with the file's own SETs.
        for name, value in run.options.build_settings if session.builds else ():
            conn.execute("SELECT set_config(%s, %s, false)", [name, value])
        watchdog = Watchdog(run.target, topology.backend_pid(conn), run.options.max_wait,
                            lambda snap: _progress(run, m, snap), run.options.max_wait_after_build, build=conn,
                            on_reconnect=lambda cause: run.listener.emit(
                                index_events.WatchdogReconnected(m.index, cause)))
        try:
            with index_events.statements(run.listener, m.index), watchdog:
                for statement in session.statements:
                    if statement.note and session.partitioned:
                        run.listener.emit(index_events.PartitionStatement(m.index, statement.note))
                    conn.execute(statement.sql)
        except psycopg.Error as exc:
            db.raise_if_interrupted()  # Ctrl-C cancelled it (or cut it, the server not answering)
            if watchdog.lost:
                ended = ("every session of ours was closed, not even a cancel reaching the server (it may finish "
                         "or abort it)") if watchdog.cut_off else "it was cancelled"
                raise WatchdogLost(f"{m.id}: {session.direction} of {m.index}", watchdog.lost, ended,
                                   run.report.command) from None
            if isinstance(exc, (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable)):
                # Ours (--max-wait, --max-wait-after-build) or the file's lock_timeout: "blocked"; retried
                # only while nothing was built (executor.Executor._build).
                if watchdog.cancelled or isinstance(exc, psycopg.errors.LockNotAvailable):
                    return _blocked(run, session, watchdog)
                raise CancelledByAnother(m.id, session.direction, m.index, one_line(exc)) from None
            if conn.closed:
                raise LostConnection.during(m.id, session.direction, m.index, one_line(exc),
                                            run.report.command) from None
            raise StatementFailed(m.id, session.direction, one_line(exc), exc.sqlstate in TEMP_SPACE_SQLSTATES,
                                  exc.sqlstate) from None
    return None


def _blocked(run: Run, session: Session, watchdog: Watchdog) -> Blocked:
    """Which limit ended the wait the watchdog saw, and for whom."""
    blocker = watchdog.cancelled_by or watchdog.last_blocker
    phase = watchdog.last_phase
    if not watchdog.cancelled and session.partitioned:
        # A partitioned table: most likely a catalog-only statement's short lock_timeout
        # (the parent's CREATE, an ATTACH, the parent's DROP): nothing built waits there.
        limit = (f"a lock_timeout (the file's, or {SHORT_LOCK_TIMEOUT} on the catalog-only "
                 "statements of a partitioned table)")
        phase = None
    elif not watchdog.cancelled:
        limit = "the migration file's lock_timeout"
    elif watchdog.cancelled_after_build:
        limit = f"--max-wait-after-build {run.options.max_wait_after_build:g}s"
    else:
        limit = f"--max-wait {run.options.max_wait:g}s"
    return Blocked(blocker.describe() if blocker else "another session", phase, limit)


@contextmanager
def _settings_reset(conn: psycopg.Connection) -> Iterator[None]:
    """RESET ALL before the connection is released: a pooler that hands it to another client without
    DISCARD ALL (server_reset_query = '') must not pass on the migration files' own SETs."""
    try:
        yield
    finally:
        if not conn.broken and conn.info.transaction_status == pq.TransactionStatus.IDLE:
            conn.execute("RESET ALL")


def _progress(run: Run, m: IndexMigration, snap: Snapshot) -> None:
    """A watchdog's look at a build: shown, and its WAL position noted (standby lag is measured
    from the first of these marks a standby has not replayed)."""
    if snap.wal_position is not None:
        run.wal_marks.append(topology.WalMark(snap.wal_position, time.monotonic()))
    run.listener.emit(index_events.Progress(m.index, snap))
    if snap.built and snap.waiting_seconds > run.options.max_wait and m.id not in run.told_built_waits:
        run.told_built_waits.add(m.id)
        run.listener.emit(index_events.BuiltIndexWaits(
            m.id, m.index, m.table, snap.phase, snap.blocker.describe() if snap.blocker else "another session",
            run.options.max_wait,
            None if run.options.max_wait_after_build == math.inf else run.options.max_wait_after_build))


def wait_for_orphan(run: Run, book: Ledger, state: IndexState) -> IndexState:
    """Wait, showing its progress, for a CREATE INDEX of our name that another backend is running;
    at most --max-wait, then stop (exit 3): the next run picks it up where it is then."""
    m = state.migration
    pid = state.building_pid
    run.listener.emit(index_events.WaitingForOrphan(m.id, m.index, pid, run.options.max_wait))
    deadline = time.monotonic() + run.options.max_wait
    what = f"waiting for the CREATE INDEX of {m.index} in pid {pid}"
    # Watched for the operator, never cancelled: it is not ours to stop.
    with Watchdog(run.target, pid, math.inf, lambda snap: _progress(run, m, snap),
                  on_reconnect=lambda cause: run.listener.emit(
                      index_events.WatchdogReconnected(m.index, cause))) as watchdog:
        while state.state == State.BUILDING:
            if watchdog.lost:
                raise WatchdogLost(f"{m.id}: {what}", watchdog.lost, "the wait was ended (that build is not ours "
                                   "to stop)", run.report.command)
            if time.monotonic() > deadline:
                with db.answered_within(book.connection, db.ANSWER_SECONDS, what):
                    builder = backends.backend(book.connection, pid)
                raise OrphanOutlasted(m.index, builder.describe() if builder else f"pid {pid}", pid,
                                      run.options.max_wait, run.report.command)
            db.pause(ORPHAN_POLL_SECONDS)
            with db.answered_within(book.connection, db.ANSWER_SECONDS, what):
                state = catalog.index_state(book.connection, m)
    run.listener.emit(index_events.OrphanEnded(m.id, m.index, state.state.value))
    if state.state == State.FOREIGN:
        raise ToolError(planner.foreign_reason(state))
    return state
