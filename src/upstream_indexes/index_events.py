"""One index or constraint carried out, as events (events.py): a build, its attempts and leftovers, a
constraint's steps, a drop; the watchdog's looks at it; the standbys. PhaseNews: which of them a listener
that says each phase once passes on."""

from collections.abc import Iterator
from contextlib import contextmanager

from .catalog import IndexState
from .events import Event, Listener
from .topology import Replica
from .watchdog import VALIDATING, Snapshot


class BuildStarted(Event):
    migration_id: str
    index: str
    table: str
    attempt: int
    attempts: int


class Built(Event):
    migration_id: str
    index: str
    seconds: float
    size_bytes: int | None


class BuildCancelled(Event):
    """--max-wait (or the file's lock_timeout) stopped the build: it waited too long for `blocker`."""

    migration_id: str
    max_wait: float
    blocker: str  # the blocking session as the operator should see it


class BuiltIndexWaits(Event):
    """The index is built and has waited --max-wait to become valid (old snapshots, validation): not
    cancelled for it (said once per migration)."""

    migration_id: str
    index: str
    table: str
    phase: str | None
    blocker: str  # the session it waits for, as the operator should see it
    max_wait: float
    max_wait_after_build: float | None  # None: no limit


class WaitAfterBuildEnded(Event):
    """--max-wait-after-build or the file's lock_timeout ended a built index's wait: cancelled, not retried."""

    migration_id: str
    index: str
    phase: str | None
    blocker: str
    limit: str  # what ended it: the flag and its value, or the file's lock_timeout


class DataChecked(Event):
    """A data pre-check found nothing (what it found stops the run before any change, exit 2)."""

    migration_id: str
    what: str  # e.g. "duplicate keys of drift_event_unique in upstream_driftevent"
    seconds: float


class CatalogStepRan(Event):
    """A catalog-only statement ran (ADD CONSTRAINT ... NOT VALID, USING INDEX, DROP CONSTRAINT, a rename),
    under the runner's short lock_timeout (LockRetry said each attempt that ran out of it)."""

    migration_id: str
    statement: str
    lock_timeout: str
    seconds: float


class LockRetry(Event):
    """A catalog-only statement's lock_timeout ran out while `blocker` held the lock: given up so that no
    query queues behind it, tried again after a pause."""

    migration_id: str
    blocker: str
    lock_timeout: str
    pause_seconds: float


class Validating(Event):
    """VALIDATE CONSTRAINT starts: a scan of the table that blocks no reads or writes."""

    migration_id: str
    name: str
    table: str
    rows_estimate: int | None


class Validated(Event):
    migration_id: str
    name: str
    seconds: float


class Retrying(Event):
    migration_id: str
    pause_seconds: float


class Recorded(Event):
    """The index was there already, valid and ours: recorded as applied without a build."""

    migration_id: str
    index: str


class Rebuilding(Event):
    """Recorded as applied, but the index is missing."""

    migration_id: str
    index: str


class DroppingLeftover(Event):
    """An INVALID index a failed or cancelled build (or a rollback's cancelled drop) left, dropped before
    the next build."""

    state: IndexState
    recorded: bool = False  # yoyo records it as applied: catalog.invalid_origin


class BuildingPartitions(Event):
    """The index's table is partitioned: what migrate does there (planner's reason, partitions.py)."""

    migration_id: str
    reason: str


class PartitionStatement(Event):
    """One statement of a partitioned table's expansion starts (the parent's, a partition's build, a drop)."""

    index: str
    note: str


class Dropping(Event):
    migration_id: str
    index: str


class RolledBack(Event):
    migration_id: str
    seconds: float


class WaitingForOrphan(Event):
    """A CREATE INDEX of our name runs in another backend (a killed run's, a DBA's)."""

    migration_id: str
    index: str
    pid: int
    max_wait: float


class OrphanEnded(Event):
    migration_id: str
    index: str
    state: str  # a catalog.State value


class WatchdogReconnected(Event):
    """The watchdog's connection failed (`cause`) and it connected again: it watches on."""

    index: str
    cause: str


class StatementsStarted(Event):
    """A migration file's statements start, watched (a build, a drop); StatementsEnded follows, however they end."""

    index: str


class StatementsEnded(Event):
    index: str


@contextmanager
def statements(listener: Listener, index: str) -> Iterator[None]:
    """StatementsStarted and, however the statements end, StatementsEnded."""
    listener.emit(StatementsStarted(index))
    try:
        yield
    finally:
        listener.emit(StatementsEnded(index))


class Progress(Event):
    """One look of the watchdog at a build: its phase, counters and the session it waits for."""

    index: str
    snapshot: Snapshot


class ServerNotice(Event):
    index: str
    severity: str
    message: str


class StandbyReplay(Event):
    """After a build or drop: where one standby's replay stands."""

    replica: Replica


class WaitingForStandby(Event):
    """--max-replica-lag: the next build waits for this standby (said once per standby)."""

    replica: Replica
    max_lag: float


class PhaseNews:
    """Which events a listener that says each phase once passes on: a Progress only when its phase or
    the session it waits for changed since the last one of the same statements (of the same index:
    with migrate --jobs several run at once), or, in a phase that counts blocks or tuples (or a VALIDATE,
    which PostgreSQL does not count: its elapsed time), COUNT_SECONDS after the last one of that index
    passed on (how far, the time left)."""

    COUNT_SECONDS = 10.0

    def __init__(self):
        self._last: dict[str, tuple] = {}
        self._passed_at: dict[str, float] = {}  # each index's last passed Progress's elapsed seconds

    def __call__(self, event: Event) -> bool:
        if isinstance(event, StatementsStarted):
            self._last.pop(event.index, None)
            self._passed_at.pop(event.index, None)
        if not isinstance(event, Progress):
            return True
        snap = event.snapshot
        key = (snap.phase, snap.blocker.pid if snap.blocker else None)
        news = key != self._last.get(event.index) or (
            (snap.counter is not None or snap.phase == VALIDATING)
            and snap.elapsed - self._passed_at.get(event.index, 0.0) >= self.COUNT_SECONDS)
        self._last[event.index] = key
        if news:
            self._passed_at[event.index] = snap.elapsed
        return news
