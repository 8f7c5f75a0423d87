"""Who a server session is, as pg_stat_activity shows it: a backend (one that blocks a build, or runs
one), the migrator lock's holder and the lock's key."""


import psycopg

from .catalog import fetch
from .records import Record


class Backend(Record):
    """A server backend as pg_stat_activity shows it: a session that blocks a build, or runs one."""

    pid: int
    role: str
    state: str
    age_seconds: int
    query: str
    node: str | None = None  # Citus: the worker it runs on (None: the server we are connected to)

    def describe(self) -> str:
        where = f" on {self.node}" if self.node else ""
        return f"pid {self.pid}{where} ({self.role}, {self.state}, open {self.age_seconds}s): {self.query!r}"


def backend(conn: psycopg.Connection, pid: int) -> Backend | None:
    rows = fetch(conn, "session", {"pid": pid})
    return Backend(**rows[0]) if rows else None


# 'upst' << 32 | 'idxs': the advisory lock key every migrator of this tool takes (migrator_lock.held).
MIGRATOR_LOCK_KEY = (0x75707374 << 32) | 0x69647873


class Migrator(Record):
    """The session holding the migrator lock, as pg_stat_activity shows it."""

    pid: int
    application_name: str | None
    client_addr: str | None  # None: a local socket
    connected_seconds: int

    def describe(self) -> str:
        return (f"the migrator in pid {self.pid} ({self.application_name}, from {self.client_addr or 'local socket'}, "
                f"connected {self.connected_seconds}s)")


def migrator(conn: psycopg.Connection) -> Migrator | None:
    """The session holding the migrator lock, or None."""
    holders = fetch(conn, "advisory_holder", {"key": MIGRATOR_LOCK_KEY})
    return Migrator(**holders[0]) if holders else None
