"""migrate, rollback, status: the orchestration around yoyo.

Order of every migrate / rollback:
  1. read and check the migration files (no connection yet);
  2. connect, pre-flight (read-only): server, tables, columns, privileges;
  3. take the migrator lock: a session-level advisory lock, polled, so the
     waiter holds no transaction a concurrent index build would wait for,
     and the holder's death releases it;
  4. plan from the catalog (read-only): each index absent / valid / INVALID /
     still building / foreign; refuse foreign definitions before any change;
  5. only now open yoyo (which creates its tables), clear a stale yoyo_lock
     row, and run each migration file through yoyo under its lock, with a
     watcher on a second connection for progress and --max-wait.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg.conninfo import conninfo_to_dict
from yoyo import read_migrations
from yoyo.backends.core.postgresql import PostgresqlPsycopgBackend
from yoyo.connections import DatabaseURI

from . import catalog, migrations, overlaps
from .catalog import IndexState, State
from .config import APPLICATION_NAME, Target
from .db import connect, one_line, translate_errors
from .errors import EXIT_OK, BlockedProblem, PreflightProblem, ToolError
from .migrations import IndexMigration
from .overlaps import Overlap
from .paths import MIGRATIONS_DIR
from .progress import Watcher
from .report import Reporter, human_size

# 'upst' << 32 | 'idxs': the advisory lock key every migrator of this tool takes.
MIGRATOR_LOCK_KEY = (0x75707374 << 32) | 0x69647873
MIN_SERVER_VERSION = 120000  # INCLUDE (11) and pg_stat_progress_create_index (12)
LOCK_POLL_SECONDS = 1.0
STATUS_WORK_TO_DO = 1  # status exit-code bits (README, "Exit codes")
STATUS_NEEDS_HUMAN = 4

# yoyo logs its own failures with tracebacks; we report them ourselves, in one line.
logging.getLogger("yoyo").addHandler(logging.NullHandler())
logging.getLogger("yoyo").propagate = False


@dataclass
class IndexOutcome:
    """What a run did to one index and where it left it (the per-index part of --json)."""

    migration: str
    index: str
    table: str
    action: str  # built | rebuilt | recorded | unchanged | dropped | pending (status)
    final_state: str  # a catalog.State value
    applied: bool  # yoyo's record after the run
    duration_s: float | None = None
    retries: int = 0
    size_bytes: int | None = None


@dataclass
class RunReport:
    """The result of migrate / rollback / status; the task prints it as --json."""

    command: str
    exit_code: int = EXIT_OK
    indexes: list[IndexOutcome] = field(default_factory=list)
    overlaps: list[Overlap] = field(default_factory=list)  # status: existing indexes ours make redundant


@dataclass(frozen=True)
class MigrateOptions:
    max_wait: float = 60.0  # seconds a build may wait on a lock before it is cancelled
    retries: int = 3  # further attempts after a cancelled build
    backoff: float = 5.0  # seconds before the first retry, doubled each time


@translate_errors
def migrate(target: Target, reporter: Reporter, options: MigrateOptions = MigrateOptions(),
            directory=MIGRATIONS_DIR) -> RunReport:
    """Apply every pending migration; converge to the indexes all valid."""
    files = migrations.load(directory)
    report = RunReport("migrate")
    with connect(target) as conn:
        preflight(conn, files)
        with migrator_lock(conn, reporter):
            states, applied = plan(conn, files)
            todo = [s for s in states if needs_work(s, applied)]
            for state in states:
                if state not in todo:
                    report.indexes.append(_outcome(state, "unchanged", applied=True))
            if not todo:
                reporter.line(f"nothing to migrate: all {len(files)} migrations applied, their indexes valid")
                return report
            started = time.monotonic()
            with Session(target, reporter, options, directory, report) as session:
                for state in todo:
                    session.apply(state, recorded=state.migration.id in applied)
            reporter.line(f"migrate: done in {time.monotonic() - started:.1f}s")
    return report


@translate_errors
def rollback(target: Target, reporter: Reporter, count: int = 1, everything: bool = False,
             force: bool = False, options: MigrateOptions = MigrateOptions(),
             directory=MIGRATIONS_DIR) -> RunReport:
    """Roll back the newest applied migration, the newest `count`, or all."""
    files = migrations.load(directory)
    report = RunReport("rollback")
    with connect(target) as conn:
        preflight(conn, files)
        with migrator_lock(conn, reporter):
            states, applied = plan(conn, files, refuse_foreign=False)
            newest_first = [s for s in reversed(states) if s.migration.id in applied]
            chosen = newest_first if everything else newest_first[:count]
            if not chosen:
                reporter.line("nothing to roll back: no migration is applied")
                return report
            foreign = [s for s in chosen if s.state == State.FOREIGN]
            if foreign and not force:
                raise ToolError("\n".join(_foreign_message(s) for s in foreign)
                                + "\nnothing was changed (rollback --force drops it anyway)")
            with Session(target, reporter, options, directory, report) as session:
                for state in chosen:
                    session.roll_back(state)
    return report


@translate_errors
def status(target: Target, reporter: Reporter, directory=MIGRATIONS_DIR) -> RunReport:
    """Report each migration and index, read-only. Exit code: 0 all applied and valid,
    bit 1 migrate has work to do, bit 4 a foreign index needs a human."""
    files = migrations.load(directory)
    report = RunReport("status")
    with connect(target) as conn:
        applied = catalog.applied_ids(conn)
        for migration in files:
            state = catalog.index_state(conn, migration)
            recorded = migration.id in applied
            report.indexes.append(_outcome(state, "applied" if recorded else "pending", applied=recorded))
            reporter.line(f"{migration.id:40} {'applied' if recorded else 'pending':8} {migration.index:30} "
                          f"{state.state.value:8} {human_size(state.size_bytes)}")
            if state.state == State.FOREIGN:
                report.exit_code |= STATUS_NEEDS_HUMAN
                reporter.line(f"  {_foreign_message(state)}")
            elif not recorded or state.state != State.VALID:
                report.exit_code |= STATUS_WORK_TO_DO
        report.overlaps = overlaps.find(conn, files)
        overlaps.show(reporter, report.overlaps)
    reporter.line("status: all applied and valid" if report.exit_code == EXIT_OK else
                  "status: " + ", ".join(word for bit, word in ((STATUS_WORK_TO_DO, "migrate has work to do"),
                                                                  (STATUS_NEEDS_HUMAN, "a foreign index needs a human"))
                                         if report.exit_code & bit))
    return report


def needs_work(state: IndexState, applied: set[str]) -> bool:
    """What migrate acts on: every index but those applied and valid."""
    return not (state.migration.id in applied and state.state == State.VALID)


def _outcome(state: IndexState, action: str, applied: bool, **timing) -> IndexOutcome:
    m = state.migration
    return IndexOutcome(m.id, m.index, m.table, action, state.state.value, applied,
                        size_bytes=state.size_bytes, **timing)


def preflight(conn: psycopg.Connection, files: list[IndexMigration]) -> None:
    """Everything that must hold before any DDL; PreflightProblem lists each failure, one per line."""
    problems = []
    version = catalog.server_version(conn)
    if version < MIN_SERVER_VERSION:
        problems.append(f"PostgreSQL {version // 10000} is not supported: need 12 or newer "
                        "(INCLUDE and pg_stat_progress_create_index)")
    session = catalog.fetch(conn, "preflight_session", {})[0]
    if session["in_recovery"]:
        problems.append("the server is a read-only standby; run against the primary")
    elif session["read_only"]:
        problems.append(f"the session of role {session['role']} is read-only (default_transaction_read_only)")
    if not session["yoyo_tables_exist"] and not session["can_create_in_schema"]:
        problems.append(f"role {session['role']} cannot create yoyo's bookkeeping tables in schema "
                        f"{session['schema']} (needs CREATE on it)")
    for table in dict.fromkeys(m.table for m in files):
        columns = sorted({c for m in files if m.table == table for c in m.columns})
        row = catalog.fetch(conn, "table_columns", {"table": table, "columns": columns})[0]
        if not row["table_exists"]:
            problems.append(f"table {table} does not exist (search_path of role {session['role']})")
            continue
        if row["missing_columns"]:
            problems.append(f"table {table} has no column {', '.join(row['missing_columns'])}")
        if not row["can_index"]:
            problems.append(f"role {session['role']} cannot create indexes on {table}: "
                            f"it is owned by {row['owner']} (own it or be a member of {row['owner']})")
    if problems:
        raise PreflightProblem("\n".join(problems))


def plan(conn: psycopg.Connection, files: list[IndexMigration],
         refuse_foreign: bool = True) -> tuple[list[IndexState], set[str]]:
    """The catalog state of every index and what yoyo recorded; refuse foreign definitions."""
    states = [catalog.index_state(conn, m) for m in files]
    foreign = [s for s in states if s.state == State.FOREIGN]
    if foreign and refuse_foreign:
        raise ToolError("\n".join(_foreign_message(s) for s in foreign) + "\nnothing was changed")
    return states, catalog.applied_ids(conn)


def _foreign_message(state: IndexState) -> str:
    return (f"{state.name} exists with another definition: found `{state.definition}`, "
            f"ours is `{state.migration.definition}`")


@contextmanager
def migrator_lock(conn: psycopg.Connection, reporter: Reporter) -> Iterator[None]:
    """Hold the session-level advisory lock; poll (no open transaction) while another migrator has it."""
    announced = None
    while not conn.execute("SELECT pg_try_advisory_lock(%s)", [MIGRATOR_LOCK_KEY]).fetchone()[0]:
        holders = catalog.fetch(conn, "advisory_holder", {"key": MIGRATOR_LOCK_KEY})
        holder = holders[0] if holders else None
        if holder and holder["pid"] != announced:
            announced = holder["pid"]
            reporter.line(f"waiting for the migrator in pid {holder['pid']} ({holder['application_name']}, "
                          f"from {holder['client_addr'] or 'local socket'}, "
                          f"connected {holder['connected_seconds']}s) to finish")
        time.sleep(LOCK_POLL_SECONDS)
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute("SELECT pg_advisory_unlock(%s)", [MIGRATOR_LOCK_KEY])


def yoyo_backend(target: Target) -> PostgresqlPsycopgBackend:
    """yoyo's backend on our conninfo (no URL round trip), its tables created."""
    params = conninfo_to_dict(target.conninfo or "")
    dbname = params.pop("dbname", None)
    params.setdefault("application_name", APPLICATION_NAME)
    uri = DatabaseURI("postgresql+psycopg", None, None, None, None, dbname, {k: str(v) for k, v in params.items()})
    backend = PostgresqlPsycopgBackend(uri, catalog.YOYO_MIGRATION_TABLE)
    backend.init_database()
    return backend


