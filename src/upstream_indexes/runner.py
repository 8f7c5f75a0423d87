"""migrate, rollback, status: the orchestration around yoyo.

Order of every migrate / rollback:
  1. read and check the migration files (no connection yet);
  2. connect, pre-flight (read-only): server, tables, columns, privileges;
  3. take the migrator lock: a session-level advisory lock, polled, so the
     waiter holds no transaction a concurrent index build would wait for,
     and the holder's death releases it;
  4. plan from the catalog (read-only): each index absent / valid / INVALID /
     still building / foreign; refuse foreign definitions and applied
     migration files edited since (ledger.py) before any change;
  5. only now open the ledger (yoyo, which creates its tables; ours too),
     clear a stale yoyo_lock row, and run each migration file's statements
     under yoyo's lock, with a watcher on a second connection for progress
     and --max-wait.
"""

import copy
import functools
import math
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import pq

from . import catalog, datachecks, events, ledger, migrations, overlaps, partitions, planner, steps, topology, versions
from .catalog import IndexState, State
from .config import Target
from .db import connect, one_line, read_only_transaction, translate_errors
from .errors import (EXIT_INTERRUPTED, EXIT_OK, INTERRUPTED, BlockedProblem, DataProblem, MigrationFileProblem,
                     PreflightProblem, STATUS_NEEDS_HUMAN, STATUS_WORK_TO_DO, StepFailed, ToolError)
from .grammar import Verb
from .migrations import Kind
from .migrations import IndexMigration
from .overlaps import Overlap
from .planner import Step
from .paths import MIGRATIONS_DIR
from .progress import Watcher, built
from .events import Listener

# 'upst' << 32 | 'idxs': the advisory lock key every migrator of this tool takes.
MIGRATOR_LOCK_KEY = (0x75707374 << 32) | 0x69647873
LOCK_POLL_SECONDS = 1.0
# A build's sort out of temporary file space: disk_full (53100), configuration_limit_exceeded (53400:
# temp_file_limit). Either way the operator's levers are the same.
TEMP_SPACE_SQLSTATES = ("53100", "53400")
TEMP_SPACE_HINT = ("the build's sort ran out of temporary file space: give it more memory (maintenance_work_mem, "
                   "e.g. PGOPTIONS='-c maintenance_work_mem=1GB'), a tablespace with room (temp_tablespaces), "
                   "or a higher temp_file_limit")

class LostConnection(StepFailed):
    """The server went away mid-step (a crash, a cut network): what it did with the step is for the next run to find."""


@dataclass(frozen=True)
class Blocked:
    """Why a watched step stopped waiting: for whom, in which phase, ended by which limit."""

    blocker: str  # the session it waited for, as the operator should see it
    phase: str | None
    limit: str  # what ended the wait: a flag, or the migration file's lock_timeout

    @property
    def after_build(self) -> bool:
        """The index was built: the wait was only for it to become valid."""
        return built(self.phase)


@dataclass
class IndexOutcome:
    """What a run did to one index and where it left it (the per-index part of --json)."""

    migration: str
    kind: str  # a migrations.Kind value: index | check | foreign key | promotion
    index: str  # the index or constraint it makes
    table: str
    action: str  # built | rebuilt | added | validated | recorded | unchanged | dropped | applied | pending (status)
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
    history: list[ledger.LogEntry] = field(default_factory=list)  # status: yoyo's log, oldest first


@dataclass(frozen=True)
class MigrateOptions:
    max_wait: float = 60.0  # seconds a build may wait on a lock before building (or for standbys) before it gives up
    max_wait_after_build: float = math.inf  # seconds a built index may wait (old snapshots, validation) to be valid
    retries: int = 3  # further attempts after a cancelled build
    backoff: float = 5.0  # seconds before the first retry, doubled each time
    max_replica_lag: float | None = None  # seconds every standby must be under before the next build
    build_settings: tuple[tuple[str, str], ...] = ()  # (parameter, value) for each build's session
    jobs: int = 1  # at most this many builds at once, each on another table (PostgreSQL 14+)
    data_checks: bool = True  # look for duplicate keys / violating rows before any change (datachecks.py)


def _reports_what_was_left(command):
    """On Ctrl-C, the interrupted error carries every index as the catalog has it now (a build
    cancelled part-way leaves an INVALID index), read on a connection of its own."""

    @functools.wraps(command)
    def wrapper(target: Target, reporter: Listener, *args, **kwargs):
        try:
            return command(target, reporter, *args, **kwargs)
        except KeyboardInterrupt:
            report = RunReport(command.__name__, EXIT_INTERRUPTED)
            with connect(target) as conn:
                applied = ledger.applied_ids(conn)
                for migration in migrations.load(kwargs.get("directory", MIGRATIONS_DIR)):
                    recorded = migration.id in applied
                    report.indexes.append(_outcome(catalog.index_state(conn, migration),
                                                   "applied" if recorded else "pending", applied=recorded))
            raise ToolError(INTERRUPTED, EXIT_INTERRUPTED, report) from None

    return wrapper


