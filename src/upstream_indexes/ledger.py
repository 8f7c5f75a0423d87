"""The ledger: what is applied here, in yoyo's tables and our checksum table, and the only module that
uses yoyo.

yoyo records a hash of a migration's id, not of its content, so a file edited after apply would run
(or be trusted) unnoticed. We keep IndexMigration.checksum (sha256 of the forward and rollback file)
in a table of our own next to yoyo's, written and deleted in the same transaction as yoyo's record,
and refuse to work with an applied migration whose files no longer match.

A build runs the statements of the text migrations.load read (`statements`, split as yoyo splits a
file; sessions.py), not yoyo's own reading of the files (it would read each again, before each build),
so the statements a build runs are the bytes whose sha256 is recorded; yoyo keeps the records and the
lock. The SQL on the bookkeeping tables is in queries/*.sql.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg
from psycopg.conninfo import conninfo_to_dict

from . import catalog
from .config import Target, connect_kwargs
from .db import one_line, track
from .errors import MigratorBusy, SessionLost
from .migrations import IndexMigration, split

# yoyo is imported where used: status, verify and a migrate with nothing to do read the
# records with our own SQL and never load them (docs/performance.md, "The tool's own overhead").
if TYPE_CHECKING:
    from yoyo.backends.core.postgresql import PostgresqlPsycopgBackend
    from yoyo.migrations import Migration

MIGRATION_TABLE = "_yoyo_migration"
LOG_TABLE = "_yoyo_log"
CHECKSUM_TABLE = "_upstream_indexes_checksum"

# yoyo logs its own failures with tracebacks; we report them ourselves, in one line.
logging.getLogger("yoyo").addHandler(logging.NullHandler())
logging.getLogger("yoyo").propagate = False
# yoyo warns of a nested transaction when its connection is lost (its status unknown): we report the loss.
warnings.filterwarnings("ignore", message="Nested transaction requested", module="yoyo")


def statements(m: IndexMigration, direction: str) -> list[str]:
    """What a build ("apply") or a drop ("rollback") of `m` runs, in order: its file's statements (in file
    order for a rollback file too, as yoyo, which pairs them with the forward steps in reverse and runs the
    pairs reversed again)."""
    return split(m.forward_sql if direction == "apply" else m.rollback_sql)


def _yoyo_migration(m: IndexMigration) -> Migration:
    """yoyo's model of `m`, for its records (yoyo keys them by the id's hash; the runner runs the steps)."""
    from yoyo.migrations import Migration

    migration = Migration(m.id, str(m.path), str(m.path.parent))
    migration.use_transactions = False  # the header grammar requires `-- transactional: false`
    return migration


# --- read-only: what is recorded ------------------------------------------------------------------

def applied_ids(conn: psycopg.Connection) -> set[str]:
    """The migration ids yoyo recorded; empty when yoyo never ran here."""
    if not catalog.table_exists(conn, MIGRATION_TABLE):
        return set()
    return {row["migration_id"] for row in catalog.fetch(conn, "applied_migrations", {})}


@dataclass(frozen=True)
class LogEntry:
    """One operation yoyo logged: when (UTC), the client's OS user and host, and our note (the role,
    the address the server saw, the duration) when this tool ran it."""

    migration: str
    operation: str  # apply | mark (recorded without building) | rollback | unmark
    at_utc: str
    os_user: str
    host: str
    note: str | None

    def describe(self) -> str:
        done = {"apply": "applied", "mark": "recorded", "rollback": "rolled back", "unmark": "unrecorded"}
        return (f"{done.get(self.operation, self.operation)} {self.at_utc} UTC by {self.os_user}@{self.host}"
                + (f" ({self.note})" if self.note else ""))


def history(conn: psycopg.Connection) -> list[LogEntry]:
    """yoyo's log of every migration operation, oldest first; empty when yoyo never ran here."""
    if not catalog.table_exists(conn, LOG_TABLE):
        return []
    return [LogEntry(row["migration_id"], row["operation"], f"{row['created_at_utc']:%Y-%m-%d %H:%M:%S}",
                     row["username"], row["hostname"], row["comment"])
            for row in catalog.fetch(conn, "history", {})]


