"""The planner, table-driven and without any PostgreSQL: every index state x recorded or not, for
migrate, rollback and status (which reads the migrate plan)."""

from pathlib import Path

import pytest

from upstream_indexes.catalog import IndexState, State
from upstream_indexes.migrations import IndexMigration
from upstream_indexes.planner import Step, migrate_action, migrate_plan, refusals, rollback_plan


def migration(number: int) -> IndexMigration:
    name = f"index_{number}"
    return IndexMigration(f"000{number}.{name}", Path(f"000{number}.{name}.sql"),
                          Path(f"000{number}.{name}.rollback.sql"), name, "t",
                          f"CREATE INDEX {name} ON t USING btree (a)", "test", "0" * 64)


def state(kind: State, number: int = 1) -> IndexState:
    m = migration(number)
    return IndexState(m, kind, definition="CREATE INDEX x ON t USING btree (b)" if kind == State.FOREIGN else None,
                      building_pid=4242 if kind == State.BUILDING else None)


@pytest.mark.parametrize("kind, recorded, step", [
    (State.ABSENT, False, Step.BUILD),
    (State.ABSENT, True, Step.REBUILD),
    (State.VALID, False, Step.RECORD),
    (State.VALID, True, Step.UNCHANGED),
    (State.INVALID, False, Step.DROP_INVALID_THEN_BUILD),
    (State.INVALID, True, Step.DROP_INVALID_THEN_BUILD),
    (State.BUILDING, False, Step.WAIT_FOR_ORPHAN),
    (State.BUILDING, True, Step.WAIT_FOR_ORPHAN),
    (State.FOREIGN, False, Step.REFUSE),
    (State.FOREIGN, True, Step.REFUSE),
])
def test_migrate_decides_each_state(kind, recorded, step):
    action = migrate_action(state(kind), recorded)
    assert action.step == step and action.recorded == recorded
    assert action.changes_something == (step not in (Step.UNCHANGED, Step.REFUSE))
    assert "index_1" in action.reason


@pytest.mark.parametrize("kind, force, step", [
    (State.VALID, False, Step.DROP),
    (State.INVALID, False, Step.DROP),
    (State.ABSENT, False, Step.DROP),  # recorded, gone by hand: the drop is IF EXISTS, the record goes
    (State.BUILDING, False, Step.WAIT_FOR_ORPHAN),
    (State.FOREIGN, False, Step.REFUSE),
    (State.FOREIGN, True, Step.DROP),
])
def test_rollback_decides_each_state(kind, force, step):
    [action] = rollback_plan([state(kind)], {"0001.index_1"}, force=force)
    assert action.step == step


def test_migrate_plan_keeps_the_migrations_order_and_what_each_recorded():
    states = [state(State.VALID, 1), state(State.ABSENT, 2), state(State.INVALID, 3)]
    plan = migrate_plan(states, {"0001.index_1", "0003.index_3"})
    assert [(a.state.migration.index, a.step, a.recorded) for a in plan] == [
        ("index_1", Step.UNCHANGED, True), ("index_2", Step.BUILD, False),
        ("index_3", Step.DROP_INVALID_THEN_BUILD, True)]
    assert refusals(plan) == []


@pytest.mark.parametrize("count, everything, dropped", [
    (1, False, ["index_3"]), (2, False, ["index_3", "index_1"]), (5, False, ["index_3", "index_1"]),
    (1, True, ["index_3", "index_1"]),
])
def test_rollback_takes_the_newest_applied_first(count, everything, dropped):
    states = [state(State.VALID, 1), state(State.ABSENT, 2), state(State.VALID, 3)]
    plan = rollback_plan(states, {"0001.index_1", "0003.index_3"}, count, everything)
    assert [a.state.migration.index for a in plan] == dropped


def test_nothing_applied_nothing_to_roll_back():
    assert rollback_plan([state(State.VALID)], set(), everything=True) == []
