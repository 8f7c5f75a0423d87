"""A plan step as the statements it runs: the one place where an action becomes SQL. The executor
runs these sessions (executor.py), `invoke sql` prints them (sqlscript.py).

A session is what one build connection runs, in order: a build ("apply": the forward file, after
the build settings) or a drop ("rollback": the rollback file). On a partitioned table the file's
CREATE (or DROP) INDEX CONCURRENTLY is replaced by its per-partition steps (partitions.py), planned
from the catalog state given, so the executor, which renders each attempt from the catalog as it is
then, runs what is left to do.

A constraint's migration (a CHECK, a foreign key, a promotion: migration_kinds.Kind) runs its file step
by step: one session per statement that is not a SET, with every SET of the file before it (a
session is a connection of its own, so each carries its settings). Its catalog-only statements (ADD
CONSTRAINT ... NOT VALID, ADD CONSTRAINT ... USING INDEX, DROP CONSTRAINT, ALTER INDEX ... RENAME)
need a brief ACCESS EXCLUSIVE lock (a foreign key's: SHARE ROW EXCLUSIVE on both tables), and while
one waits for it every later query on the table queues behind it: each is sent after the runner's
own SET lock_timeout = SHORT_LOCK_TIMEOUT, whatever the file sets, and the executor retries it
(constraint_steps.ConstraintSteps._catalog_only). Which steps run depends on where the catalog stands: a constraint
left NOT VALID is only validated; a promotion's rollback goes on from where a stopped one left it.

A new kind of plan step (planner.Step) gets its statements here, in `of` and a function beside
`build` / `drop`, and its carrying out in executor.Executor (a constraint's: constraint_steps.ConstraintSteps).
"""

from pathlib import Path

from . import ledger, partitions, planner
from .catalog import IndexState, State
from .migration_kinds import Kind
from .migrations import IndexMigration
from .partitions import SHORT_LOCK_TIMEOUT, Do, PartitionStep, PlannedStatement
from .planner import Action, Step
from .records import Record
from .statement import Verb

CATALOG_ONLY = (Verb.ADD_CHECK, Verb.ADD_FOREIGN_KEY, Verb.ADD_USING_INDEX, Verb.DROP_CONSTRAINT, Verb.RENAME_INDEX)
GUARD = PlannedStatement(f"SET lock_timeout = '{SHORT_LOCK_TIMEOUT}';", "the runner's bound on the wait for the "
                         "next statement's lock (it retries within --max-wait)")


class Session(Record):
    """The statements one build connection runs, in order."""

    migration: IndexMigration
    direction: str  # "apply": the forward file (an index's build: the build settings apply); "rollback"
    statements: tuple[PlannedStatement, ...]
    partitioned: bool = False  # a partitioned table's expansion (its catalog-only statements: a short lock_timeout)
    verb: Verb | None = None  # a step of a constraint's migration: its statement's verb (statement.Verb)
    text: str = ""  # a step: its statement alone, in one line (for messages)

    @property
    def builds(self) -> bool:
        """An index's build: the build settings apply to it."""
        return self.direction == "apply" and self.migration.kind.makes_index

    @property
    def catalog_only(self) -> bool:
        """A step whose statement only changes the catalog, under a brief lock: retried under a short one."""
        return self.verb in CATALOG_ONLY

    @property
    def source(self) -> Path:
        """The migration file its statements come from."""
        return self.migration.path if self.direction == "apply" else self.migration.rollback_path


def of(action: Action) -> list[Session]:
    """What carrying out `action` runs, in order; none for a record, a wait or a refusal."""
    state = action.state
    if not state.migration.kind.makes_index:
        if action.step in (Step.BUILD, Step.REBUILD, Step.VALIDATE):
            return add(state)
        return drop_constraint(state) if action.step == Step.DROP else []
    if action.step == Step.DROP_INVALID_THEN_BUILD:
        return [session for session in (leftover_drop(state), build(state)) if session]
    if action.step in (Step.BUILD, Step.REBUILD, Step.BUILD_PARTITIONS):
        return [build(state)]
    if action.step == Step.DROP:
        return [drop(state)]
    return []


