"""Pinned intervals: a user's fixed interval or bounds, respected in virtual time."""

from __future__ import annotations

import json

import pytest

from adaptive_modbus_engine.errors import EngineUsageError, UnknownRegister
from adaptive_modbus_engine.intervals import IntervalLimits, IntervalPin
from adaptive_modbus_engine.scheduler import EngineConfig
from adaptive_modbus_engine.simulator import signals

from .test_scheduler import make_engine, run_until

SETPOINT = "1.room_setpoint"  # never changes unless written: grows to the max
SUPPLY = "1.supply_temperature"  # climbs fast in the incident: shrinks to the min


def _config() -> EngineConfig:
    return EngineConfig(min_interval=5, max_interval=300)


async def test_pinned_interval_is_kept_while_learning() -> None:
    """A quiet register pinned to 10 s is read every 10 s, not every 300 s."""
    engine, _, _, clock = make_engine(_config())
    await run_until(engine, clock, 1200)
    snap = engine.snapshot().registers[SETPOINT]
    assert snap.effective_interval >= 120
    assert snap.pinned is None
    pin = engine.pin_interval(SETPOINT, interval=10)
    assert pin == IntervalPin(interval=10)
    # due at once (its last read is long ago), then every 10 s
    assert engine.next_due() <= clock.t + 10
    reads_before = engine.snapshot().registers[SETPOINT].reads
    await run_until(engine, clock, 1200 + 600)
    snap = engine.snapshot().registers[SETPOINT]
    assert snap.pinned == pin
    assert snap.interval == snap.effective_interval == 10
    assert 59 <= snap.reads - reads_before <= 61
    assert engine.pins() == {SETPOINT: pin}


async def test_pinned_bounds_hold_in_quiet_times_and_in_the_incident() -> None:
    """A max bound caps a quiet register; a min bound holds a busy one off the bus."""
    engine, _, _, clock = make_engine(_config())
    engine.pin_interval(SETPOINT, max_interval=40)
    engine.pin_interval(SUPPLY, min_interval=60)
    start = signals.incident_start(0)
    seen_setpoint: list[float] = []
    seen_supply: list[float] = []
    t = 0.0
    while t < start + 720:
        t += 30
        await run_until(engine, clock, t)
        registers = engine.snapshot().registers
        seen_setpoint.append(registers[SETPOINT].effective_interval)
        seen_supply.append(registers[SUPPLY].effective_interval)
    assert max(seen_setpoint) <= 40
    assert seen_setpoint[-1] > 5  # still adaptive inside the bounds: grew off the min
    assert min(seen_supply) >= 60
    # without the pin the incident drives the supply temperature near 5 s
    free, _, _, free_clock = make_engine(_config())
    await run_until(free, free_clock, start + 720)
    assert free.snapshot().registers[SUPPLY].interval < 60


async def test_unpin_gives_the_register_back_to_the_model() -> None:
    """After unpinning, the configured bounds apply again and the interval grows."""
    engine, _, _, clock = make_engine(_config())
    engine.pin_interval(SETPOINT, interval=10)
    await run_until(engine, clock, 600)
    assert engine.snapshot().registers[SETPOINT].interval == 10
    assert engine.unpin(SETPOINT) == IntervalPin(interval=10)
    assert engine.unpin(SETPOINT) is None
    assert engine.pins() == {}
    await run_until(engine, clock, 3000)
    snap = engine.snapshot().registers[SETPOINT]
    assert snap.pinned is None
    assert snap.effective_interval >= 120


async def test_a_longer_pin_does_not_read_sooner() -> None:
    """Pinning a longer interval leaves the next read where it was."""
    engine, _, _, clock = make_engine(_config())
    await run_until(engine, clock, 100)
    before = engine.snapshot().registers[SUPPLY].next_due
    engine.pin_interval(SUPPLY, interval=250)
    assert engine.snapshot().registers[SUPPLY].next_due == before


async def test_reset_learning_keeps_the_pin() -> None:
    """A pin is a user's setting, not learned: a reset keeps it."""
    engine, _, _, clock = make_engine(_config())
    engine.pin_interval(SETPOINT, min_interval=20, max_interval=80)
    await run_until(engine, clock, 900)
    engine.reset_learning()
    snap = engine.snapshot().registers[SETPOINT]
    assert snap.pinned == IntervalPin(min_interval=20, max_interval=80)
    assert snap.interval == 20  # a fresh model starts at the (pinned) minimum
    await run_until(engine, clock, 1800)
    assert 20 <= engine.snapshot().registers[SETPOINT].effective_interval <= 80


