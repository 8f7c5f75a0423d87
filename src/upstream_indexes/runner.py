"""The commands: migrate, rollback, status, accept, stamp, one function each (alembic's command.py).

Order of every migrate / rollback:
  1. read and check the migration files (no connection yet);
  2. connect, pre-flight (read-only): server, tables, columns, privileges (preflight.py);
  3. take the migrator lock (migrator_lock.py: one migrator at a time, waited
     for at most --max-wait with no transaction open);
  4. plan from the catalog (read-only): each index absent / valid / INVALID /
     still building / foreign; refuse foreign definitions and applied
     migration files edited since (ledger.py) before any change (planner.py);
  5. only now open the ledger (yoyo, which creates its tables; ours too),
     clear a stale yoyo_lock row, and carry out the plan under yoyo's lock
     (scheduler.py, executor.py), each session's statements watched on a
     second connection for progress and --max-wait (watched.py).
"""

import functools
import threading
import time

import psycopg

from . import (app_queries, catalog, db, ledger, migrations, migrator_lock, overlaps, planner, run_events, sessions,
               settings, status_events, table_checks)
from . import stamp as stamping
from .catalog import State
from .config import Target
from .db import connect, read_only_transaction, translate_errors
from .errors import (EXIT_INTERRUPTED, INTERRUPTED, STATUS_NEEDS_HUMAN, STATUS_WORK_TO_DO, EditNotInCatalog,
                     KeptNotApplied, NothingApplied, NotStamped, PreflightProblem, ToolError)
from .events import Listener
from .executor import Executor
from .paths import MIGRATIONS_DIR
from .planner import Step
from .preflight import announce_citus, check_build_settings, check_data, preflight, read_state, refuse
from .run import MigrateOptions, Run, RunReport, outcome
from .scheduler import apply_all, side_by_side

# After Ctrl-C, the catalog is read for what was left for at most this long (the server may be gone).
LEFT_READ_SECONDS = 1.0


def _reports_what_was_left(command):
    """On Ctrl-C, the interrupted error carries every index as the catalog has it now (a build
    cancelled part-way leaves an INVALID index), read on a connection of its own, if the server
    answers within LEFT_READ_SECONDS (else it carries none)."""

    @functools.wraps(command)
    def wrapper(target: Target, listener: Listener, *args, **kwargs):
        try:
            return command(target, listener, *args, **kwargs)
        except (KeyboardInterrupt, ToolError, psycopg.Error) as exc:
            if not isinstance(exc, KeyboardInterrupt) and not db.interrupted():
                raise
            report = RunReport(command.__name__, EXIT_INTERRUPTED)
            if not db.server_unreachable():
                reader = threading.Thread(target=_read_what_was_left, daemon=True,
                                          args=(target, kwargs.get("directory", MIGRATIONS_DIR), report))
                reader.start()
                reader.join(LEFT_READ_SECONDS)
            raise ToolError(INTERRUPTED, EXIT_INTERRUPTED, report) from None

    return wrapper


def _read_what_was_left(target: Target, directory, report: RunReport) -> None:
    """Every migration's index as the catalog has it, into `report` (all or none)."""
    try:
        with connect(target) as conn:
            applied, files = ledger.applied_ids(conn), migrations.load(directory)
            left = [outcome(state, "applied" if m.id in applied else "pending", applied=m.id in applied)
                    for m, state in zip(files, catalog.index_states(conn, files))]
    except (psycopg.Error, ToolError):
        return
    report.indexes.extend(left)