@translate_errors
@_reports_what_was_left
def migrate(target: Target, reporter: Listener, options: MigrateOptions = MigrateOptions(),
            directory=MIGRATIONS_DIR, dry_run: bool = False, to: str | None = None) -> RunReport:
    """Apply every pending migration (up to and including `to`); converge to those indexes all valid.
    With dry_run, only say what it would do (the pre-flight and the plan, read-only)."""
    files = migrations.load(directory)
    scope = migrations.up_to(files, to) if to else files
    report = RunReport("migrate")
    with connect(target) as conn:
        preflight(conn, files, target, options.max_replica_lag)
        check_build_settings(conn, options.build_settings)
        announce_citus(conn, files, reporter)
        with migrator_lock(conn, reporter):
            actions = [a for a in planner.migrate_plan(*read_state(conn, files)) if a.state.migration in scope]
            refuse(actions)
            todo = [a for a in actions if a.changes_something]
            if options.data_checks:
                check_data(conn, todo, reporter)
            report.indexes += [_outcome(a.state, "unchanged", applied=True) for a in actions if a not in todo]
            if not todo:
                reporter.emit(events.NothingToMigrate(len(scope), scope[-1].id if to else None))
                return report
            jobs = side_by_side(conn, todo, options.jobs, reporter)
            if dry_run:
                for action in todo:
                    reporter.emit(events.Planned(action.state.migration.id, action.reason))
                    report.indexes.append(_outcome(action.state, "pending", applied=action.recorded))
                reporter.emit(events.DryRunDone())
                return report
            started = time.monotonic()
            with ledger.opened(target, files, _stale_lock_announcer(reporter)) as book:
                MigrationRun(target, reporter, options, book, report).apply_all(todo, jobs)
            reporter.emit(events.MigrateDone(time.monotonic() - started))
    return report


@translate_errors
@_reports_what_was_left
def rollback(target: Target, reporter: Listener, count: int = 1, everything: bool = False,
             force: bool = False, options: MigrateOptions = MigrateOptions(),
             directory=MIGRATIONS_DIR, to: str | None = None, confirm=None) -> RunReport:
    """Roll back the newest applied migration, the newest `count`, all, or every one after `to`.

    More than one on a database that is not the embedded demo: `confirm(target, ids)` must agree
    first (it asks on a terminal, or raises)."""
    files = migrations.load(directory)
    kept = migrations.up_to(files, to) if to else []
    report = RunReport("rollback")
    with connect(target) as conn:
        preflight(conn, files, target, builds=False)
        announce_citus(conn, files, reporter)
        with migrator_lock(conn, reporter):
            states, applied = read_state(conn, files)
            if to:
                if kept[-1].id not in applied:
                    raise ToolError(f"--to {to}: {kept[-1].id} is not applied; rollback --to keeps it applied and "
                                    "rolls back the ones after it (--all rolls back everything)")
                # The applied ones after it are the newest applied: that many, newest first.
                count, everything = len([m for m in files[len(kept):] if m.id in applied]), False
            actions = planner.rollback_plan(states, applied, count, everything, force)
            if not actions:
                reporter.emit(events.NothingToRollBack(kept[-1].id if to else None))
                return report
            refuse(actions, " (rollback --force drops it anyway)")
            if len(actions) > 1 and not target.is_demo and confirm is not None:
                confirm(target, [a.state.migration.id for a in actions])
            with ledger.opened(target, files, _stale_lock_announcer(reporter)) as book:
                run = MigrationRun(target, reporter, options, book, report)
                for action in actions:
                    run.roll_back(action)
    return report


@translate_errors
def status(target: Target, reporter: Listener, directory=MIGRATIONS_DIR) -> RunReport:
    """Report each migration and index, read-only. Exit code: 0 all applied and valid,
    bit 1 migrate has work to do, bit 4 a human must decide (a foreign index, an applied file edited)."""
    files = migrations.load(directory)
    report = RunReport("status")
    with connect(target) as conn, read_only_transaction(conn):
        # As migrate says it: without the tables there is nothing to report on (exit 2, not "work to do").
        role = conn.execute("SELECT current_user").fetchone()[0]
        if problems := catalog.table_problems(conn, files, role, will_index=False):
            raise PreflightProblem("\n".join(problems))
        applied = ledger.applied_ids(conn)
        for edit in ledger.edited(conn, files, applied):
            report.exit_code |= STATUS_NEEDS_HUMAN
            reporter.emit(events.FileEdited(edit))
        report.history = ledger.history(conn)
        for migration in files:
            state = catalog.index_state(conn, migration)
            recorded = migration.id in applied
            report.indexes.append(_outcome(state, "applied" if recorded else "pending", applied=recorded))
            entries = [e for e in report.history if e.migration == migration.id]
            action = planner.migrate_action(state, recorded)
            if action.step == Step.REFUSE:
                report.exit_code |= STATUS_NEEDS_HUMAN
            elif action.changes_something:
                report.exit_code |= STATUS_WORK_TO_DO
            reporter.emit(events.IndexStatus(state, recorded, entries[-1] if recorded and entries else None,
                                             action.reason if action.step == Step.REFUSE else None))
        report.overlaps = overlaps.find(conn, files)
        reporter.emit(events.Overlaps(tuple(report.overlaps)))
    reporter.emit(events.StatusDone(work_to_do=bool(report.exit_code & STATUS_WORK_TO_DO),
                                    needs_human=bool(report.exit_code & STATUS_NEEDS_HUMAN)))
    return report


@translate_errors
def accept(target: Target, reporter: Listener, reference: str, directory=MIGRATIONS_DIR) -> RunReport:
    """Record the sha256 of an applied migration's edited files (Flyway's repair), once the index in
    the catalog has the edited file's definition; print the old and the new sha256."""
    files = migrations.load(directory)
    migration = migrations.up_to(files, reference, flag="accept")[-1]
    report = RunReport("accept")
    with connect(target) as conn:
        preflight(conn, files, target)
        with migrator_lock(conn, reporter):
            if migration.id not in ledger.applied_ids(conn):
                raise ToolError(f"{migration.id} is not applied: nothing to accept (migrate records its sha256)")
            old = ledger.recorded_checksums(conn).get(migration.id)
            if old == migration.checksum:
                reporter.emit(events.NothingToAccept(migration.id, old))
                return report
            state = catalog.index_state(conn, migration)
            if state.state != State.VALID:
                found = f"`{state.definition}`" if state.definition else state.state.value
                raise ToolError(f"{migration.id}: not accepted: the catalog's {migration.index} is "
                                f"{state.state.value} ({found}), the edited file builds "
                                f"`{migration.definition}`; nothing was changed")
            ledger.accept(conn, migration)
            reporter.emit(events.Accepted(migration.id, (migration.path.name, migration.rollback_path.name),
                                          old, migration.checksum))
    return report


