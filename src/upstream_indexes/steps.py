"""The steps of a constraint's or a promotion's migration, each as the statements one connection
runs: the runner carries them out (runner.py) and `invoke sql` prints them (sqlscript.py).

A file's statements split into steps, one per statement that is not a SET, each with every SET
of the file before it (a step runs on a connection of its own, so it carries its settings). The
catalog-only statements (ADD CONSTRAINT ... NOT VALID, ADD CONSTRAINT ... USING INDEX, DROP
CONSTRAINT, ALTER INDEX ... RENAME) need a brief ACCESS EXCLUSIVE lock (a foreign key's: SHARE ROW
EXCLUSIVE on both tables), and while one waits for it every later query on the table queues
behind it: the runner sends each under its own SET lock_timeout = SHORT_LOCK_TIMEOUT, whatever the
file sets, and retries it (runner.MigrationRun._catalog_only). Which steps run depends on where
the catalog stands: a constraint left NOT VALID is only validated; a promotion's rollback goes on
from where a stopped one left it.
"""

from dataclasses import dataclass

from .catalog import IndexState, State
from .grammar import Verb
from .migrations import IndexMigration, Kind
from .partitions import SHORT_LOCK_TIMEOUT, Statement

CATALOG_ONLY = (Verb.ADD_CHECK, Verb.ADD_FOREIGN_KEY, Verb.ADD_USING_INDEX, Verb.DROP_CONSTRAINT, Verb.RENAME_INDEX)


@dataclass(frozen=True)
class Step:
    """One statement of a migration file (and the SETs before it), run on a connection of its own."""

    migration: IndexMigration
    verb: Verb
    statements: tuple[Statement, ...]
    direction: str  # "apply" (the forward file) or "rollback"
    text: str = ""  # the statement alone, in one line (for messages)

    @property
    def catalog_only(self) -> bool:
        return self.verb in CATALOG_ONLY


def file_steps(m: IndexMigration, direction: str) -> list[Step]:
    """Every step of the forward ("apply") or rollback file, in order."""
    settings: list[Statement] = []
    found = []
    for statement in m.statements if direction == "apply" else m.rollback_statements:
        if statement.verb == Verb.SET_TIMEOUT:
            settings.append(Statement(statement.sql))
            continue
        guard = [Statement(guard_sql())] if statement.verb in CATALOG_ONLY else []
        found.append(Step(m, statement.verb, (*settings, *guard, Statement(statement.sql)), direction, statement.text))
    return found


def guard_sql() -> str:
    """The runner's own bound on a catalog-only statement's wait for its lock."""
    return f"SET lock_timeout = '{SHORT_LOCK_TIMEOUT}'"


def add(state: IndexState) -> list[Step]:
    """What migrate runs for a constraint's migration from where `state` stands: all of the forward
    file when the constraint is missing, only its VALIDATE when it is NOT VALID (ours)."""
    steps = file_steps(state.migration, "apply")
    if state.state == State.NOT_VALID:
        return [s for s in steps if s.verb == Verb.VALIDATE]
    return steps if state.state == State.ABSENT else []


def twin_name(m: IndexMigration) -> str:
    """A promotion's twin: the unique index its rollback builds to take the constraint's index's place."""
    return next(s.name for s in m.rollback_statements if s.verb == Verb.CREATE_INDEX)


def twin_leftover_drop(m: IndexMigration) -> Step:
    """Drop the INVALID twin a stopped rollback left (concurrently: it blocks no writes)."""
    rollback = file_steps(m, "rollback")
    settings = tuple(s for s in rollback[0].statements[:-1])
    drop = f"DROP INDEX CONCURRENTLY IF EXISTS {twin_name(m)}"
    return Step(m, Verb.DROP_INDEX, (*settings, Statement(drop, "the INVALID twin a stopped rollback left")),
                "rollback", drop)


def drop(state: IndexState, twin: State | None = None) -> list[Step]:
    """What rollback runs for a constraint's migration from where it stands. A promotion's: its twin
    built (an INVALID one dropped first), the constraint dropped, the twin renamed; each only while it
    is still to do (`twin`: the twin index's state, None when there is none)."""
    m = state.migration
    steps = file_steps(m, "rollback")
    if m.kind != Kind.PROMOTION:
        return steps
    build, drop_constraint, rename = steps
    if state.state == State.ABSENT:  # the constraint is gone: only the rename may be left to do
        return [rename] if twin == State.VALID else []
    if twin == State.VALID:
        return [drop_constraint, rename]
    return ([twin_leftover_drop(m)] if twin == State.INVALID else []) + [build, drop_constraint, rename]
