"""What migrate and rollback do with each index or constraint, decided once and held as data.

From the catalog's state of each migration's index or constraint (catalog.IndexState) and what
the ledger recorded as applied, a list of actions: the runner executes it, `invoke sql` renders
it, `invoke migrate --dry-run` prints it. Nothing here touches a database;
tests/test_planner.py and tests/test_kinds_plan.py cover every state x recorded x command.
"""

from enum import Enum

from .catalog import IndexState, State, invalid_origin
from .migration_kinds import Kind
from .migrations import IndexMigration
from .partitions import Do, Part, PartitionStep
from .records import Record


class Step(str, Enum):
    UNCHANGED = "unchanged"  # applied and valid: nothing to do
    RECORD = "record"  # valid and identical to ours but not recorded: record it, no SQL
    BUILD = "build"  # missing: build it
    REBUILD = "rebuild"  # recorded as applied but missing: build it again
    DROP_INVALID_THEN_BUILD = "drop-invalid-then-build"  # an INVALID leftover: drop it, then build
    VALIDATE = "validate"  # a constraint of ours left NOT VALID: validate it (the rest of the forward file)
    BUILD_PARTITIONS = "build-partitions"  # a partitioned table: the parent ON ONLY, each partition's, attach
    WAIT_FOR_ORPHAN = "wait-for-orphan"  # a CREATE INDEX of our name is running: wait, then plan again
    DROP = "drop"  # rollback: drop it and forget its record
    REFUSE = "refuse"  # our name, another definition: a human decides


class Action(Record):
    """One step for one index, and why, in words for the operator and the reviewer."""

    state: IndexState
    recorded: bool
    step: Step
    reason: str
    partition_steps: tuple[PartitionStep, ...] = ()  # a partitioned table's, in order (see partitions.py)

    @property
    def changes_something(self) -> bool:
        return self.step not in (Step.UNCHANGED, Step.REFUSE)

    @property
    def builds(self) -> bool:
        """migrate ends it with the index built (a what-if stands a hypothetical index in for it); a
        constraint's migration builds no index (a promotion's makes an existing one a constraint's)."""
        return self.state.migration.kind.makes_index and self.step in (
            Step.BUILD, Step.REBUILD, Step.DROP_INVALID_THEN_BUILD, Step.BUILD_PARTITIONS, Step.WAIT_FOR_ORPHAN)


def foreign_reason(state: IndexState) -> str:
    how = f" ({'; '.join(state.differences)})" if state.differences else ""
    return (f"{state.name} exists with another definition: found `{state.definition}`, "
            f"ours is `{state.migration.definition}`{how}")


def makes(m: IndexMigration) -> str:
    """What migrate does to make a migration's index or constraint, in words."""
    if m.kind == Kind.INDEX:
        return f"builds {m.index} on {m.table}"
    if m.kind == Kind.PROMOTION:
        return f"makes index {m.index} the {m.constraint.type.upper()} constraint {m.index} of {m.table}"
    return f"adds the {m.kind.value} constraint {m.index} to {m.table} NOT VALID, then validates it"


def drops(m: IndexMigration) -> str:
    """What rollback does to take a migration's index or constraint back, in words."""
    if m.kind == Kind.INDEX:
        return f"drops {m.index}"
    if m.kind == Kind.PROMOTION:
        return (f"builds a twin of index {m.index}, drops the constraint {m.index} (and its index), and gives the "
                f"twin the name {m.index}")
    return f"drops the constraint {m.index}"


def partition_build_steps(state: IndexState) -> tuple[PartitionStep, ...]:
    """A partitioned table's index, from where it stands: the parent ON ONLY if absent, then per
    partition not done: drop our INVALID leftover, build, attach (each partition in bound order)."""
    steps = [PartitionStep(Do.CREATE_PARENT)] if state.state == State.ABSENT else []
    for p in state.partitions:
        if p.state == Part.INVALID:
            steps.append(PartitionStep(Do.DROP_LEFTOVER, p))
        if p.state in (Part.INVALID, Part.MISSING):
            steps.append(PartitionStep(Do.BUILD, p))
        if p.state in (Part.INVALID, Part.MISSING, Part.BUILT):
            steps.append(PartitionStep(Do.ATTACH, p))
    return tuple(steps)


def partition_drop_steps(state: IndexState) -> tuple[PartitionStep, ...]:
    """Rollback of a partitioned table's index: the parent (and with it every attached partition's
    index), then our unattached leftovers on partitions, concurrently."""
    leftovers = [PartitionStep(Do.DROP_LEFTOVER, p) for p in state.partitions or ()
                 if p.state in (Part.INVALID, Part.BUILT)]
    return ((PartitionStep(Do.DROP_PARENT),) if state.state != State.ABSENT else ()) + tuple(leftovers)