def check_build_settings(conn: psycopg.Connection, build_settings) -> None:
    """The server's verdict on each build setting (pyproject.toml), tried for one transaction only."""
    for name, value in build_settings:
        try:
            with conn.transaction():
                conn.execute("SELECT set_config(%s, %s, true)", [name, value])
        except psycopg.Error as exc:
            raise PreflightProblem(f"settings: {name} = {value!r}: {one_line(exc)}") from None


def _outcome(state: IndexState, action: str, applied: bool, **timing) -> IndexOutcome:
    m = state.migration
    return IndexOutcome(m.id, m.kind.value, m.index, m.table, action, state.state.value, applied,
                        size_bytes=state.size_bytes, **timing)


def preflight(conn: psycopg.Connection, files: list[IndexMigration], target: Target,
              max_replica_lag: float | None = None, builds: bool = True) -> None:
    """Everything that must hold before any DDL (`builds`: migrate's, not rollback's);
    PreflightProblem lists each failure, one per line."""
    version = catalog.server_version(conn)
    problems = [p for p in (versions.unsupported(version), builds and versions.unsafe_to_build(version)) if p]
    pooled = topology.pooler_problem(conn, target)
    if pooled:
        problems.append(pooled)
    session = catalog.fetch(conn, "preflight_session", {})[0]
    if session["in_recovery"]:
        problems.append("the server is a read-only standby; run against the primary")
    elif session["read_only"]:
        problems.append(f"the session of role {session['role']} is read-only (default_transaction_read_only)")
    elif max_replica_lag is not None:
        problems += [f"--max-replica-lag: role {session['role']} may not read the replay position of "
                     f"standby {replica.name} (grant it pg_monitor, or pg_read_all_stats)"
                     for replica in topology.unreadable_replicas(conn)]
    if not session["bookkeeping_tables_exist"] and not session["can_create_in_schema"]:
        problems.append(f"role {session['role']} cannot create the bookkeeping tables in schema "
                        f"{session['schema']} (needs CREATE on it)")
    problems += catalog.table_problems(conn, files, session["role"])
    if builds and not problems:
        problems += catalog.partition_problems(conn, files)
    citus = catalog.citus(conn, [m.table for m in files]) if not problems else None
    if citus and citus.distributed and not citus.is_coordinator:
        problems.append("this is a Citus worker node: run against the coordinator, which builds the index "
                        "on every shard")
    if not problems:
        problems += catalog.kind_problems(conn, files, citus)
    if problems:
        raise PreflightProblem("\n".join(problems))


def announce_citus(conn: psycopg.Connection, files: list[IndexMigration], reporter: Listener) -> None:
    """On a Citus coordinator, say so: the builds go to every shard on every worker."""
    citus = catalog.citus(conn, [m.table for m in files])
    if citus and citus.distributed:
        reporter.emit(events.CitusCoordinator(citus))


# A check_violation / foreign_key_violation of VALIDATE: rows the pre-check did not see (written before the ADD).
VIOLATION_SQLSTATES = ("23514", "23503")
UNIQUE_VIOLATION = "23505"


def check_data(conn: psycopg.Connection, todo: list[planner.Action], reporter: Listener) -> None:
    """Before any change: each unique index to build, each CHECK or foreign key to add or validate, checked
    against the data (datachecks.py); what any finds stops the run, exit 2, nothing changed."""
    findings = []
    for action in todo:
        m = action.state.migration
        if datachecks.needed(m) and action.step in (Step.BUILD, Step.REBUILD, Step.DROP_INVALID_THEN_BUILD,
                                                    Step.VALIDATE):
            checked = datachecks.run(conn, m)
            if checked.finding:
                findings.append(checked.finding.describe())
            else:
                reporter.emit(events.DataChecked(m.id, checked.what, checked.seconds))
    if findings:
        raise DataProblem("\n".join(findings) + "\nnothing was changed (--skip-data-checks skips these checks)")


def side_by_side(conn: psycopg.Connection, todo: list[planner.Action], jobs: int, reporter: Listener) -> int:
    """How many builds migrate runs at once: --jobs, unless the server would make them wait on each
    other (then one, and one line why).

    CREATE INDEX CONCURRENTLY waits, after each table scan, for every transaction with an older
    snapshot: before PostgreSQL 14 also the transactions of a concurrent build on another table,
    so side by side each would wait for the other's phases. 14 skips builds of indexes without an
    expression or WHERE (on either side) in those waits; 14.0-14.3 is refused in pre-flight.
    """
    if jobs == 1:
        return 1
    if conn.info.server_version < versions.SAFE_CIC_SKIPPED:
        reporter.emit(events.OneAtATime(jobs, f"before PostgreSQL 14 (this server is "
                                              f"{versions.describe(conn.info.server_version)}) each CREATE INDEX "
                                              "CONCURRENTLY waits for the snapshots of every other one running, "
                                              "even on another table"))
        return 1
    if constraints := [a.state.migration.index for a in todo if not a.state.migration.kind.makes_index]:
        reporter.emit(events.OneAtATime(jobs, f"{', '.join(constraints)} "
                                              f"{'is a constraint' if len(constraints) == 1 else 'are constraints'}: "
                                              "an ALTER TABLE's brief lock, and a VALIDATE's scan, whose snapshot "
                                              "every concurrent build would wait for"))
        return 1
    if uneasy := [a.state.migration.index for a in todo if not a.state.migration.plain_columns]:
        reporter.emit(events.OneAtATime(jobs, f"{', '.join(uneasy)} has an expression or a WHERE, and PostgreSQL "
                                              "makes every concurrent build wait for the snapshots of such a one"))
        return 1
    return jobs