@translate_errors
@_reports_what_was_left
def migrate(target: Target, listener: Listener, options: MigrateOptions = MigrateOptions(),
            directory=MIGRATIONS_DIR, dry_run: bool = False, to: str | None = None,
            require_plan: bool = False) -> RunReport:
    """Apply every pending migration (up to and including `to`); converge to those indexes all valid.
    With dry_run, only say what it would do (the pre-flight, the plan and the what-if, read-only).
    With require_plan, the what-if must show each pending index used by the catalogue's queries."""
    files = migrations.load(directory)
    scope = migrations.up_to(files, to) if to else files
    report = RunReport("migrate")
    with connect(target) as conn:
        preflight(conn, files, target, options.max_replica_lag)
        check_build_settings(conn, options.build_settings)
        announce_citus(conn, files, listener)
        with migrator_lock.held(conn, listener, options.max_wait) as migrator_pid:
            actions = [a for a in planner.migrate_plan(*read_state(conn, files)) if a.state.migration in scope]
            refuse(actions)
            todo = [a for a in actions if a.changes_something]
            if options.data_checks:
                check_data(conn, todo, listener)
            report.indexes += [outcome(a.state, "unchanged", applied=True) for a in actions if a not in todo]
            if not todo:
                listener.emit(run_events.NothingToMigrate(len(scope), scope[-1].id if to else None))
                return report
            jobs = side_by_side(conn, todo, options.jobs, listener)
            if dry_run or require_plan:
                from . import whatif  # HypoPG's what-if: loaded only when asked for
                # The what-if's queries: the catalogue verify proves the indexes by (the folder's own too).
                queries = app_queries.load_all(app_queries.for_folder(directory))
            if dry_run:
                for action in todo:
                    listener.emit(run_events.Planned(action.state.migration.id, action.reason, tuple(
                        statement.sql for session in sessions.of(action) for statement in session.statements)))
                    report.indexes.append(outcome(action.state, "pending", applied=action.recorded))
                found = whatif.show(conn, todo, listener, require_plan, queries)
                if require_plan:
                    whatif.require(found, report)
                listener.emit(run_events.DryRunDone())
                return report
            if require_plan:
                whatif.require(whatif.show(conn, todo, listener, require_plan, queries), report)
            started = time.monotonic()
            with ledger.opened(target, files, _stale_lock_announcer(listener), "migrate", options.max_wait) as book:
                apply_all(Run(target, listener, options, report, migrator_pid=migrator_pid), book, todo, jobs)
            listener.emit(run_events.MigrateDone(time.monotonic() - started))
    return report


