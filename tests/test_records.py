"""Records (records.Record, issue 22): what @dataclass(frozen=True) gave the package's value types (the
events, a catalog's index state, a planned action...), without its import cost. Each behaviour is held
against a frozen dataclass of the same fields, as some events were defined before: construction by
position and keyword and its errors, defaults, equality and hash, immutability, repr, pattern matching,
copy and pickle; and a subclass's fields after its base's."""

import copy
import pickle
from dataclasses import dataclass, field, make_dataclass

import pytest

from upstream_indexes import index_events, run_events
from upstream_indexes.index_events import BuildStarted, Recorded, Rebuilding
from upstream_indexes.run_events import DryRunDone, Planned

# The events as they were defined before: the same names, fields and defaults.
BEFORE = {
    BuildStarted: make_dataclass("BuildStarted", ["migration_id", "index", "table", "attempt", "attempts"],
                                 frozen=True),
    Planned: make_dataclass("Planned", ["migration_id", "reason", ("statements", tuple, field(default=()))],
                            frozen=True),
    DryRunDone: make_dataclass("DryRunDone", [], frozen=True),
}


def outcome(call):
    """What a call gives: its value's repr, or its error's type and message."""
    try:
        return repr(call())
    except TypeError as exc:
        return f"TypeError: {exc}"


@pytest.mark.parametrize("event", list(BEFORE), ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("args, kwargs", [
    ((), {}),
    (("0001.x",), {}),
    (("0001.x", "x_idx"), {}),
    (("0001.x", "x_idx", "t"), {}),
    (("0001.x", "x_idx", "t", 1, 2), {}),
    (("0001.x", "x_idx", "t", 1, 2, 3), {}),
    ((), {"migration_id": "0001.x", "reason": "pending"}),
    (("0001.x",), {"reason": "pending", "statements": ("SELECT 1",)}),
    (("0001.x",), {"migration_id": "0001.y"}),
    ((), {"nonsense": 1}),
    (("0001.x", "x_idx", "t", 1, 2, 3), {"nonsense": 1}),  # the keyword's error comes first
    (("0001.x", "x_idx", "t", 1), {"attempts": 2}),
], ids=repr)
def test_construction_and_its_errors_are_the_frozen_dataclass_ones(event, args, kwargs):
    assert outcome(lambda: event(*args, **kwargs)) == outcome(lambda: BEFORE[event](*args, **kwargs))


def test_the_fields_are_the_annotations_in_order_with_their_defaults():
    for event, before in BEFORE.items():
        assert event.__match_args__ == before.__match_args__
    assert Planned("0001.x", "pending").statements == ()
    assert Planned("0001.x", "pending", statements=("SELECT 1",)).statements == ("SELECT 1",)


def test_equal_and_hashed_by_type_and_fields():
    built = BuildStarted("0001.x", "x_idx", "t", 1, 2)
    assert built == BuildStarted(attempts=2, attempt=1, table="t", index="x_idx", migration_id="0001.x")
    assert hash(built) == hash(BuildStarted("0001.x", "x_idx", "t", 1, 2))
    assert built != BuildStarted("0001.x", "x_idx", "t", 2, 2)
    assert Recorded("0001.x", "x_idx") != Rebuilding("0001.x", "x_idx")  # the same fields, another event
    assert built != ("0001.x", "x_idx", "t", 1, 2) and built != BEFORE[BuildStarted]("0001.x", "x_idx", "t", 1, 2)
    assert DryRunDone() == DryRunDone() and len({DryRunDone(), DryRunDone(), Planned("0001.x", "p")}) == 2
    unhashable = ("0001.x", "pending", ["SELECT 1"])  # a field's value unhashable: so is the event
    assert outcome(lambda: hash(Planned(*unhashable))) == outcome(lambda: hash(BEFORE[Planned](*unhashable)))


def test_immutable():
    built = BuildStarted("0001.x", "x_idx", "t", 1, 2)
    with pytest.raises(AttributeError, match="^cannot assign to field 'index'$"):
        built.index = "y_idx"
    with pytest.raises(AttributeError, match="^cannot assign to field 'note'$"):
        built.note = "a field it does not have"
    with pytest.raises(AttributeError, match="^cannot delete field 'index'$"):
        del built.index
    assert built == BuildStarted("0001.x", "x_idx", "t", 1, 2) and not hasattr(built, "note")


def test_repr_is_the_dataclass_one():
    for event, args in [(BuildStarted, ("0001.x", "x_idx", "t", 1, 2)), (Planned, ("0001.x", "it's pending")),
                        (DryRunDone, ())]:
        assert repr(event(*args)) == repr(BEFORE[event](*args))
    assert repr(Planned("0001.x", "p")) == "Planned(migration_id='0001.x', reason='p', statements=())"


def test_matched_by_position_and_keyword():
    def said(event):
        match event:
            case run_events.DryRunDone():
                return "done"
            case run_events.Planned(migration_id, reason, ()):
                return f"{migration_id}: {reason}, no statements"
            case run_events.Planned(migration_id, statements=[first, *_]):
                return f"{migration_id}: {first} ..."
            case index_events.BuildStarted(_, index, attempt=attempt) if attempt > 1:
                return f"{index} again"
        return None

    assert said(DryRunDone()) == "done"
    assert said(Planned("0001.x", "pending")) == "0001.x: pending, no statements"
    assert said(Planned("0001.x", "pending", ("SELECT 1", "SELECT 2"))) == "0001.x: SELECT 1 ..."
    assert said(BuildStarted("0001.x", "x_idx", "t", 2, 2)) == "x_idx again"
    assert said(BuildStarted("0001.x", "x_idx", "t", 1, 2)) is None
    with pytest.raises(TypeError, match=r"^DryRunDone\(\) accepts 0 positional sub-patterns \(1 given\)$"):
        match DryRunDone():
            case run_events.DryRunDone(_):
                pass


def test_copied_and_pickled_as_equal_records():
    planned = Planned("0001.x", "pending", ("SELECT 1",))
    for again in [copy.copy(planned), copy.deepcopy(planned), pickle.loads(pickle.dumps(planned))]:
        assert again == planned and again is not planned and hash(again) == hash(planned)
        with pytest.raises(AttributeError, match="^cannot assign to field 'reason'$"):
            again.reason = "changed"


def replanned():
    """A subclass of Planned as a record and as a frozen dataclass, by one name (their qualname is in their
    errors and repr): a field given a default, one added."""
    class Replanned(Planned):
        reason: str = "replanned"
        attempt: int = 2

    record = Replanned

    @dataclass(frozen=True)
    class Replanned(BEFORE[Planned]):
        reason: str = "replanned"
        attempt: int = 2

    return record, Replanned


def test_a_subclass_has_its_base_fields_first_and_may_give_one_a_default():
    record, before = replanned()
    assert record.__match_args__ == before.__match_args__ == ("migration_id", "reason", "statements", "attempt")
    for args in [(), ("0001.x",), ("0001.x", "r", ("SELECT 1",), 3), ("0001.x", "r", (), 3, 4)]:
        assert outcome(lambda: record(*args)) == outcome(lambda: before(*args))
    assert record("0001.x") == record("0001.x", "replanned", (), 2) != Planned("0001.x", "replanned")
