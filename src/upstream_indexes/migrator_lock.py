"""The migrator lock: one migrate, rollback, accept or stamp at a time on a database.

A session-level advisory lock (backends.MIGRATOR_LOCK_KEY), polled at most --max-wait with no
transaction open, so the waiter holds nothing a concurrent index build would wait for, and the
holder's death releases it.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from . import backends, db, run_events, topology
from .db import one_line
from .errors import MigratorBusy
from .events import Listener

POLL_SECONDS = 1.0


@contextmanager
def held(conn: psycopg.Connection, listener: Listener, max_wait: float) -> Iterator[int]:
    """Hold the session-level advisory lock (yield the pid of the session holding it); poll (no open
    transaction) while another migrator has it, at most `max_wait` seconds (then MigratorBusy, naming it)."""
    announced = None
    deadline = time.monotonic() + max_wait
    while not _took(conn):
        with db.answered_within(conn, db.ANSWER_SECONDS, "waiting for the migrator lock"):
            holder = backends.migrator(conn)
        if holder and holder.pid != announced:
            announced = holder.pid
            listener.emit(run_events.WaitingForMigrator(holder.pid, holder.application_name, holder.client_addr,
                                                    holder.connected_seconds))
        if time.monotonic() > deadline:
            raise MigratorBusy(holder.describe() if holder else "another migrator", max_wait)
        db.pause(POLL_SECONDS)
    pid = topology.backend_pid(conn)
    try:
        yield pid
    finally:
        try:
            conn.execute("SELECT pg_advisory_unlock(%s)", [backends.MIGRATOR_LOCK_KEY])
        except psycopg.OperationalError as exc:
            # The session is gone, and its lock with it (a crash, a cut connection, a DBA): said, unless
            # what ended the run (Ctrl-C, a server that stopped answering) cut it.
            if not db.interrupted() and not db.server_unreachable():
                listener.emit(run_events.MigratorLockLost(pid, one_line(exc)))


def _took(conn: psycopg.Connection) -> bool:
    with db.answered_within(conn, db.ANSWER_SECONDS, "waiting for the migrator lock"):
        return conn.execute("SELECT pg_try_advisory_lock(%s)", [backends.MIGRATOR_LOCK_KEY]).fetchone()[0]
