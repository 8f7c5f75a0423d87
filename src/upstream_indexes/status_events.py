"""status, history, stamp and accept, as events (events.py)."""

from dataclasses import dataclass

from .catalog import IndexState
from .events import Event
from .ledger import LogEntry
from .overlaps import Overlap


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
