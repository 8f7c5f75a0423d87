"""The run as a whole, as events (events.py): who holds the migrator lock, the plan, migrate --dry-run's
what-if, how the run ended."""

from .catalog import Citus
from .events import Event


class CitusCoordinator(Event):
    """The database is a Citus coordinator: builds and drops go to every shard."""

    citus: Citus


class WaitingForMigrator(Event):
    """Another migrator holds the migrator lock (said once per holder)."""

    pid: int
    application_name: str | None
    client_addr: str | None
    connected_seconds: int


class MigratorLockLost(Event):
    """The session holding the migrator lock ended before the run released it (a DBA, an idle timeout)."""

    pid: int
    cause: str


class StaleYoyoLockRemoved(Event):
    pid: int
    created: object  # yoyo_lock.ctime


class NothingToMigrate(Event):
    migrations: int
    up_to: str | None  # --to's migration id


class Planned(Event):
    """--dry-run: what migrate would do to one migration, why, and every statement it would run."""

    migration_id: str
    reason: str
    statements: tuple[str, ...] = ()


class DryRunDone(Event):
    pass


class WhatIfSkipped(Event):
    """--dry-run, whatif: no what-if plans in this database (no HypoPG), and what to do for them."""

    reason: str


class WhatIfNoIndex(Event):
    """--dry-run, whatif: a pending migration that adds a constraint builds no index, so nothing is planned
    for it (said, not left out); --require-plan asks nothing of it."""

    migration_id: str
    constraint: str  # its type: check, foreign key, unique or primary key (a promotion)
    index: str | None  # a promotion's: the unique index it makes the constraint's (None for the others)


class WhatIfPlanned(Event):
    """--dry-run, whatif: a pending index created hypothetically, each catalogue query expecting it
    planned without and with it."""

    plans: object  # a whatif.IndexPlans (that module is above this one: it emits these)


class WhatIfDone(Event):
    hypopg: str | None  # HypoPG's version (None: no index was pending)
    used: int  # catalogue queries whose plan would use the pending index they expect
    planned: int  # catalogue queries expecting a pending index
    unproven: tuple[str, ...]  # pending indexes not used by every query expecting them (or, not unique, expected by none)


class OneAtATime(Event):
    """migrate --jobs N builds one index at a time on this server, and why."""

    jobs: int
    reason: str


class MigrateDone(Event):
    seconds: float


class NothingToRollBack(Event):
    kept: str | None  # --to's migration id