def read_state(conn: psycopg.Connection, files: list[IndexMigration]) -> tuple[list[IndexState], set[str]]:
    """What the planner decides from: the catalog state of every index and what yoyo recorded.
    Applied files edited since are refused here, before any plan."""
    applied = ledger.applied_ids(conn)
    edited = ledger.edited(conn, files, applied)
    if edited:
        raise MigrationFileProblem("\n".join(edited) + "\nnothing was changed")
    return [catalog.index_state(conn, m) for m in files], applied


def refuse(actions: list[planner.Action], hint: str = "") -> None:
    """A plan with a refusal in it runs nothing: every refusal, one line each."""
    refused = planner.refusals(actions)
    if refused:
        raise ToolError("\n".join(a.reason for a in refused) + "\nnothing was changed" + hint)


@contextmanager
def migrator_lock(conn: psycopg.Connection, reporter: Listener) -> Iterator[None]:
    """Hold the session-level advisory lock; poll (no open transaction) while another migrator has it."""
    announced = None
    while not conn.execute("SELECT pg_try_advisory_lock(%s)", [MIGRATOR_LOCK_KEY]).fetchone()[0]:
        holders = catalog.fetch(conn, "advisory_holder", {"key": MIGRATOR_LOCK_KEY})
        holder = holders[0] if holders else None
        if holder and holder["pid"] != announced:
            announced = holder["pid"]
            reporter.emit(events.WaitingForMigrator(holder["pid"], holder["application_name"],
                                                    holder["client_addr"], holder["connected_seconds"]))
        time.sleep(LOCK_POLL_SECONDS)
    try:
        yield
    finally:
        try:
            conn.execute("SELECT pg_advisory_unlock(%s)", [MIGRATOR_LOCK_KEY])
        except psycopg.OperationalError:
            pass  # the session is gone (a crash, a cut connection), and its lock with it


@contextmanager
def _settings_reset(conn: psycopg.Connection) -> Iterator[None]:
    """RESET ALL before the connection is released: a pooler that hands it to another client without
    DISCARD ALL (server_reset_query = '') must not pass on the migration files' own SETs."""
    try:
        yield
    finally:
        if not conn.broken and conn.info.transaction_status == pq.TransactionStatus.IDLE:
            conn.execute("RESET ALL")


def _stale_lock_announcer(reporter: Listener):
    return lambda pid, ctime: reporter.emit(events.StaleYoyoLockRemoved(pid, ctime))


