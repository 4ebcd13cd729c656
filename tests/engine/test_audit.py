"""The audit log: bounded, ids, updates, listeners, JSON-safe values, persistence."""

from __future__ import annotations

import json
import math

import pytest

from adaptive_modbus_engine.audit import (
    AUDIT_VERSION,
    Actor,
    ActorKind,
    AuditEntry,
    AuditLog,
    Outcome,
    json_safe,
)


class WallClock:
    """A settable wall clock."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        """Start at ``now``."""
        self.now = now

    def __call__(self) -> float:
        """Return the time."""
        return self.now


def _log(maxlen: int = 500) -> tuple[AuditLog, WallClock]:
    clock = WallClock()
    return AuditLog(maxlen, wall_clock=clock), clock


def test_add_stamps_ids_time_and_actor() -> None:
    """Entries get increasing ids, the wall time and who made them."""
    log, clock = _log()
    first = log.add(
        actor=Actor.loop(),
        action="strategy:interval",
        target="hp.flow_temp",
        before={"max_interval": 300.0},
        after={"max_interval": 600.0},
        predicted={"requests_per_min": -1.5},
        outcome=Outcome.EVALUATING,
    )
    clock.now += 60
    second = log.add(
        actor=Actor.user("abc123", "Anna"),
        action="set_register_interval",
        target="hp.power",
        after={"interval": 10.0},
    )
    assert (first.id, second.id) == (1, 2)
    assert first.at == 1_700_000_000.0
    assert second.at == 1_700_000_060.0
    assert first.actor.kind == ActorKind.LOOP and not first.actor.is_user
    assert second.actor == Actor(ActorKind.USER, "abc123", "Anna")
    assert second.actor.is_user
    assert second.outcome == "applied"
    assert first.outcome == "evaluating"
    assert log.get(2) is second
    assert log.get(3) is None
    assert [e.id for e in log] == [1, 2]


def test_bounded_keeps_the_newest() -> None:
    """Only the last ``maxlen`` entries are kept; ids go on increasing."""
    log, _ = _log(maxlen=3)
    for index in range(5):
        log.add(actor=Actor.loop(), action="a", target=f"r{index}")
    assert len(log) == 3
    assert [e.target for e in log] == ["r2", "r3", "r4"]
    assert log.get(1) is None
    assert [e.id for e in log.tail(2)] == [4, 5]
    assert log.tail(0) == []
    assert [e.id for e in log.tail(10)] == [3, 4, 5]
    log.clear()
    assert len(log) == 0
    assert log.add(actor=Actor.loop(), action="a", target="x").id == 6


def test_maxlen_must_be_positive() -> None:
    """A log that keeps nothing is a usage error."""
    with pytest.raises(ValueError, match="maxlen"):
        AuditLog(0)


def test_update_fills_in_measurement_and_outcome() -> None:
    """An evaluation ends: outcome and measured effect are filled in, once per call."""
    log, _ = _log()
    entry = log.add(
        actor=Actor.loop(), action="a", target="t", outcome=Outcome.EVALUATING
    )
    updated = log.update(
        entry.id,
        outcome=Outcome.KEPT,
        measured={"requests_per_min": -2.0},
        extra={"window_s": 900},
    )
    assert updated is not None
    assert updated.outcome == "kept"
    assert updated.measured == {"requests_per_min": -2.0}
    assert updated.extra == {"window_s": 900}
    assert log.get(entry.id) == updated
    assert log.update(999, outcome=Outcome.KEPT) is None


def test_listeners_see_new_and_updated_entries() -> None:
    """Listeners are told about each add and update until removed."""
    log, _ = _log()
    seen: list[tuple[int, str]] = []
    remove = log.add_listener(lambda e: seen.append((e.id, e.outcome)))
    entry = log.add(actor=Actor.loop(), action="a", target="t", outcome="evaluating")
    log.update(entry.id, outcome="rolled_back")
    remove()
    remove()  # twice is harmless
    log.add(actor=Actor.loop(), action="a", target="t")
    assert seen == [(1, "evaluating"), (1, "rolled_back")]


def test_values_are_stored_json_safe() -> None:
    """Tuples, sets, enums, NaN and objects become plain JSON data."""

    class WithDict:
        def as_dict(self) -> dict[str, object]:
            """Return a dict with a tuple."""
            return {"x": (1, 2)}

    log, _ = _log()
    entry = log.add(
        actor=Actor.loop(),
        action="a",
        target="t",
        before={"bounds": (5.0, 300.0), 3: math.nan, "kind": ActorKind.USER},
        after={"set": {2, 1}, "obj": WithDict(), "other": object},
    )
    assert entry.before == {"bounds": [5.0, 300.0], "3": None, "kind": "user"}
    assert entry.after["set"] == [1, 2]
    assert entry.after["obj"] == {"x": [1, 2]}
    assert isinstance(entry.after["other"], str)
    json.dumps(log.export_state(), allow_nan=False)
    assert json_safe(math.inf) is None
    assert type(json_safe(ActorKind.LOOP)) is str


def test_export_import_round_trip() -> None:
    """A log exported and imported is the same log, and ids continue after it."""
    log, clock = _log(maxlen=3)
    for index in range(4):
        clock.now += 1
        log.add(
            actor=Actor.user("u1", "Ben") if index % 2 else Actor.loop(),
            action="set",
            target=f"r{index}",
            before=index,
            after=index + 1,
            predicted={"saving": 0.5},
            measured={"saving": 0.4},
            outcome="kept",
        )
    state = json.loads(json.dumps(log.export_state()))
    assert state["version"] == AUDIT_VERSION
    restored = AuditLog(3)
    assert restored.import_state(state) == []
    assert list(restored) == list(log)
    assert restored.add(actor=Actor.loop(), action="a", target="t").id == 5


def test_import_sets_aside_what_cannot_be_used() -> None:
    """Corrupt entries are set aside with a warning, the rest restored."""
    log, _ = _log()
    good = log.add(actor=Actor.loop(), action="a", target="t").to_dict()
    state = {
        "version": AUDIT_VERSION,
        "next_id": "garbage",
        "entries": [
            good,
            "not a mapping",
            {**good, "id": 7, "at": "nan"},
            {**good, "id": 8, "actor": {"kind": "robot"}},
            {**good, "id": 9, "actor": None},
            {key: value for key, value in good.items() if key != "action"},
        ],
    }
    restored = AuditLog()
    warnings = restored.import_state(state)
    assert len(warnings) == 6
    assert [e.id for e in restored] == [1]
    assert restored.add(actor=Actor.loop(), action="a", target="t").id == 2


@pytest.mark.parametrize(
    "state",
    [None, [], {"version": 99, "entries": []}, {"entries": []}],
)
def test_import_of_another_version_starts_empty(state: object) -> None:
    """A state of another version (or none) is set aside whole, with a warning."""
    log, _ = _log()
    log.add(actor=Actor.loop(), action="a", target="t")
    warnings = log.import_state(state)
    assert len(warnings) == 1
    assert "version" in warnings[0]
    assert len(log) == 1  # nothing replaced


def test_entries_without_list_are_set_aside() -> None:
    """A version-1 state whose entries are no list restores an empty log."""
    log, _ = _log()
    warnings = log.import_state({"version": AUDIT_VERSION, "entries": {}})
    assert warnings == ["stored audit entries set aside (not a list)"]
    assert len(log) == 0


def test_entry_from_dict_keeps_user() -> None:
    """An entry's actor survives a round trip with id and name."""
    entry = AuditEntry(
        id=4,
        at=1.0,
        actor=Actor.user("id", "Name"),
        action="reset_learning",
        target="unit 1",
    )
    assert AuditEntry.from_dict(entry.to_dict()) == entry
