"""status, history, stamp and accept, as events (events.py)."""

from .catalog import IndexState
from .events import Event
from .ledger import LogEntry
from .overlaps import Overlap


class FileEdited(Event):
    """An applied migration's file differs from what was applied (ledger.edited's line)."""

    problem: str


class IndexStatus(Event):
    state: IndexState
    recorded: bool
    last_log: LogEntry | None  # yoyo's newest log entry of an applied migration
    refusal: str | None  # why migrate would refuse it


class Overlaps(Event):
    """Existing indexes the covering indexes make redundant."""

    overlaps: tuple[Overlap, ...]


class Logged(Event):
    """history: one entry of yoyo's log."""

    entry: LogEntry


class HistoryDone(Event):
    entries: int


class StatusDone(Event):
    work_to_do: bool
    needs_human: bool


class NothingToStamp(Event):
    migration_id: str


class Stamped(Event):
    """stamp: recorded as applied, nothing built; the valid index of its definition was `found` (renamed
    to `index` when it had another name)."""

    migration_id: str
    index: str
    found: str


class StampForced(Event):
    """stamp --force: recorded as applied though the catalog holds no valid index of its definition."""

    migration_id: str
    index: str
    state: str  # the catalog's state of our name (a catalog.State value)


class NothingToAccept(Event):
    migration_id: str
    checksum: str


class Accepted(Event):
    migration_id: str
    files: tuple[str, str]  # the forward and rollback file names
    old_checksum: str | None
    new_checksum: str
