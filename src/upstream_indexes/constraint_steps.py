"""A constraint's migration carried out step by step (the executor's constraint steps, on its ledger
connection): each catalog-only statement under a short lock_timeout, retried within --max-wait; VALIDATE
watched and retried like a build; a promotion's rollback building its twin. What each step runs comes from
sessions.py; how a session ran, from watched.py."""

import time

from . import catalog, db, index_events, sessions, watched
from .catalog import IndexState, State
from .errors import (CatalogStepBlocked, NotValidAfterBuild, StatementFailed, StepFailed, TwinBlocked,
                     ValidateBlocked, ViolatedAtValidate)
from .ledger import Ledger
from .migrations import IndexMigration
from .partitions import SHORT_LOCK_TIMEOUT
from .planner import Action, Step
from .run import Run, outcome
from .sessions import Session
from .statement import Verb
from .watched import Blocked


# A check_violation / foreign_key_violation of VALIDATE: rows the data check did not see (written before the ADD).
VIOLATION_SQLSTATES = ("23514", "23503")


class ConstraintSteps:
    """Carries out a constraint's migrate and rollback actions on the executor's ledger connection, sharing `run`."""

    def __init__(self, run: Run, book: Ledger):
        self.run = run
        self.ledger = book

    def add(self, action: Action, started: float) -> None:
        """Carry out a constraint's migrate action: add it NOT VALID (or promote the index), then validate
        it; a NOT VALID one of ours is only validated (sessions.add)."""
        m = action.state.migration
        if action.step == Step.REBUILD:
            self.run.listener.emit(index_events.Rebuilding(m.id, m.index))
        for session in sessions.add(action.state):
            if session.catalog_only:
                self._catalog_only(session)
            else:
                self._validate(session)
        state = self._state(m)
        if state.state != State.VALID:
            raise NotValidAfterBuild(m.index, state.state.value)
        if not action.recorded:
            self.ledger.record(m, "apply", started)
        done = {Step.VALIDATE: "validated", Step.REBUILD: "rebuilt"}.get(action.step, "added")
        self.run.report.indexes.append(outcome(state, done, applied=True,
                                               duration_s=round(time.monotonic() - started, 3)))

    def _catalog_only(self, session: Session) -> None:
        """Run a catalog-only statement (its lock is brief, but while it waits every later query on the table
        queues behind it): each attempt under SHORT_LOCK_TIMEOUT, given up when it runs out and tried again
        after --backoff (doubled each time), within --max-wait; then CatalogStepBlocked naming the session."""
        m, options = session.migration, self.run.options
        started = time.monotonic()
        pause = options.backoff
        while (blocked := self._execute(session)) is not None:
            if time.monotonic() + pause > started + options.max_wait:
                raise CatalogStepBlocked(m.id, session.text, blocked.blocker, m.table, SHORT_LOCK_TIMEOUT,
                                         options.max_wait, self.run.report.command)
            self.run.listener.emit(index_events.LockRetry(m.id, blocked.blocker, SHORT_LOCK_TIMEOUT, pause))
            db.pause(pause)
            pause *= 2
        self.run.listener.emit(index_events.CatalogStepRan(m.id, session.text, SHORT_LOCK_TIMEOUT,
                                                     time.monotonic() - started))

    def _validate(self, session: Session) -> None:
        """VALIDATE CONSTRAINT, watched (a scan that blocks no reads or writes), retried like a build when it
        waited past --max-wait for its lock. Rows violating it that the data check did not see: the NOT VALID
        constraint is dropped (nothing left half-done), exit 1. Cancelled by another session or Ctrl-C: left
        NOT VALID, which the next migrate validates."""
        m, options = session.migration, self.run.options
        rows = catalog.row_estimate(self.ledger.connection, m.table)
        attempts = options.retries + 1
        for attempt in range(1, attempts + 1):
            self.run.listener.emit(index_events.Validating(m.id, m.index, m.table, rows))
            started = time.monotonic()
            try:
                blocked = self._execute(session)
            except StatementFailed as failed:
                if failed.sqlstate not in VIOLATION_SQLSTATES or db.interrupted():
                    raise
                self._catalog_only(sessions.steps(m, "rollback")[-1])
                raise ViolatedAtValidate(m.id, m.table, m.index, failed.cause) from None
            if blocked is None:
                self.run.listener.emit(index_events.Validated(m.id, m.index, time.monotonic() - started))
                return
            self.run.listener.emit(index_events.BuildCancelled(m.id, options.max_wait, blocked.blocker))
            if attempt < attempts:
                self.run.pause_before_retry(m.id, attempt)
        raise ValidateBlocked(m.index, blocked.blocker, options.max_wait, attempts)

    def drop(self, m: IndexMigration, started: float) -> None:
        """Roll a constraint's migration back from where it stands (sessions.drop_constraint): drop the
        constraint; a promotion's twin built first (an INVALID one a stopped run left dropped), the
        constraint dropped, the twin renamed."""
        for session in sessions.drop_constraint(self._state(m)):
            if session.catalog_only:
                self._catalog_only(session)
            else:
                self._twin(session)
        self.ledger.forget(m, started)
        duration = time.monotonic() - started
        self.run.listener.emit(index_events.RolledBack(m.id, duration))
        self.run.report.indexes.append(outcome(self._state(m), "dropped", applied=False,
                                               duration_s=round(duration, 3)))

    def _twin(self, session: Session) -> None:
        """A promotion's rollback: build its twin index (or drop an INVALID one a stopped run left), watched as
        any build; failed or waited too long: its leftover dropped (the constraint is untouched)."""
        m = session.migration
        twin = m.twin
        builds = session.verb == Verb.CREATE_INDEX
        if builds:
            self.run.listener.emit(index_events.BuildStarted(m.id, twin, m.table, 1, 1))
        started = time.monotonic()
        try:
            blocked = self._execute(session)
        except StepFailed:
            if builds and not db.interrupted():
                self._execute(sessions.twin_leftover_drop(m))
            raise
        if blocked is not None:
            if builds:
                self._execute(sessions.twin_leftover_drop(m))
            raise TwinBlocked(m.id, twin, m.index, blocked.blocker, blocked.limit)
        if builds:
            self.run.listener.emit(index_events.Built(m.id, twin, time.monotonic() - started, None))

    def _execute(self, session: Session) -> Blocked | None:
        return watched.execute(self.run, self.ledger, session)

    def _state(self, m: IndexMigration) -> IndexState:
        return catalog.index_state(self.ledger.connection, m)