def build(state: IndexState) -> Session:
    """Build the index from where `state` stands."""
    if state.partitions is None:
        return file(state.migration, "apply")
    return _expanded(state, "apply", planner.partition_build_steps(state))


def drop(state: IndexState) -> Session:
    """Roll the index back (the rollback file; on a partitioned table the parent and our leftovers)."""
    if state.partitions is None:
        return file(state.migration, "rollback")
    return _expanded(state, "rollback", planner.partition_drop_steps(state))


def leftover_drop(state: IndexState) -> Session | None:
    """Drop what a failed build left: the INVALID index (its rollback file); on a partitioned table only
    the unattached INVALID partition indexes (the parent and the attached ones stay). None: nothing left."""
    if state.partitions is not None:
        steps = tuple(PartitionStep(Do.DROP_LEFTOVER, p) for p in state.partition_leftovers)
        return _expanded(state, "rollback", steps) if steps else None
    return file(state.migration, "rollback") if state.state == State.INVALID else None


def file(m: IndexMigration, direction: str) -> Session:
    """An index's forward ("apply") or rollback file's own statements, as the run read them (ledger.statements)."""
    return Session(m, direction, tuple(PlannedStatement(s) for s in ledger.statements(m, direction)))


def whole(m: IndexMigration, direction: str) -> list[Session]:
    """All of a forward or rollback file: an index's in one session, a constraint's step by step."""
    return [file(m, direction)] if m.kind.makes_index else steps(m, direction)


def steps(m: IndexMigration, direction: str) -> list[Session]:
    """A constraint's forward ("apply") or rollback file, step by step: each statement but the SETs with
    every SET before it, and before a catalog-only one the runner's short lock_timeout."""
    settings: list[PlannedStatement] = []
    found = []
    for statement in m.statements if direction == "apply" else m.rollback_statements:
        if statement.verb == Verb.SET_TIMEOUT:
            settings.append(PlannedStatement(statement.sql))
            continue
        guard = [GUARD] if statement.verb in CATALOG_ONLY else []
        found.append(Session(m, direction, (*settings, *guard, PlannedStatement(statement.sql)),
                             verb=statement.verb, text=statement.text))
    return found


def add(state: IndexState) -> list[Session]:
    """What migrate runs for a constraint's migration from where `state` stands: all of the forward file
    when the constraint is missing, only its VALIDATE when it is NOT VALID (ours)."""
    found = steps(state.migration, "apply")
    if state.state == State.NOT_VALID:
        return [s for s in found if s.verb == Verb.VALIDATE]
    return found if state.state == State.ABSENT else []


def twin_leftover_drop(m: IndexMigration) -> Session:
    """Drop the INVALID twin a stopped rollback left (concurrently: it blocks no writes)."""
    settings = steps(m, "rollback")[0].statements[:-1]
    drop_twin = f"DROP INDEX CONCURRENTLY IF EXISTS {m.twin}"
    twin = PlannedStatement(drop_twin, "the INVALID twin a stopped rollback left")
    return Session(m, "rollback", (*settings, twin), verb=Verb.DROP_INDEX, text=drop_twin)


def drop_constraint(state: IndexState) -> list[Session]:
    """What rollback runs for a constraint's migration from where it stands. A promotion's: its twin built
    (an INVALID one dropped first), the constraint dropped, the twin renamed; each only while it is still
    to do (state.twin: the twin index as it stands)."""
    m = state.migration
    found = steps(m, "rollback")
    if m.kind != Kind.PROMOTION:
        return found
    build_twin, drop_it, rename = found
    if state.state == State.ABSENT:  # the constraint is gone: only the rename may be left to do
        return [rename] if state.twin == State.VALID else []
    if state.twin == State.VALID:
        return [drop_it, rename]
    return ([twin_leftover_drop(m)] if state.twin == State.INVALID else []) + [build_twin, drop_it, rename]


def _expanded(state: IndexState, direction: str, steps: tuple[PartitionStep, ...]) -> Session:
    m = state.migration
    return Session(m, direction, tuple(partitions.expand(m, state.schema, steps, ledger.statements(m, direction),
                                                         rollback=direction == "rollback")), partitioned=True)