def recorded_checksums(conn: psycopg.Connection) -> dict[str, str]:
    """migration id -> sha256 recorded at apply; empty before the first migrate."""
    if not catalog.table_exists(conn, CHECKSUM_TABLE):
        return {}
    return {row["migration_id"]: row["sha256"] for row in catalog.fetch(conn, "checksums", {})}


def edited(conn: psycopg.Connection, files: list[IndexMigration], applied: set[str]) -> list[str]:
    """One line per applied migration whose files changed since; empty when none did."""
    sums = recorded_checksums(conn)
    return [f"{m.id} changed after it was applied: {m.path.name} or {m.rollback_path.name} is not what was "
            f"applied (sha256 {sums[m.id][:12]}, now {m.checksum[:12]}); restore the files as they were applied "
            "(to change an applied index, roll it back with those files first), or, once a DBA has reviewed an "
            f"edit that leaves the index as built (a comment, a timeout), `invoke accept {m.id.split('.')[0]}`"
            for m in files if m.id in applied and m.id in sums and sums[m.id] != m.checksum]


# --- writes ---------------------------------------------------------------------------------------

def _ensure_checksum_table(conn: psycopg.Connection) -> None:
    """Create our table next to yoyo's, the first time (never from status or a failed pre-flight)."""
    if not catalog.table_exists(conn, CHECKSUM_TABLE):
        conn.execute(catalog.query("checksum_table"))


def accept(conn: psycopg.Connection, migration: IndexMigration) -> None:
    """Record the sha256 of an applied migration's files as they are now (`invoke accept`)."""
    _ensure_checksum_table(conn)
    conn.execute(catalog.query("checksum_accept"), {"migration_id": migration.id, "sha256": migration.checksum})


def _backend(target: Target) -> PostgresqlPsycopgBackend:
    """yoyo's backend on our conninfo (no URL round trip), with every setting our own connections have
    (db.connect): its connection is open when this returns, and counted among ours."""
    from yoyo.backends.core.postgresql import PostgresqlPsycopgBackend
    from yoyo.connections import DatabaseURI

    kwargs = connect_kwargs(target)
    params = {**conninfo_to_dict(kwargs.pop("conninfo")), **kwargs}
    dbname = params.pop("dbname", None)
    uri = DatabaseURI(scheme="postgresql+psycopg", username=None, password=None, hostname=None, port=None,
                      database=dbname, args={k: str(v) for k, v in params.items()})
    backend = PostgresqlPsycopgBackend(uri, MIGRATION_TABLE)
    track(backend.connection)
    return backend


@contextmanager
def _copy(backend: PostgresqlPsycopgBackend) -> Iterator[PostgresqlPsycopgBackend]:
    """backend.copy(), its connection counted among ours, closed on the way out."""
    with backend.copy() as other:
        track(other.connection)
        yield other


@contextmanager
def _yoyo_lock(backend: PostgresqlPsycopgBackend, timeout: float = 10) -> Iterator[None]:
    """yoyo's lock row, held (waiting up to `timeout` for another yoyo's: MigratorBusy); on the way out
    removed, unless the connection is gone (a crash, a cut network, a DBA: the next run removes the
    stale row), so that the error that ended the run is the one shown."""
    from yoyo.exceptions import LockTimeout

    lock = backend.lock(timeout)
    try:
        lock.__enter__()
    except LockTimeout:
        rows = catalog.fetch(backend.connection, "yoyo_lock", {})
        holder = f"yoyo in process {rows[0]['pid']} (since {rows[0]['ctime']})" if rows else "another yoyo"
        raise MigratorBusy(holder, timeout) from None
    try:
        yield
    finally:
        # Run to its end even on a lost connection: a generator left suspended would try again, with
        # a traceback, when it is collected.
        try:
            lock.__exit__(None, None, None)
        except psycopg.Error:
            pass