class MigrationRun:
    """One migrate or rollback run inside the migrator lock, on an opened ledger: the builds and drops."""

    def __init__(self, target: Target, reporter: Listener, options: MigrateOptions, book: ledger.Ledger,
                 report: RunReport):
        self.target = target
        self.reporter = reporter
        self.options = options
        self.report = report
        self.ledger = book
        # The WAL insert position as each build or drop started, at each watcher poll, at each wait poll.
        self.wal_marks: list[topology.WalMark] = []
        self._told_built_waits: set[str] = set()  # migrations whose built index was said to wait on
        # --jobs: the connection of each build running now (Ctrl-C cancels them), and whether Ctrl-C came.
        self.builds: set[psycopg.Connection] = set()
        self.interrupted = threading.Event()

    def apply_all(self, todo: list[planner.Action], jobs: int) -> None:
        """Carry out the migrate actions in order, up to `jobs` at once, never two on one table.

        Each runs on a ledger connection of its own (yoyo's lock stays with ours) and is recorded as
        it ends. After a failure no further one starts; those running end as they would, then the
        first failure is raised. Ctrl-C cancels the running builds, as it cancels the one build of
        --jobs 1, and leaves what they left for the next run."""
        if jobs == 1:
            for action in todo:
                self.wait_for_replicas()
                self.apply(action)
            return
        pending = list(todo)
        running: dict[Future, str] = {}  # each running action's table
        failures: list[BaseException] = []
        with ThreadPoolExecutor(jobs, thread_name_prefix="build") as pool:
            try:
                while pending or running:
                    while pending and not failures and len(running) < jobs:
                        action = next((a for a in pending if a.state.migration.table not in running.values()),
                                      None)
                        if action is None:
                            break
                        pending.remove(action)
                        self.wait_for_replicas()
                        running[pool.submit(self._apply_on_own_connection, action)] = action.state.migration.table
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        del running[future]
                        if future.exception() is not None:
                            failures.append(future.exception())
            except KeyboardInterrupt:
                self.interrupted.set()
                for build in list(self.builds):
                    build.cancel()
                raise
        if failures:
            raise failures[0]

    def _apply_on_own_connection(self, action: planner.Action) -> None:
        with self.ledger.beside() as own:
            worker = copy.copy(self)
            worker.ledger = own
            worker.apply(action)

    def apply(self, action: planner.Action) -> None:
        """Carry out one migrate action (after an orphaned build ends: what the plan says then)."""
        m = action.state.migration
        started = time.monotonic()
        if action.step == Step.WAIT_FOR_ORPHAN:
            action = planner.migrate_action(self._wait_for_orphan_build(action.state), action.recorded)
        if action.step == Step.UNCHANGED:
            self.report.indexes.append(_outcome(action.state, "unchanged", applied=True))
            return
        if action.step == Step.RECORD:
            self.reporter.emit(events.Recorded(m.id, m.index))
            self.ledger.record(m, "mark", started)
            self.report.indexes.append(_outcome(action.state, "recorded", applied=True))
            return
        if not m.kind.makes_index:
            return self._constrain(action, started)
        if action.step == Step.DROP_INVALID_THEN_BUILD:
            self._drop_leftover(m)
        elif action.step == Step.REBUILD:
            self.reporter.emit(events.Rebuilding(m.id, m.index))
        elif action.step == Step.BUILD_PARTITIONS:
            self.reporter.emit(events.BuildingPartitions(m.id, action.reason))
        built, retries = self._build(m)
        if not action.recorded:
            self.ledger.record(m, "apply", started)
        fresh = action.step == Step.BUILD or (action.step == Step.BUILD_PARTITIONS and not action.recorded)
        self.report.indexes.append(_outcome(built, "built" if fresh else "rebuilt",
                                            applied=True, retries=retries,
                                            duration_s=round(time.monotonic() - started, 3)))

    def roll_back(self, action: planner.Action) -> None:
        """Carry out one rollback action: drop the index (after an orphaned build ends) and its record."""
        m = action.state.migration
        if action.step == Step.WAIT_FOR_ORPHAN:
            self._wait_for_orphan_build(action.state)
        self.reporter.emit(events.Dropping(m.id, m.index))
        started = time.monotonic()
        if not m.kind.makes_index:
            return self._unconstrain(m, started)
        expanded = self._expanded(m, rollback=True)
        blocked = self._run_steps(m, "rollback", expanded)
        if blocked is not None:
            bound = (f"its lock_timeout of {partitions.SHORT_LOCK_TIMEOUT} (a partitioned index: a plain DROP "
                     "INDEX, which would stop the table's reads and writes while it waits)"
                     if expanded is not None else f"{self.options.max_wait:g}s")
            statement = "DROP INDEX" if expanded is not None else "DROP INDEX CONCURRENTLY"
            raise BlockedProblem(f"{m.index} not dropped: {statement} waited more than {bound} for "
                                 f"{blocked.blocker}; it is still recorded as applied "
                                 "(`invoke status` shows whether it is valid or INVALID now); "
                                 "run `invoke rollback` again once that session has ended")
        self.ledger.forget(m, started)
        duration = time.monotonic() - started
        self.reporter.emit(events.RolledBack(m.id, duration))
        self._show_replicas()
        self.report.indexes.append(_outcome(catalog.index_state(self.ledger.connection, m), "dropped",
                                            applied=False, duration_s=round(duration, 3)))

    def _build(self, m: IndexMigration) -> tuple[IndexState, int]:
        """Build with retries; return the valid index's state and how many retries it took."""
        attempts = self.options.retries + 1
        for attempt in range(1, attempts + 1):
            self.reporter.emit(events.BuildStarted(m.id, m.index, m.table, attempt, attempts))
            started = time.monotonic()
            try:
                blocked = self._run_steps(m, "apply", self._expanded(m, rollback=False))
            except LostConnection:
                raise  # the cleanup needs the server too; the next run does it
            except StepFailed as failed:
                if self.interrupted.is_set():
                    raise  # Ctrl-C cancelled it: the INVALID leftover is the next run's, as with one build
                try:
                    self._drop_leftover(m)
                except psycopg.OperationalError as exc:
                    raise LostConnection(f"{failed}; then lost the connection ({one_line(exc)}) before dropping "
                                         f"its INVALID leftover: `invoke migrate` drops it first") from None
                if failed.sqlstate == UNIQUE_VIOLATION:
                    raise StepFailed(f"{m.id}: the unique build of {m.index} met a key more than one row holds, "
                                     f"written since the check for duplicates ({failed.detail}); its INVALID index "
                                     "was dropped and nothing recorded: remove the duplicate, then run "
                                     "`invoke migrate` again") from None
                raise
            if blocked is None:
                state = catalog.index_state(self.ledger.connection, m)
                if state.state != State.VALID:
                    raise StepFailed(f"{m.index} is {state.state.value} after its build; run `invoke status`")
                self.reporter.emit(events.Built(m.id, m.index, time.monotonic() - started, state.size_bytes))
                self._show_replicas()
                return state, attempt - 1
            if blocked.after_build:
                self._gave_up_after_build(m, blocked)
            self.reporter.emit(events.BuildCancelled(m.id, self.options.max_wait, blocked.blocker))
            self._drop_leftover(m)
            if attempt < attempts:
                pause = self.options.backoff * 2 ** (attempt - 1)
                self.reporter.emit(events.Retrying(m.id, pause))
                time.sleep(pause)
        raise BlockedProblem(f"{m.index} not built: {blocked.blocker} kept it waiting more than "
                             f"{self.options.max_wait:g}s on each of {attempts} attempts; no INVALID index "
                             "was left; end or wait out that session, then run `invoke migrate` again")

    def _constrain(self, action: planner.Action, started: float) -> None:
        """Carry out a constraint's migrate action: add it NOT VALID (or promote the index), then validate
        it; a NOT VALID one of ours is only validated. Each catalog-only step under a short lock_timeout,
        retried within --max-wait."""
        m = action.state.migration
        if action.step == Step.REBUILD:
            self.reporter.emit(events.Rebuilding(m.id, m.index))
        for step in steps.add(action.state):
            if step.catalog_only:
                self._catalog_only(step)
            else:
                self._validate(step)
        state = catalog.index_state(self.ledger.connection, m)
        if state.state != State.VALID:
            raise StepFailed(f"{m.index} is {state.state.value} after its migration; run `invoke status`")
        if not action.recorded:
            self.ledger.record(m, "apply", started)
        done = {Step.VALIDATE: "validated", Step.REBUILD: "rebuilt"}.get(action.step, "added")
        self.report.indexes.append(_outcome(state, done, applied=True,
                                            duration_s=round(time.monotonic() - started, 3)))

    def _catalog_only(self, step: steps.Step) -> None:
        """Run a catalog-only statement (its lock is brief, but while it waits every later query on the table
        queues behind it): each attempt under SHORT_LOCK_TIMEOUT, given up when it runs out and tried again
        after --backoff (doubled each time), within --max-wait; then BlockedProblem naming the session."""
        m = step.migration
        started = time.monotonic()
        deadline = started + self.options.max_wait
        pause = self.options.backoff
        while (blocked := self._run_steps(m, step.direction, list(step.statements))) is not None:
            if time.monotonic() + pause > deadline:
                raise BlockedProblem(
                    f"{m.id}: `{step.text}` not run: {blocked.blocker} held the lock it needs on "
                    f"{m.table} past its lock_timeout of {partitions.SHORT_LOCK_TIMEOUT} on every attempt within "
                    f"--max-wait {self.options.max_wait:g}s (each attempt gave up rather than let the table's "
                    "queries queue behind it); end or wait out that session, then run "
                    f"`invoke {self.report.command}` again")
            self.reporter.emit(events.LockRetry(m.id, blocked.blocker, partitions.SHORT_LOCK_TIMEOUT, pause))
            time.sleep(pause)
            pause *= 2
        self.reporter.emit(events.CatalogStepRan(m.id, step.text, partitions.SHORT_LOCK_TIMEOUT,
                                                 time.monotonic() - started))

    def _validate(self, step: steps.Step) -> None:
        """VALIDATE CONSTRAINT, watched (a scan that blocks no reads or writes), retried like a build when it
        waited past --max-wait for its lock. Rows violating it that the pre-check did not see: the NOT VALID
        constraint is dropped (nothing left half-done), exit 1."""
        m = step.migration
        rows = self.ledger.connection.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                                              [m.table]).fetchone()
        attempts = self.options.retries + 1
        for attempt in range(1, attempts + 1):
            self.reporter.emit(events.Validating(m.id, m.index, m.table, rows[0] if rows else None))
            started = time.monotonic()
            try:
                blocked = self._run_steps(m, "apply", list(step.statements))
            except StepFailed as failed:
                if failed.sqlstate not in VIOLATION_SQLSTATES or self.interrupted.is_set():
                    raise  # cancelled, or the server failed: left NOT VALID, which the next migrate validates
                self._catalog_only(steps.file_steps(m, "rollback")[-1])
                raise StepFailed(f"{m.id}: VALIDATE found rows of {m.table} that violate {m.index}, written since the "
                                 f"pre-check ({failed.detail}); the NOT VALID constraint was dropped and nothing "
                                 "recorded: correct those rows, then run `invoke migrate` again") from None
            if blocked is None:
                self.reporter.emit(events.Validated(m.id, m.index, time.monotonic() - started))
                return
            self.reporter.emit(events.BuildCancelled(m.id, self.options.max_wait, blocked.blocker))
            if attempt < attempts:
                pause = self.options.backoff * 2 ** (attempt - 1)
                self.reporter.emit(events.Retrying(m.id, pause))
                time.sleep(pause)
        raise BlockedProblem(f"{m.index} not validated: {blocked.blocker} kept VALIDATE waiting more than "
                             f"{self.options.max_wait:g}s on each of {attempts} attempts; it stays NOT VALID (new rows "
                             "are checked); end or wait out that session, then run `invoke migrate` again: it "
                             "validates it")

    def _unconstrain(self, m: IndexMigration, started: float) -> None:
        """Roll a constraint's migration back from where it stands: drop the constraint; a promotion's twin
        built first (an INVALID one a stopped run left dropped), the constraint dropped, the twin renamed."""
        twin = catalog.index_validity(self.ledger.connection, steps.twin_name(m)) if m.kind == Kind.PROMOTION \
            else None
        for step in steps.drop(catalog.index_state(self.ledger.connection, m), twin):
            if step.catalog_only:
                self._catalog_only(step)
            else:
                self._build_twin(step)
        self.ledger.forget(m, started)
        duration = time.monotonic() - started
        self.reporter.emit(events.RolledBack(m.id, duration))
        self.report.indexes.append(_outcome(catalog.index_state(self.ledger.connection, m), "dropped",
                                            applied=False, duration_s=round(duration, 3)))

    def _build_twin(self, step: steps.Step) -> None:
        """A promotion's rollback: build its twin index (or drop an INVALID one a stopped run left), watched
        as any build; waited past --max-wait: its leftover dropped, exit 3 (the constraint is untouched)."""
        m = step.migration
        twin = steps.twin_name(m)
        if step.verb == Verb.CREATE_INDEX:
            self.reporter.emit(events.BuildStarted(m.id, twin, m.table, 1, 1))
        started = time.monotonic()
        try:
            blocked = self._run_steps(m, "rollback", list(step.statements))
        except StepFailed:
            if step.verb == Verb.CREATE_INDEX and not self.interrupted.is_set():
                self._run_steps(m, "rollback", list(steps.twin_leftover_drop(m).statements))
            raise
        if blocked is not None:
            if step.verb == Verb.CREATE_INDEX:
                self._run_steps(m, "rollback", list(steps.twin_leftover_drop(m).statements))
            raise BlockedProblem(f"{m.id}: {twin} not built: {blocked.blocker} kept it waiting past "
                                 f"{blocked.limit}; the constraint {m.index} is untouched; run `invoke rollback` "
                                 "again once that session has ended")
        if step.verb == Verb.CREATE_INDEX:
            self.reporter.emit(events.Built(m.id, twin, time.monotonic() - started,
                                            None))

    def _gave_up_after_build(self, m: IndexMigration, blocked: Blocked) -> None:
        """A built index that only waited to become valid, stopped by --max-wait-after-build or the file's
        lock_timeout: its leftover dropped, no retry (the same session would hold up every new build
        the same way, after the same work); exit 3, saying so."""
        self.reporter.emit(events.WaitAfterBuildEnded(m.id, m.index, blocked.phase, blocked.blocker, blocked.limit))
        self._drop_leftover(m)
        raise BlockedProblem(f"{m.index} not built: it was built and only waiting ({blocked.phase}) to become "
                             f"valid, for {blocked.blocker} (a wait that blocks no reads or writes, only DDL "
                             f"and VACUUM on {m.table}); {blocked.limit} ended the "
                             "wait: the build was cancelled, its INVALID index dropped, and not retried (that "
                             "session would hold up a new build the same way); once that session has ended, "
                             "run `invoke migrate` again, which builds it from the start (or give "
                             "--max-wait-after-build more time, or leave it out: no limit)")

    def _drop_leftover(self, m: IndexMigration) -> None:
        """Drop the INVALID index a failed build left, if any (DROP INDEX CONCURRENTLY, under --max-wait).

        DROP INDEX CONCURRENTLY waits for every transaction holding any lock on
        the table, so a session that has read the table (a long report, pg_dump)
        keeps the leftover until it ends; building again would fail on the name.
        Then we stop (exit 3) and the next `invoke migrate` drops it first.
        """
        state = catalog.index_state(self.ledger.connection, m)
        if state.partitions is not None:
            return self._drop_partition_leftovers(state)
        if state.state != State.INVALID:
            return
        self.reporter.emit(events.DroppingLeftover(state))
        blocked = self._run_steps(m, "rollback")
        if blocked is not None:
            raise BlockedProblem(f"{m.index} is left INVALID: DROP INDEX CONCURRENTLY waited more than "
                                 f"{self.options.max_wait:g}s for {blocked.blocker}, which holds a lock on {m.table}; "
                                 "no query uses an INVALID index; end or wait out that session, then run "
                                 "`invoke migrate` again: it drops the leftover first")

    def _expanded(self, m: IndexMigration, rollback: bool) -> list[partitions.Statement] | None:
        """A partitioned table's statements for `m` planned from the catalog now (what is left to do);
        None for a table that is not partitioned (the file's own statements run)."""
        state = catalog.index_state(self.ledger.connection, m)
        if state.partitions is None:
            return None
        steps = planner.partition_drop_steps(state) if rollback else planner.partition_build_steps(state)
        return partitions.expand(m, state.schema, steps, ledger.statements(m, "rollback" if rollback else "apply"),
                                 rollback)

    def _drop_partition_leftovers(self, state: IndexState) -> None:
        """A partitioned table's failed build: only the unattached INVALID partition index it left is
        dropped (concurrently); the parent and the partitions' indexes attached to it stay."""
        m = state.migration
        steps = tuple(partitions.PartitionStep(partitions.Do.DROP_LEFTOVER, p) for p in state.partitions
                      if p.state == partitions.Part.INVALID)
        if not steps:
            return
        statements = partitions.expand(m, state.schema, steps, ledger.statements(m, "rollback"), rollback=True)
        blocked = self._run_steps(m, "rollback", statements)
        if blocked is not None:
            raise BlockedProblem(f"{', '.join(s.partition.index for s in steps)} left INVALID: DROP INDEX "
                                 f"CONCURRENTLY waited more than {self.options.max_wait:g}s for {blocked.blocker}; no query "
                                 "uses an INVALID index; run `invoke migrate` again once that session has ended")

    def _run_steps(self, m: IndexMigration, direction: str,
                   statements: list[partitions.Statement] | None = None) -> Blocked | None:
        """Run the statements of the migration's forward or rollback file (ledger.BuildConnection), or
        `statements` (a partitioned table's expansion of them), watched.

        Our callers clean up after a failed statement, under --max-wait.
        Returns None on success; when --max-wait, --max-wait-after-build or the
        file's lock_timeout stopped it, a Blocked naming the session it waited for.
        Other database errors become StepFailed.
        """
        self.wal_marks.append(topology.mark(self.ledger.connection))
        with self.ledger.build_connection(m) as build, _settings_reset(build.connection):
            build.connection.add_notice_handler(lambda d: self._notice(m, d))
            # For this session only: _settings_reset's RESET ALL takes them back with the file's own SETs.
            for name, value in self.options.build_settings if direction == "apply" and m.kind.makes_index else ():
                build.connection.execute("SELECT set_config(%s, %s, false)", [name, value])
            watcher = Watcher(self.target, topology.backend_pid(build.connection), self.options.max_wait,
                              lambda snap: self._progress(m, snap), self.options.max_wait_after_build)
            self.builds.add(build.connection)
            try:
                with events.statements(self.reporter, m.index), watcher:
                    if statements is None:
                        build.run(direction)
                    for statement in statements or ():
                        if statement.note:
                            self.reporter.emit(events.PartitionStatement(m.index, statement.note))
                        build.connection.execute(statement.sql)
            except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable) as exc:
                # Ours (--max-wait, --max-wait-after-build) or the file's lock_timeout: "blocked"; retried only
                # while nothing was built (MigrationRun._build).
                if watcher.cancelled or isinstance(exc, psycopg.errors.LockNotAvailable):
                    blocker = watcher.cancelled_by or watcher.last_blocker
                    phase = watcher.last_phase
                    if not watcher.cancelled and statements is not None:
                        # A partitioned table: most likely a catalog-only statement's short lock_timeout
                        # (the parent's CREATE, an ATTACH, the parent's DROP): nothing built waits there.
                        limit = (f"a lock_timeout (the file's, or {partitions.SHORT_LOCK_TIMEOUT} on the catalog-only "
                                 "statements of a partitioned table)")
                        phase = None
                    elif not watcher.cancelled:
                        limit = "the migration file's lock_timeout"
                    elif watcher.cancelled_after_build:
                        limit = f"--max-wait-after-build {self.options.max_wait_after_build:g}s"
                    else:
                        limit = f"--max-wait {self.options.max_wait:g}s"
                    return Blocked(blocker.describe() if blocker else "another session", phase, limit)
                raise StepFailed(f"{m.id}: {direction} of {m.index} was cancelled by another session "
                                 f"({one_line(exc)})") from None
            except psycopg.Error as exc:
                if build.connection.closed:
                    raise LostConnection(f"{m.id}: lost the connection to the server during the {direction} of "
                                         f"{m.index} ({one_line(exc)}); the server may finish or abort it; run "
                                         f"`invoke {self.report.command}` again: it waits for a build still "
                                         "running, records a finished one, or drops an INVALID leftover and "
                                         "starts again") from None
                hint = f"; {TEMP_SPACE_HINT}" if exc.sqlstate in TEMP_SPACE_SQLSTATES else ""
                failed = StepFailed(f"{m.id}: {direction} failed: {one_line(exc)}{hint}")
                failed.sqlstate, failed.detail = exc.sqlstate, one_line(exc)
                raise failed from None
            finally:
                self.builds.discard(build.connection)
        return None

    def _marked(self) -> list[topology.WalMark]:
        self.wal_marks.append(topology.mark(self.ledger.connection))
        return self.wal_marks

    def _progress(self, m: IndexMigration, snap) -> None:
        """A watcher's look at a build: shown, and its WAL position noted (standby lag is measured
        from the first of these marks a standby has not replayed)."""
        if snap.wal_position is not None:
            self.wal_marks.append(topology.WalMark(snap.wal_position, time.monotonic()))
        self.reporter.emit(events.Progress(m.index, snap))
        if snap.built and snap.waiting_seconds > self.options.max_wait and m.id not in self._told_built_waits:
            self._told_built_waits.add(m.id)
            self.reporter.emit(events.BuiltIndexWaits(
                m.id, m.index, m.table, snap.phase, snap.blocker.describe() if snap.blocker else "another session",
                self.options.max_wait,
                None if self.options.max_wait_after_build == math.inf else self.options.max_wait_after_build))

    def _show_replicas(self) -> None:
        """After a build or drop: where each standby's replay stands (nothing without standbys)."""
        for replica in topology.replicas(self.ledger.connection, self.wal_marks):
            self.reporter.emit(events.StandbyReplay(replica))

    def wait_for_replicas(self) -> None:
        """With --max-replica-lag, after a build: wait until every standby's replay is under it, at most
        --max-wait seconds (then BlockedProblem: what is built stays built and recorded)."""
        limit = self.options.max_replica_lag
        if limit is None or not self.wal_marks:
            return
        started = time.monotonic()
        announced = None
        # A mark on each poll: a standby that stops replaying the app's own writes while we wait
        # shows a growing lag too.
        while behind := [r for r in topology.replicas(self.ledger.connection, self._marked())
                         if r.lag_seconds > limit]:
            if time.monotonic() - started > self.options.max_wait:
                raise BlockedProblem(f"{behind[0].describe()}: still over --max-replica-lag {limit:g}s after "
                                     f"waiting {self.options.max_wait:g}s (--max-wait); what was built is "
                                     "recorded, the next indexes were not started; run `invoke migrate` again "
                                     "once the standby has caught up")
            if behind[0].name != announced:
                announced = behind[0].name
                self.reporter.emit(events.WaitingForStandby(behind[0], limit))
            time.sleep(topology.REPLICA_POLL_SECONDS)

    def _notice(self, m: IndexMigration, diagnostic) -> None:
        self.reporter.emit(events.ServerNotice(m.index, diagnostic.severity_nonlocalized, diagnostic.message_primary))

    def _wait_for_orphan_build(self, state: IndexState) -> IndexState:
        """Wait, showing its progress, for a CREATE INDEX of our name that another backend is running;
        at most --max-wait, then stop (exit 3): the next run picks it up where it is then."""
        m = state.migration
        pid = state.building_pid
        self.reporter.emit(events.WaitingForOrphan(m.id, m.index, pid, self.options.max_wait))
        deadline = time.monotonic() + self.options.max_wait
        # Watched for the operator, never cancelled: it is not ours to stop.
        with Watcher(self.target, pid, math.inf, lambda snap: self._progress(m, snap)):
            while state.state == State.BUILDING:
                if time.monotonic() > deadline:
                    builder = catalog.backend(self.ledger.connection, pid)
                    raise BlockedProblem(
                        f"{m.index}: the CREATE INDEX in {builder.describe() if builder else f'pid {pid}'} "
                        f"did not end within {self.options.max_wait:g}s (--max-wait); it is not ours to stop: "
                        f"once it ends (or a DBA runs SELECT pg_cancel_backend({pid})), run "
                        f"`invoke {self.report.command}` again: it takes over what that build left")
                time.sleep(LOCK_POLL_SECONDS)
                state = catalog.index_state(self.ledger.connection, m)
        self.reporter.emit(events.OrphanEnded(m.id, m.index, state.state.value))
        if state.state == State.FOREIGN:
            raise ToolError(planner.foreign_reason(state))
        return state
