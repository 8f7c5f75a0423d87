"""One migrate or rollback run as data: its options, the state its executors share, and its report
(what each command returns; the task prints it as --json)."""

import math
from dataclasses import dataclass, field


from . import db, index_events, ledger, topology
from .catalog import IndexState
from .config import Target
from .errors import EXIT_OK
from .events import Listener
from .overlaps import Overlap
from .settings import KEYS


@dataclass(frozen=True)
class MigrateOptions:
    """A run's knobs; the defaults of those a project may set are settings.KEYS' (the one place they are written)."""

    # seconds a build may wait on a lock before building (or for standbys) before it gives up
    max_wait: float = float(KEYS["max-wait"].default)
    max_wait_after_build: float = math.inf  # seconds a built index may wait (old snapshots, validation) to be valid
    retries: int = KEYS["retries"].default  # further attempts after a cancelled build
    backoff: float = float(KEYS["backoff"].default)  # seconds before the first retry, doubled each time
    max_replica_lag: float | None = None  # seconds every standby must be under before the next build
    build_settings: tuple[tuple[str, str], ...] = ()  # (parameter, value) for each build's session
    jobs: int = 1  # at most this many builds at once, each on another table (PostgreSQL 14+)
    data_checks: bool = True  # look for duplicate keys / violating rows before any change (datachecks.py)


@dataclass
class IndexOutcome:
    """What a run did to one index and where it left it (the per-index part of --json)."""

    migration: str
    kind: str  # a migration_kinds.Kind value: index | check | foreign key | promotion
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


def outcome(state: IndexState, action: str, applied: bool, **timing) -> IndexOutcome:
    m = state.migration
    return IndexOutcome(m.id, m.kind.value, m.index, m.table, action, state.state.value, applied,
                        size_bytes=state.size_bytes, **timing)


@dataclass
class Run:
    """What every executor of one run shares, on whichever thread it runs (migrate --jobs: one per build).

    Each executor has a ledger connection of its own; the rest is this. Threads only append to its
    lists and add to its sets (atomic in CPython)."""

    target: Target
    listener: Listener
    options: MigrateOptions
    report: RunReport
    # The WAL insert position as each build or drop started, at each watchdog poll, at each wait poll.
    wal_marks: list[topology.WalMark] = field(default_factory=list)
    told_built_waits: set[str] = field(default_factory=set)  # migrations whose built index was said to wait on
    migrator_pid: int | None = None  # the server session holding the migrator lock for this run

    def pause_before_retry(self, migration_id: str, attempt: int) -> None:
        """The retry policy of a step that waited past --max-wait: --backoff seconds after the first attempt,
        doubled after each next one, said first (Retrying); Ctrl-C ends the pause (db.pause)."""
        pause = self.options.backoff * 2 ** (attempt - 1)
        self.listener.emit(index_events.Retrying(migration_id, pause))
        db.pause(pause)
