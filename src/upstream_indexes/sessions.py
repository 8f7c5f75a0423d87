"""A plan step as the statements it runs: the one place where an action becomes SQL. The executor
runs these sessions (executor.py), `invoke sql` prints them (sqlscript.py).

A session is what one build connection runs, in order: a build ("apply": the forward file, after
the build settings) or a drop ("rollback": the rollback file). On a partitioned table the file's
CREATE (or DROP) INDEX CONCURRENTLY is replaced by its per-partition steps (partitions.py), planned
from the catalog state given, so the executor, which renders each attempt from the catalog as it is
then, runs what is left to do.

A new kind of plan step (planner.Step) gets its statements here, in `of` and a function beside
`build` / `drop`, and its carrying out in executor.Executor.
"""

from dataclasses import dataclass
from pathlib import Path

from . import ledger, partitions, planner
from .catalog import IndexState, State
from .migrations import IndexMigration
from .partitions import Do, PartitionStep, Statement
from .planner import Action, Step


@dataclass(frozen=True)
class Session:
    """The statements one build connection runs, in order."""

    migration: IndexMigration
    direction: str  # "apply": a build (the build settings apply); "rollback": a drop
    statements: tuple[Statement, ...]
    partitioned: bool = False  # a partitioned table's expansion (its catalog-only statements: a short lock_timeout)

    @property
    def builds(self) -> bool:
        return self.direction == "apply"

    @property
    def source(self) -> Path:
        """The migration file its statements come from."""
        return self.migration.path if self.builds else self.migration.rollback_path


def of(action: Action) -> list[Session]:
    """What carrying out `action` runs, in order; none for a record, a wait or a refusal."""
    state = action.state
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
    """The forward ("apply") or rollback file's own statements, as the run read them (ledger.statements)."""
    return Session(m, direction, tuple(Statement(s) for s in ledger.statements(m, direction)))


def _expanded(state: IndexState, direction: str, steps: tuple[PartitionStep, ...]) -> Session:
    m = state.migration
    return Session(m, direction, tuple(partitions.expand(m, state.schema, steps, ledger.statements(m, direction),
                                                         rollback=direction == "rollback")), partitioned=True)