def _partitioned_action(state: IndexState, recorded: bool) -> Action:
    """migrate_action for an index on a partitioned table that is absent or INVALID (not all attached)."""
    foreign = [p for p in state.partitions if p.state == Part.FOREIGN]
    if foreign:
        return Action(state, recorded, Step.REFUSE, "; ".join(
            f"partition {p.partition} of {state.migration.table}: {p.problem}" for p in foreign))
    total, done = len(state.partitions), state.partitions_done
    where = (f"{state.name} is INVALID with {done} of {total} partitions' indexes attached (a run was killed "
             "or stopped part-way): migrate goes on" if state.state == State.INVALID else
             f"{state.migration.table} is partitioned ({total} partitions): migrate creates {state.name} "
             "ON ONLY the table")
    return Action(state, recorded, Step.BUILD_PARTITIONS,
                  f"{where}, builds each remaining partition's index concurrently and attaches it; "
                  f"{state.name} turns valid with the last", partition_build_steps(state))


def migrate_action(state: IndexState, recorded: bool) -> Action:
    """What migrate does with one index."""
    name = state.name
    if state.state == State.FOREIGN:
        return Action(state, recorded, Step.REFUSE, foreign_reason(state))
    if state.partitions is not None and state.state in (State.ABSENT, State.INVALID):
        return _partitioned_action(state, recorded)
    if state.state == State.BUILDING:
        return Action(state, recorded, Step.WAIT_FOR_ORPHAN,
                      f"a CREATE INDEX for {name} is still running in pid {state.building_pid}: migrate waits "
                      "for it, then acts on what it left")
    if state.state == State.VALID:
        if recorded:
            return Action(state, recorded, Step.UNCHANGED, f"applied, {name} valid: nothing to run")
        return Action(state, recorded, Step.RECORD,
                      f"{name} exists, valid and identical to ours: migrate only records it as applied, "
                      f"no SQL on the {'index' if state.migration.kind.makes_index else 'constraint'}")
    if state.state == State.INVALID:
        return Action(state, recorded, Step.DROP_INVALID_THEN_BUILD,
                      f"{name} is INVALID ({invalid_origin(recorded)}): migrate drops it, then builds it")
    if state.state == State.NOT_VALID:
        return Action(state, recorded, Step.VALIDATE,
                      f"{name} is NOT VALID (added by a run that stopped before validating it; new rows are "
                      "checked, older ones not yet): migrate validates it")
    if recorded:
        return Action(state, recorded, Step.REBUILD,
                      f"recorded as applied but {name} is missing: migrate {makes(state.migration)} again")
    return Action(state, recorded, Step.BUILD, f"migrate {makes(state.migration)}")


def migrate_plan(states: list[IndexState], applied: set[str]) -> list[Action]:
    """Every migration in order, each with what migrate does."""
    return [migrate_action(s, s.migration.id in applied) for s in states]


def rollback_plan(states: list[IndexState], applied: set[str], count: int = 1, everything: bool = False,
                  force: bool = False) -> list[Action]:
    """The newest applied migrations (`count` of them, or all), newest first, each dropped; an index
    of our name with another definition is refused unless `force`."""
    newest_first = [s for s in reversed(states) if s.migration.id in applied]
    chosen = newest_first if everything else newest_first[:count]
    actions = []
    for state in chosen:
        if state.state == State.FOREIGN and not force:
            actions.append(Action(state, True, Step.REFUSE, foreign_reason(state)))
        elif state.state == State.BUILDING:
            actions.append(Action(state, True, Step.WAIT_FOR_ORPHAN,
                                  f"a CREATE INDEX for {state.name} is still running in pid {state.building_pid}: "
                                  "rollback waits for it, then drops what it left"))
        elif state.partitions is not None:
            actions.append(Action(state, True, Step.DROP,
                                  f"rollback drops {state.name} on the partitioned {state.migration.table} with a "
                                  "plain DROP INDEX (a partitioned index cannot be dropped concurrently; it takes "
                                  "ACCESS EXCLUSIVE on the table and its partitions for the drop) and forgets that "
                                  "it was applied", partition_drop_steps(state)))
        else:
            actions.append(Action(state, True, Step.DROP,
                                  f"rollback {drops(state.migration)} and forgets that it was applied"))
    return actions


def refusals(actions: list[Action]) -> list[Action]:
    return [a for a in actions if a.step == Step.REFUSE]