@contextmanager
def _lost_session_said(backend: PostgresqlPsycopgBackend, command: str) -> Iterator[None]:
    """A driver error on a ledger connection the server ended (pg_terminate_backend, an idle timeout,
    a crash) becomes one line saying so; the others pass."""
    try:
        yield
    except psycopg.Error as exc:
        if backend.connection.broken:
            raise SessionLost.ledger(one_line(exc), command) from None
        raise


class Ledger:
    """yoyo's backend for one migrate or rollback run, under yoyo's lock: its connection, the build
    connections, and the records the run writes. Open it with `opened`."""

    def __init__(self, backend: PostgresqlPsycopgBackend, files: list[IndexMigration], command: str = "migrate"):
        self._backend = backend
        self._migrations = {m.id: _yoyo_migration(m) for m in files}
        self._command = command

    @property
    def connection(self) -> psycopg.Connection:
        return self._backend.connection

    @contextmanager
    def build_connection(self) -> Iterator[psycopg.Connection]:
        """A new connection for one session's statements (sessions.py), closed on the way out. yoyo's
        connections are in autocommit: each statement runs on its own, as CONCURRENTLY needs. Not yoyo's
        process_steps: after a failed statement it runs the paired statements of the other file, i.e.
        after a cancelled CREATE an unbounded DROP INDEX CONCURRENTLY, after a cancelled DROP a CREATE
        INDEX CONCURRENTLY; the runner cleans up instead, under --max-wait."""
        with _copy(self._backend) as build:
            yield build.connection

    @contextmanager
    def beside(self) -> Iterator["Ledger"]:
        """This ledger on a connection of its own, for a build that runs beside others (migrate --jobs):
        it records its own index; yoyo's lock stays with this one. Closed on the way out."""
        with _copy(self._backend) as own, _lost_session_said(own, self._command):
            twin = copy.copy(self)
            twin._backend = own
            yield twin

    def record(self, m: IndexMigration, operation: str, started: float) -> None:
        """`m` applied ("apply": built; "mark": found built): logged, then yoyo's record and our
        checksum in one transaction."""
        self._log(m, operation, started)
        with self._backend.transaction():
            self._backend.mark_one(self._migrations[m.id], log=False)
            self.connection.execute(catalog.query("checksum_record"),
                                    {"migration_id": m.id, "sha256": m.checksum})

    def forget(self, m: IndexMigration, started: float) -> None:
        """`m` rolled back: logged, then yoyo's record and our checksum removed in one transaction."""
        self._log(m, "rollback", started)
        with self._backend.transaction():
            self._backend.unmark_one(self._migrations[m.id], log=False)
            self.connection.execute(catalog.query("checksum_forget"), {"migration_id": m.id})

    def _log(self, m: IndexMigration, operation: str, started: float) -> None:
        """yoyo's log entry, with our note of role, client address and duration (status history)."""
        self._backend.log_migration(self._migrations[m.id], operation)
        self.connection.execute(catalog.query("log_note"), {
            "migration_id": m.id, "duration_s": time.monotonic() - started})


@contextmanager
def opened(target: Target, files: list[IndexMigration], on_stale_lock: Callable[[int, object], None],
           command: str, lock_timeout: float) -> Iterator[Ledger]:
    """The ledger of one run (of `command`), for a caller that holds the migrator advisory lock: yoyo's
    and our tables created the first time, a stale yoyo lock row removed (`on_stale_lock(pid, ctime)` is
    told), yoyo's lock taken (waiting up to `lock_timeout` for another yoyo's). Its connection is closed
    on every way out, an error while opening too; its loss is said in one line (SessionLost)."""
    backend = _backend(target)
    with closing(backend.connection), _lost_session_said(backend, command):
        backend.init_database()
        _ensure_checksum_table(backend.connection)
        # The caller holds the migrator advisory lock, so no live migrator of ours owns a row here.
        for row in catalog.fetch(backend.connection, "yoyo_lock", {}):
            on_stale_lock(row["pid"], row["ctime"])
            backend.break_lock()
        backend.ensure_internal_schema_updated()
        with _yoyo_lock(backend, lock_timeout):
            yield Ledger(backend, files, command)