@translate_errors
@_reports_what_was_left
def rollback(target: Target, listener: Listener, count: int = 1, everything: bool = False,
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
        announce_citus(conn, files, listener)
        with migrator_lock.held(conn, listener, options.max_wait) as migrator_pid:
            states, applied = read_state(conn, files)
            if to:
                if kept[-1].id not in applied:
                    raise KeptNotApplied(to, kept[-1].id)
                # The applied ones after it are the newest applied: that many, newest first.
                count, everything = len([m for m in files[len(kept):] if m.id in applied]), False
            actions = planner.rollback_plan(states, applied, count, everything, force)
            if not actions:
                listener.emit(run_events.NothingToRollBack(kept[-1].id if to else None))
                return report
            refuse(actions, rollback=True)
            if len(actions) > 1 and not target.is_demo and confirm is not None:
                confirm(target, [a.state.migration.id for a in actions])
            with ledger.opened(target, files, _stale_lock_announcer(listener), "rollback", options.max_wait) as book:
                executor = Executor(Run(target, listener, options, report, migrator_pid=migrator_pid), book)
                for action in actions:
                    executor.roll_back(action)
    return report


@translate_errors
def status(target: Target, listener: Listener, directory=MIGRATIONS_DIR) -> RunReport:
    """Report each migration and index, read-only. Exit code: 0 all applied and valid,
    bit 1 migrate has work to do, bit 4 a human must decide (a foreign index, an applied file edited)."""
    files = migrations.load(directory)
    report = RunReport("status")
    with connect(target) as conn, read_only_transaction(conn):
        # As migrate says it: without the tables there is nothing to report on (exit 2, not "work to do").
        role = conn.execute("SELECT current_user").fetchone()[0]
        if problems := table_checks.table_problems(conn, files, role, will_index=False):
            raise PreflightProblem("\n".join(problems))
        applied = ledger.applied_ids(conn)
        for edit in ledger.edited(conn, files, applied):
            report.exit_code |= STATUS_NEEDS_HUMAN
            listener.emit(status_events.FileEdited(edit))
        report.history = ledger.history(conn)
        for migration, state in zip(files, catalog.index_states(conn, files)):
            recorded = migration.id in applied
            report.indexes.append(outcome(state, "applied" if recorded else "pending", applied=recorded))
            entries = [e for e in report.history if e.migration == migration.id]
            action = planner.migrate_action(state, recorded)
            if action.step == Step.REFUSE:
                report.exit_code |= STATUS_NEEDS_HUMAN
            elif action.changes_something:
                report.exit_code |= STATUS_WORK_TO_DO
            listener.emit(status_events.IndexStatus(state, recorded, entries[-1] if recorded and entries else None,
                                             action.reason if action.step == Step.REFUSE else None))
        report.overlaps = overlaps.find(conn, files)
        listener.emit(status_events.Overlaps(tuple(report.overlaps)))
    listener.emit(status_events.StatusDone(work_to_do=bool(report.exit_code & STATUS_WORK_TO_DO),
                                    needs_human=bool(report.exit_code & STATUS_NEEDS_HUMAN)))
    return report


@translate_errors
def accept(target: Target, listener: Listener, reference: str, directory=MIGRATIONS_DIR) -> RunReport:
    """Record the sha256 of an applied migration's edited files (Flyway's repair), once the index in
    the catalog has the edited file's definition; print the old and the new sha256."""
    files = migrations.load(directory)
    migration = migrations.up_to(files, reference, flag="accept")[-1]
    report = RunReport("accept")
    with connect(target) as conn:
        preflight(conn, files, target)
        with migrator_lock.held(conn, listener, settings.load()["max-wait"]):
            if migration.id not in ledger.applied_ids(conn):
                raise NothingApplied(migration.id)
            old = ledger.recorded_checksums(conn).get(migration.id)
            if old == migration.checksum:
                listener.emit(status_events.NothingToAccept(migration.id, old))
                return report
            state = catalog.index_state(conn, migration)
            if state.state != State.VALID:
                raise EditNotInCatalog(migration.id, migration.index, state.state.value, state.definition,
                                       migration.definition)
            ledger.accept(conn, migration)
            listener.emit(status_events.Accepted(migration.id, (migration.path.name, migration.rollback_path.name),
                                          old, migration.checksum))
    return report


@translate_errors
def stamp(target: Target, listener: Listener, reference: str, force: bool = False,
          directory=MIGRATIONS_DIR) -> RunReport:
    """Record a pending migration as applied without building (Alembic's stamp, Flyway's baseline), when the
    catalog holds a valid index of its definition (renamed to ours if it has another name: stamp.py); with
    `force` whatever it holds, saying so."""
    files = migrations.load(directory)
    migration = migrations.up_to(files, reference, flag="stamp")[-1]
    report = RunReport("stamp")
    with connect(target) as conn:
        preflight(conn, files, target, builds=False)
        with migrator_lock.held(conn, listener, settings.load()["max-wait"]):
            _, applied = read_state(conn, files)
            if migration.id in applied:
                listener.emit(status_events.NothingToStamp(migration.id))
                return report
            found = stamping.built_as(conn, migration)
            if found is None and not force:
                raise NotStamped(migration.id, migration.table, migration.definition, migration.index,
                                 catalog.index_state(conn, migration).state.value)
            started = time.monotonic()
            with ledger.opened(target, files, _stale_lock_announcer(listener), "stamp",
                               settings.load()["max-wait"]) as book:
                if found is not None and found.name != migration.index:
                    stamping.rename(book.connection, found, migration.index)
                book.record(migration, "mark", started)
            if found is None:
                listener.emit(status_events.StampForced(migration.id, migration.index,
                                                 catalog.index_state(conn, migration).state.value))
            else:
                listener.emit(status_events.Stamped(migration.id, migration.index, found.name))
    return report


def _stale_lock_announcer(listener: Listener):
    return lambda pid, ctime: listener.emit(run_events.StaleYoyoLockRemoved(pid, ctime))