class Session:
    """One migrate or rollback run inside the migrator lock: yoyo's backend and lock, and the builds."""

    def __init__(self, target: Target, reporter: Reporter, options: MigrateOptions, directory,
                 report: RunReport):
        self.target = target
        self.reporter = reporter
        self.options = options
        self.report = report
        self.yoyo_migrations = {m.id: m for m in read_migrations(str(directory))}

    def __enter__(self) -> "Session":
        self.backend = yoyo_backend(self.target)
        self._clear_stale_yoyo_lock()
        self.backend.ensure_internal_schema_updated()
        self._lock = self.backend.lock()
        self._lock.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._lock.__exit__(*exc)
        finally:
            self.backend.connection.close()

    def _clear_stale_yoyo_lock(self) -> None:
        # We hold the migrator advisory lock, so no live migrator of ours owns this row.
        for row in catalog.fetch(self.backend.connection, "yoyo_lock", {}):
            self.reporter.line(f"removing a stale yoyo lock left by pid {row['pid']} at {row['ctime']} "
                               "(no migrator holds the advisory lock)")
            self.backend.break_lock()

    def apply(self, state: IndexState, recorded: bool) -> None:
        m = state.migration
        started = time.monotonic()
        if state.state == State.BUILDING:
            state = self._wait_for_orphan_build(state)
        if state.state == State.VALID:
            if not recorded:
                self.reporter.line(f"{m.id}: {m.index} already exists, valid and identical to ours "
                                   "(built by hand, or by a run that was killed): recorded as applied")
                self._record(m, "mark")
            self.report.indexes.append(_outcome(state, "recorded" if not recorded else "unchanged", applied=True))
            return
        action = "built"
        if state.state == State.INVALID:
            self.reporter.line(f"{m.id}: {m.index} is INVALID (left by a failed or cancelled build): "
                               "dropping it with DROP INDEX CONCURRENTLY")
            self._drop(m)
            action = "rebuilt"
        elif recorded:
            self.reporter.line(f"{m.id}: recorded as applied but {m.index} is missing: building it again")
            action = "rebuilt"
        built, retries = self._build(m)
        if not recorded:
            self._record(m, "apply")
        self.report.indexes.append(_outcome(built, action, applied=True, retries=retries,
                                            duration_s=round(time.monotonic() - started, 3)))

    def roll_back(self, state: IndexState) -> None:
        m = state.migration
        if state.state == State.BUILDING:
            state = self._wait_for_orphan_build(state)
        self.reporter.line(f"{m.id}: dropping {m.index} ...")
        started = time.monotonic()
        self._drop(m)
        self.backend.log_migration(self.yoyo_migrations[m.id], "rollback")
        with self.backend.transaction():
            self.backend.unmark_one(self.yoyo_migrations[m.id], log=False)
        duration = time.monotonic() - started
        self.reporter.line(f"{m.id}: rolled back in {duration:.1f}s")
        self.report.indexes.append(_outcome(catalog.index_state(self.backend.connection, m), "dropped",
                                            applied=False, duration_s=round(duration, 3)))

    def _build(self, m: IndexMigration) -> tuple[IndexState, int]:
        """Build with retries; return the valid index's state and how many retries it took."""
        attempts = self.options.retries + 1
        for attempt in range(1, attempts + 1):
            self.reporter.line(f"{m.id}: building {m.index} on {m.table} ..."
                               + (f" (attempt {attempt} of {attempts})" if attempt > 1 else ""))
            started = time.monotonic()
            watcher = self._run_steps(m, "apply")
            if watcher is None:
                state = catalog.index_state(self.backend.connection, m)
                if state.state != State.VALID:
                    raise ToolError(f"{m.index} is {state.state.value} after its build; run `invoke status`")
                self.reporter.line(f"{m.id}: built {m.index} in {time.monotonic() - started:.1f}s "
                                   f"({human_size(state.size_bytes)})")
                return state, attempt - 1
            blocker = watcher.cancelled_by or watcher.last_blocker
            who = blocker.describe() if blocker else "another session"
            self.reporter.line(f"{m.id}: waited more than {self.options.max_wait:g}s for {who}: "
                               "build cancelled")
            self._drop_if_invalid(m)
            if attempt < attempts:
                pause = self.options.backoff * 2 ** (attempt - 1)
                self.reporter.line(f"{m.id}: retrying in {pause:g}s")
                time.sleep(pause)
        raise BlockedProblem(f"{m.index} not built: {who} kept it waiting more than "
                             f"{self.options.max_wait:g}s on each of {attempts} attempts; "
                             "end or wait out that session, then run `invoke migrate` again")

    def _drop(self, m: IndexMigration) -> None:
        if self._run_steps(m, "rollback") is not None:
            raise BlockedProblem(f"{m.index} not dropped: another session kept DROP INDEX CONCURRENTLY "
                                 f"waiting more than {self.options.max_wait:g}s")

    def _drop_if_invalid(self, m: IndexMigration) -> None:
        if catalog.index_state(self.backend.connection, m).state == State.INVALID:
            self.reporter.line(f"{m.id}: dropping the INVALID {m.index} the cancelled build left")
            self._drop(m)

    def _run_steps(self, m: IndexMigration, direction: str) -> Watcher | None:
        """Run the migration's forward or rollback file through yoyo, watched.

        Returns None on success, the Watcher when --max-wait cancelled it;
        other database errors become a ToolError after cleanup.
        """
        with self.backend.copy() as build:
            conn = build.connection
            conn.add_notice_handler(lambda d: self._notice(m, d))
            watcher = Watcher(self.target, conn.info.backend_pid, self.options.max_wait,
                              lambda snap: self.reporter.progress(m.index, snap))
            try:
                with self.reporter.build(m.index), watcher:
                    self.yoyo_migrations[m.id].process_steps(build, direction)
            except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable) as exc:
                # Ours (--max-wait) or the file's lock_timeout: both mean "blocked", and both retry.
                if watcher.cancelled or isinstance(exc, psycopg.errors.LockNotAvailable):
                    return watcher
                raise ToolError(f"{m.index}: {direction} was cancelled by another session") from None
            except psycopg.Error as exc:
                if direction == "apply":
                    self._drop_if_invalid(m)
                raise ToolError(f"{m.id}: {direction} failed: {one_line(exc)}") from None
        return None

    def _notice(self, m: IndexMigration, diagnostic) -> None:
        # yoyo sends ROLLBACK before non-transactional steps; its warning is noise.
        if diagnostic.sqlstate != "25P01":
            self.reporter.line(f"  {m.index}: server {diagnostic.severity_nonlocalized}: {diagnostic.message_primary}")

    def _wait_for_orphan_build(self, state: IndexState) -> IndexState:
        m = state.migration
        self.reporter.line(f"{m.id}: a CREATE INDEX for {m.index} is still running in pid {state.building_pid} "
                           "(left by a killed run?): waiting for it to end")
        while state.state == State.BUILDING:
            time.sleep(LOCK_POLL_SECONDS)
            state = catalog.index_state(self.backend.connection, m)
        self.reporter.line(f"{m.id}: that build ended; {m.index} is now {state.state.value}")
        if state.state == State.FOREIGN:
            raise ToolError(_foreign_message(state))
        return state

    def _record(self, m: IndexMigration, operation: str) -> None:
        migration = self.yoyo_migrations[m.id]
        self.backend.log_migration(migration, operation)
        with self.backend.transaction():
            self.backend.mark_one(migration, log=False)