async def test_pins_survive_export_and_import() -> None:
    """Pins are exported with the learned state and restored into a new engine."""
    engine, _, _, clock = make_engine(_config())
    engine.pin_interval(SETPOINT, interval=15)
    engine.pin_interval(SUPPLY, max_interval=45)
    await run_until(engine, clock, 900)
    state = json.loads(json.dumps(engine.export_state()))
    assert state["pins"] == {
        SETPOINT: {"interval": 15.0, "min_interval": None, "max_interval": None},
        SUPPLY: {"interval": None, "min_interval": None, "max_interval": 45.0},
    }
    restored, _, _, restored_clock = make_engine(_config())
    report = restored.import_state(state)
    assert report.warnings == []
    assert restored.pins() == engine.pins()
    await run_until(restored, restored_clock, 900)
    registers = restored.snapshot().registers
    assert registers[SETPOINT].effective_interval == 15
    assert registers[SUPPLY].effective_interval <= 45
    # a state that has no pins (an older one) leaves pins alone; an empty map clears
    restored.import_state({k: v for k, v in state.items() if k != "pins"})
    assert set(restored.pins()) == {SETPOINT, SUPPLY}
    restored.import_state({**state, "pins": {}})
    assert restored.pins() == {}
    assert restored.snapshot().registers[SETPOINT].pinned is None


async def test_corrupt_pins_are_set_aside_with_a_warning() -> None:
    """A stored pin that cannot be used is dropped with a warning, never a crash."""
    engine, _, _, _ = make_engine(_config())
    state = engine.export_state()
    report = engine.import_state(
        {
            **state,
            "pins": {
                SETPOINT: {"interval": -3},
                SUPPLY: "ten seconds",
                "1.outdoor_temperature": {"min_interval": 30},
                "9.unknown": {"interval": 10},
            },
        }
    )
    assert len(report.warnings) == 2
    assert any(SETPOINT in w for w in report.warnings)
    assert any(SUPPLY in w for w in report.warnings)
    assert engine.pins() == {"1.outdoor_temperature": IntervalPin(min_interval=30)}
    report = engine.import_state({**state, "pins": ["not", "a", "map"]})
    assert report.warnings == ["stored pins set aside (not a mapping)"]


async def test_pin_with_adaptive_polling_off() -> None:
    """With adaptive polling off a pin still decides the register's interval."""
    config = EngineConfig(adaptive=False, fixed_interval=30)
    engine, _, _, clock = make_engine(config)
    engine.pin_interval(SETPOINT, interval=10)
    engine.pin_interval(SUPPLY, min_interval=60)
    await run_until(engine, clock, 600)
    registers = engine.snapshot().registers
    assert registers[SETPOINT].effective_interval == 10
    assert registers[SUPPLY].effective_interval == 60
    assert registers["1.outdoor_temperature"].effective_interval == 30


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "needs an interval"),
        ({"interval": 10, "max_interval": 20}, "either an interval or bounds"),
        ({"min_interval": 50, "max_interval": 20}, "min_interval 50 is above"),
        ({"interval": 0}, "interval must be a positive number"),
        ({"max_interval": float("nan")}, "max_interval must be a positive"),
    ],
)
def test_bad_pins_are_refused(kwargs: dict[str, float], match: str) -> None:
    """A pin that pins nothing, mixes both kinds or has bad numbers is refused."""
    engine, _, _, _ = make_engine(_config())
    with pytest.raises(EngineUsageError, match=match):
        engine.pin_interval(SETPOINT, **kwargs)
    assert engine.pins() == {}


def test_unknown_register_is_refused() -> None:
    """Pinning or unpinning an unknown register names it."""
    engine, _, _, _ = make_engine(_config())
    with pytest.raises(UnknownRegister, match="9.nothing"):
        engine.pin_interval("9.nothing", interval=10)
    with pytest.raises(UnknownRegister, match="9.nothing"):
        engine.unpin("9.nothing")


def test_pin_limits_fill_in_the_configured_bounds() -> None:
    """A pinned bound keeps the other configured one, widened where they cross."""
    base = IntervalLimits(5, 300)
    assert IntervalPin(interval=7).limits(base) == IntervalLimits(7, 7)
    assert IntervalPin(min_interval=30).limits(base) == IntervalLimits(30, 300)
    assert IntervalPin(max_interval=60).limits(base) == IntervalLimits(5, 60)
    assert IntervalPin(min_interval=600).limits(base) == IntervalLimits(600, 600)
    assert IntervalPin(max_interval=2).limits(base) == IntervalLimits(2, 2)
    pin = IntervalPin(min_interval=10, max_interval=20)
    assert IntervalPin.from_dict(pin.to_dict()) == pin
