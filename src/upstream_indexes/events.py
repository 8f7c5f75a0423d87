"""What migrate, rollback, status, accept and history report, as typed events (no text).

The runner emits each to its listener (anything with `emit(event)`): the plain lines
(lines.LinePrinter, which renders every event's text in one place: lines.plain_lines),
the live display (live.LiveDisplay), the --json report (jsonreport.EventLog) and the
benchmark (benchmarks/builds.py) are listeners. `Listeners` passes each event on to several.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from .catalog import Citus, IndexState
from .ledger import LogEntry
from .overlaps import Overlap
from .watchdog import VALIDATING, Snapshot
from .topology import Replica


class Event:
    """Base of every event (for type hints)."""


class Listener(Protocol):
    def emit(self, event: Event) -> None: ...


class Listeners:
    """Several listeners as one: each gets every event, in the order given."""

    def __init__(self, *listeners: Listener):
        self.listeners = listeners

    def emit(self, event: Event) -> None:
        for listener in self.listeners:
            listener.emit(event)


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


# The run as a whole


@dataclass(frozen=True)
class CitusCoordinator(Event):
    """The database is a Citus coordinator: builds and drops go to every shard."""

    citus: Citus


@dataclass(frozen=True)
class WaitingForMigrator(Event):
    """Another migrator holds the migrator lock (said once per holder)."""

    pid: int
    application_name: str | None
    client_addr: str | None
    connected_seconds: int


@dataclass(frozen=True)
class MigratorLockLost(Event):
    """The session holding the migrator lock ended before the run released it (a DBA, an idle timeout)."""

    pid: int
    cause: str


@dataclass(frozen=True)
class StaleYoyoLockRemoved(Event):
    pid: int
    created: object  # yoyo_lock.ctime


@dataclass(frozen=True)
class NothingToMigrate(Event):
    migrations: int
    up_to: str | None  # --to's migration id


@dataclass(frozen=True)
class Planned(Event):
    """--dry-run: what migrate would do to one migration, why, and every statement it would run."""

    migration_id: str
    reason: str
    statements: tuple[str, ...] = ()


@dataclass(frozen=True)
class DryRunDone(Event):
    pass


@dataclass(frozen=True)
class WhatIfSkipped(Event):
    """--dry-run, whatif: no what-if plans in this database (no HypoPG), and what to do for them."""

    reason: str


@dataclass(frozen=True)
class WhatIfNoIndex(Event):
    """--dry-run, whatif: a pending migration that adds a constraint builds no index, so nothing is planned
    for it (said, not left out); --require-plan asks nothing of it."""

    migration_id: str
    constraint: str  # its type: check, foreign key, unique or primary key (a promotion)
    index: str | None  # a promotion's: the unique index it makes the constraint's (None for the others)


@dataclass(frozen=True)
class WhatIfPlanned(Event):
    """--dry-run, whatif: a pending index created hypothetically, each catalogue query expecting it
    planned without and with it."""

    plans: object  # a whatif.IndexPlans (that module is above this one: it emits these)


@dataclass(frozen=True)
class WhatIfDone(Event):
    hypopg: str | None  # HypoPG's version (None: no index was pending)
    used: int  # catalogue queries whose plan would use the pending index they expect
    planned: int  # catalogue queries expecting a pending index
    unproven: tuple[str, ...]  # pending indexes not used by every query expecting them (or, not unique, expected by none)


@dataclass(frozen=True)
class OneAtATime(Event):
    """migrate --jobs N builds one index at a time on this server, and why."""

    jobs: int
    reason: str


@dataclass(frozen=True)
class MigrateDone(Event):
    seconds: float


@dataclass(frozen=True)
class NothingToRollBack(Event):
    kept: str | None  # --to's migration id


# One index


@dataclass(frozen=True)
class BuildStarted(Event):
    migration_id: str
    index: str
    table: str
    attempt: int
    attempts: int


@dataclass(frozen=True)
class Built(Event):
    migration_id: str
    index: str
    seconds: float
    size_bytes: int | None


@dataclass(frozen=True)
class BuildCancelled(Event):
    """--max-wait (or the file's lock_timeout) stopped the build: it waited too long for `blocker`."""

    migration_id: str
    max_wait: float
    blocker: str  # the blocking session as the operator should see it


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class WaitAfterBuildEnded(Event):
    """--max-wait-after-build or the file's lock_timeout ended a built index's wait: cancelled, not retried."""

    migration_id: str
    index: str
    phase: str | None
    blocker: str
    limit: str  # what ended it: the flag and its value, or the file's lock_timeout


@dataclass(frozen=True)
class DataChecked(Event):
    """A data pre-check found nothing (what it found stops the run before any change, exit 2)."""

    migration_id: str
    what: str  # e.g. "duplicate keys of drift_event_unique in upstream_driftevent"
    seconds: float


@dataclass(frozen=True)
class CatalogStepRan(Event):
    """A catalog-only statement ran (ADD CONSTRAINT ... NOT VALID, USING INDEX, DROP CONSTRAINT, a rename),
    under the runner's short lock_timeout (LockRetry said each attempt that ran out of it)."""

    migration_id: str
    statement: str
    lock_timeout: str
    seconds: float


@dataclass(frozen=True)
class LockRetry(Event):
    """A catalog-only statement's lock_timeout ran out while `blocker` held the lock: given up so that no
    query queues behind it, tried again after a pause."""

    migration_id: str
    blocker: str
    lock_timeout: str
    pause_seconds: float


@dataclass(frozen=True)
class Validating(Event):
    """VALIDATE CONSTRAINT starts: a scan of the table that blocks no reads or writes."""

    migration_id: str
    name: str
    table: str
    rows_estimate: int | None


@dataclass(frozen=True)
class Validated(Event):
    migration_id: str
    name: str
    seconds: float


@dataclass(frozen=True)
class Retrying(Event):
    migration_id: str
    pause_seconds: float


@dataclass(frozen=True)
class Recorded(Event):
    """The index was there already, valid and ours: recorded as applied without a build."""

    migration_id: str
    index: str


@dataclass(frozen=True)
class Rebuilding(Event):
    """Recorded as applied, but the index is missing."""

    migration_id: str
    index: str


@dataclass(frozen=True)
class DroppingLeftover(Event):
    """An INVALID index a failed or cancelled build (or a rollback's cancelled drop) left, dropped before
    the next build."""

    state: IndexState
    recorded: bool = False  # yoyo records it as applied: catalog.invalid_origin


@dataclass(frozen=True)
class BuildingPartitions(Event):
    """The index's table is partitioned: what migrate does there (planner's reason, partitions.py)."""

    migration_id: str
    reason: str


@dataclass(frozen=True)
class PartitionStatement(Event):
    """One statement of a partitioned table's expansion starts (the parent's, a partition's build, a drop)."""

    index: str
    note: str


@dataclass(frozen=True)
class Dropping(Event):
    migration_id: str
    index: str


@dataclass(frozen=True)
class RolledBack(Event):
    migration_id: str
    seconds: float


@dataclass(frozen=True)
class WaitingForOrphan(Event):
    """A CREATE INDEX of our name runs in another backend (a killed run's, a DBA's)."""

    migration_id: str
    index: str
    pid: int
    max_wait: float


@dataclass(frozen=True)
class OrphanEnded(Event):
    migration_id: str
    index: str
    state: str  # a catalog.State value


@dataclass(frozen=True)
class WatchdogReconnected(Event):
    """The watchdog's connection failed (`cause`) and it connected again: it watches on."""

    index: str
    cause: str


@dataclass(frozen=True)
class StatementsStarted(Event):
    """A migration file's statements start, watched (a build, a drop); StatementsEnded follows, however they end."""

    index: str


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Progress(Event):
    """One look of the watchdog at a build: its phase, counters and the session it waits for."""

    index: str
    snapshot: Snapshot


@dataclass(frozen=True)
class ServerNotice(Event):
    index: str
    severity: str
    message: str


@dataclass(frozen=True)
class StandbyReplay(Event):
    """After a build or drop: where one standby's replay stands."""

    replica: Replica


@dataclass(frozen=True)
class WaitingForStandby(Event):
    """--max-replica-lag: the next build waits for this standby (said once per standby)."""

    replica: Replica
    max_lag: float


# status and accept


@dataclass(frozen=True)
class FileEdited(Event):
    """An applied migration's file differs from what was applied (ledger.edited's line)."""

    problem: str


@dataclass(frozen=True)
class IndexStatus(Event):
    state: IndexState
    recorded: bool
    last_log: LogEntry | None  # yoyo's newest log entry of an applied migration
    refusal: str | None  # why migrate would refuse it


@dataclass(frozen=True)
class Overlaps(Event):
    """Existing indexes the covering indexes make redundant."""

    overlaps: tuple[Overlap, ...]


@dataclass(frozen=True)
class Logged(Event):
    """history: one entry of yoyo's log."""

    entry: LogEntry


@dataclass(frozen=True)
class HistoryDone(Event):
    entries: int


@dataclass(frozen=True)
class StatusDone(Event):
    work_to_do: bool
    needs_human: bool


@dataclass(frozen=True)
class NothingToStamp(Event):
    migration_id: str


@dataclass(frozen=True)
class Stamped(Event):
    """stamp: recorded as applied, nothing built; the valid index of its definition was `found` (renamed
    to `index` when it had another name)."""

    migration_id: str
    index: str
    found: str


@dataclass(frozen=True)
class StampForced(Event):
    """stamp --force: recorded as applied though the catalog holds no valid index of its definition."""

    migration_id: str
    index: str
    state: str  # the catalog's state of our name (a catalog.State value)


@dataclass(frozen=True)
class NothingToAccept(Event):
    migration_id: str
    checksum: str


@dataclass(frozen=True)
class Accepted(Event):
    migration_id: str
    files: tuple[str, str]  # the forward and rollback file names
    old_checksum: str | None
    new_checksum: str
