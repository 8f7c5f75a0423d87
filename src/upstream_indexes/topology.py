"""Where the database sits: behind a pooler that shares server sessions, and with which standbys.

A transaction-mode (or statement-mode) pooler such as PgBouncer hands each
transaction of a client connection to whichever server session is free.
migrate and rollback need one server session for a CREATE/DROP INDEX
CONCURRENTLY, the SETs before it, the migrator lock and the watcher's view of
the build, so they refuse such a pooler before changing anything (status and
verify keep to single transactions and work through it).

Standbys: after each build or drop, migrate and rollback report how far each
standby's replay is behind (pg_stat_replication); with --max-replica-lag,
migrate waits before its next build until every standby is under it.
"""

import time

import psycopg

from . import catalog
from .config import Target
from .db import connect
from .records import Record

# Each probe is two statements on each of two connections; a pool that shares
# server sessions shows it at once when it is idle, and almost surely within a
# few probes when other clients keep it busy.
SHARING_PROBES = 5
REPLICA_POLL_SECONDS = 1.0


def backend_pid(conn: psycopg.Connection) -> int:
    """The server session's pid. Not conn.info.backend_pid: a pooler sends the client its own key."""
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def shared_server_sessions(conn: psycopg.Connection, target: Target) -> str | None:
    """How our connections were seen to share server sessions (a transaction- or statement-mode
    pooler), or None. A direct connection or a session-mode pool gives each client connection one
    backend for its lifetime: the pid it sees never changes, and no other connection sees it."""
    first = backend_pid(conn)
    with connect(target) as other:
        for _ in range(SHARING_PROBES):
            theirs, mine = backend_pid(other), backend_pid(conn)
            if theirs == mine:
                return f"two of our connections were served by the same server session (pid {mine})"
            if mine != first:
                return f"one of our connections was served by server session pid {first}, then by pid {mine}"
    return None


def pooler_problem(conn: psycopg.Connection, target: Target) -> str | None:
    """The pre-flight line refusing a pooler that shares server sessions, or None."""
    evidence = shared_server_sessions(conn, target)
    if evidence is None:
        return None
    return ("the connection goes through a pooler that shares server sessions between clients "
            f"(transaction or statement mode: {evidence}); a CREATE or DROP INDEX CONCURRENTLY, "
            "its SETs and the migrator lock need one server session: point --dsn at the server itself, "
            "or at a session-mode pool")


class Replica(Record):
    """One standby as pg_stat_replication shows it, its lag measured against our changes."""

    name: str
    client_addr: str
    state: str
    readable: bool  # False: the role may not read replay positions (needs pg_read_all_stats)
    behind_bytes: int | None
    lag_seconds: float | None

    def describe(self) -> str:
        where = f"standby {self.name} ({self.client_addr}, {self.state})"
        if not self.readable:
            return f"{where}: replay position unknown (reading it needs pg_read_all_stats, e.g. pg_monitor)"
        return f"{where}: replay {self.lag_seconds:.1f}s behind, {self.behind_bytes} bytes of WAL to replay"


class WalMark(Record):
    """The server's WAL insert position (bytes from 0/0) at a moment of ours: a build's or drop's
    start, each poll of its watcher, each poll while waiting for standbys. The insert position, not
    the write position: with asynchronous commit, WAL inserted before the mark may not be written
    yet, and a standby paused right there must still count as behind it."""

    position: int
    at: float  # time.monotonic()


def mark(conn: psycopg.Connection) -> WalMark:
    return WalMark(conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint")
                   .fetchone()[0], time.monotonic())


def replicas(conn: psycopg.Connection, marks: list[WalMark]) -> list[Replica]:
    """Every standby streaming from this server. Its lag: the server's replay_lag, or, while it has
    not replayed one of our `marks` (oldest first), at least the time since that mark. The server's
    replay_lag stops growing when replay stops (paused, or held back by a query on the standby); the
    marks, a quarter second apart during a build, keep the lag growing then."""
    now = time.monotonic()
    found = []
    for row in catalog.fetch(conn, "replicas", {}):
        lag = None
        if row["readable"]:
            unreplayed = [now - m.at for m in marks if m.position > row["replay_position"]]
            lag = max([row["replay_lag_seconds"] or 0.0, *unreplayed[:1]])
        found.append(Replica(row["name"], row["client_addr"], row["state"], row["readable"],
                             row["behind_bytes"], lag))
    return found


def unreadable_replicas(conn: psycopg.Connection) -> list[Replica]:
    """The standbys whose replay position this role may not read (--max-replica-lag needs them)."""
    return [r for r in replicas(conn, []) if not r.readable]
