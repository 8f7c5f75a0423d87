"""The executor of one plan step (a planner.Action) on one ledger connection: a build with its retries,
the leftover a failed build left dropped (under --max-wait), the record written as it ends; a drop and
its record removed. A constraint's steps are constraint_steps.py's. What each step runs comes from
sessions.py; how a session ran, from watched.py. Everything it does is said as events; what stops it
is an error of errors.py."""

import time

import psycopg

from . import backends, catalog, index_events, planner, sessions, standbys, watched
from .catalog import IndexState, State
from .constraint_steps import ConstraintSteps
from .db import one_line
from .errors import (BuildBlocked, DropBlocked, DuplicateDuringBuild, GaveUpAfterBuild, LeftoverBlocked,
                     LostConnection, NotValidAfterBuild, PartitionLeftoversBlocked, SessionLost, StatementFailed,
                     StepFailed)
from .ledger import Ledger
from .migrations import IndexMigration
from .partitions import SHORT_LOCK_TIMEOUT
from .planner import Action, Step
from .run import Run, outcome
from .sessions import Session
from .watched import Blocked


# A unique_violation of CREATE UNIQUE INDEX: a duplicate written during the build (the data check saw none).
UNIQUE_VIOLATION = "23505"


class Executor:
    """Carries out plan steps on its own ledger connection (one per --jobs thread), sharing `run`."""

    def __init__(self, run: Run, book: Ledger):
        self.run = run
        self.ledger = book
        self.constraints = ConstraintSteps(run, book)

    def apply(self, action: Action) -> None:
        """Carry out one migrate action (after an orphaned build ends: what the plan says then)."""
        m = action.state.migration
        started = time.monotonic()
        if action.step == Step.WAIT_FOR_ORPHAN:
            action = planner.migrate_action(watched.wait_for_orphan(self.run, self.ledger, action.state),
                                            action.recorded)
        if action.step == Step.UNCHANGED:
            self.run.report.indexes.append(outcome(action.state, "unchanged", applied=True))
            return
        if action.step == Step.RECORD:
            self.run.listener.emit(index_events.Recorded(m.id, m.index))
            self._still_ours(m, "apply")
            self.ledger.record(m, "mark", started)
            self.run.report.indexes.append(outcome(action.state, "recorded", applied=True))
            return
        if not m.kind.makes_index:
            return self.constraints.add(action, started)
        if action.step == Step.DROP_INVALID_THEN_BUILD:
            self._drop_leftover(m, recorded=action.recorded)
        elif action.step == Step.REBUILD:
            self.run.listener.emit(index_events.Rebuilding(m.id, m.index))
        elif action.step == Step.BUILD_PARTITIONS:
            self.run.listener.emit(index_events.BuildingPartitions(m.id, action.reason))
        built, retries = self._build(m)
        if not action.recorded:
            self._still_ours(m, "apply")
            self.ledger.record(m, "apply", started)
        fresh = action.step == Step.BUILD or (action.step == Step.BUILD_PARTITIONS and not action.recorded)
        self.run.report.indexes.append(outcome(built, "built" if fresh else "rebuilt", applied=True,
                                               retries=retries, duration_s=round(time.monotonic() - started, 3)))

    def roll_back(self, action: Action) -> None:
        """Carry out one rollback action: drop the index (after an orphaned build ends) and its record."""
        m = action.state.migration
        if action.step == Step.WAIT_FOR_ORPHAN:
            watched.wait_for_orphan(self.run, self.ledger, action.state)
        self.run.listener.emit(index_events.Dropping(m.id, m.index))
        started = time.monotonic()
        if not m.kind.makes_index:
            return self.constraints.drop(m, started)
        session = sessions.drop(self._state(m))
        blocked = self._execute(session)
        if blocked is not None:
            raise DropBlocked(m.index, blocked.blocker, self.run.options.max_wait,
                              SHORT_LOCK_TIMEOUT if session.partitioned else None)
        self._still_ours(m, "rollback")
        self.ledger.forget(m, started)
        duration = time.monotonic() - started
        self.run.listener.emit(index_events.RolledBack(m.id, duration))
        standbys.show_replay(self.run, self.ledger.connection)
        self.run.report.indexes.append(outcome(self._state(m), "dropped", applied=False,
                                               duration_s=round(duration, 3)))

    def _build(self, m: IndexMigration) -> tuple[IndexState, int]:
        """Build with retries; return the valid index's state and how many retries it took."""
        options = self.run.options
        attempts = options.retries + 1
        for attempt in range(1, attempts + 1):
            self.run.listener.emit(index_events.BuildStarted(m.id, m.index, m.table, attempt, attempts))
            started = time.monotonic()
            try:
                # Rendered from the catalog as it is now: what is left to do (a partitioned table's).
                blocked = self._execute(sessions.build(self._state(m)))
            except LostConnection:
                raise  # the cleanup needs the server too; the next run does it
            except StepFailed as failed:
                try:
                    self._drop_leftover(m)
                except psycopg.OperationalError as exc:
                    raise LostConnection.before_cleanup(failed, one_line(exc)) from None
                if isinstance(failed, StatementFailed) and failed.sqlstate == UNIQUE_VIOLATION:
                    raise DuplicateDuringBuild(m.id, m.index, failed.cause) from None
                raise
            if blocked is None:
                state = self._state(m)
                if state.state != State.VALID:
                    raise NotValidAfterBuild(m.index, state.state.value)
                self.run.listener.emit(index_events.Built(m.id, m.index, time.monotonic() - started, state.size_bytes))
                standbys.show_replay(self.run, self.ledger.connection)
                return state, attempt - 1
            if blocked.after_build:
                self._gave_up_after_build(m, blocked)
            self.run.listener.emit(index_events.BuildCancelled(m.id, options.max_wait, blocked.blocker))
            self._drop_leftover(m)
            if attempt < attempts:
                self.run.pause_before_retry(m.id, attempt)
        raise BuildBlocked(m.index, blocked.blocker, options.max_wait, attempts)

    def _gave_up_after_build(self, m: IndexMigration, blocked: Blocked) -> None:
        """A built index that only waited to become valid, stopped by --max-wait-after-build or the file's
        lock_timeout: its leftover dropped, no retry (the same session would hold up every new build
        the same way, after the same work); exit 3, saying so."""
        self.run.listener.emit(index_events.WaitAfterBuildEnded(m.id, m.index, blocked.phase, blocked.blocker,
                                                          blocked.limit))
        self._drop_leftover(m)
        raise GaveUpAfterBuild(m.index, m.table, blocked.phase, blocked.blocker, blocked.limit)

    def _drop_leftover(self, m: IndexMigration, recorded: bool = False) -> None:
        """Drop the INVALID index a failed build (or, `recorded` as applied, a cancelled drop) left, if any (DROP INDEX CONCURRENTLY, under --max-wait);
        on a partitioned table only the unattached INVALID partition indexes it left.

        DROP INDEX CONCURRENTLY waits for every transaction holding any lock on
        the table, so a session that has read the table (a long report, pg_dump)
        keeps the leftover until it ends; building again would fail on the name.
        Then we stop (exit 3) and the next `invoke migrate` drops it first.
        """
        state = self._state(m)
        session = sessions.leftover_drop(state)
        if session is None:
            return
        if not session.partitioned:
            self.run.listener.emit(index_events.DroppingLeftover(state, recorded))
        blocked = self._execute(session)
        if blocked is None:
            return
        if session.partitioned:
            raise PartitionLeftoversBlocked([p.index for p in state.partition_leftovers], blocked.blocker,
                                            self.run.options.max_wait)
        raise LeftoverBlocked(m.index, m.table, blocked.blocker, self.run.options.max_wait)

    def _still_ours(self, m: IndexMigration, direction: str) -> None:
        """Before a record is written: the migrator lock is still this run's (its session may have been
        terminated, and another migrator started); else stop, the record left to the next run."""
        holder = backends.migrator(self.ledger.connection)
        if self.run.migrator_pid is not None and (holder.pid if holder else None) != self.run.migrator_pid:
            raise SessionLost.migrator_lock(m.id, direction, m.index, self.run.migrator_pid,
                                            self.run.report.command)

    def _execute(self, session: Session) -> Blocked | None:
        return watched.execute(self.run, self.ledger, session)

    def _state(self, m: IndexMigration) -> IndexState:
        return catalog.index_state(self.ledger.connection, m)
