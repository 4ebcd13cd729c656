"""Visualization history: what it takes from cycles, hourly aggregates, persistence."""

from __future__ import annotations

import json

import pytest

from adaptive_modbus_engine.history import (
    CHANGES_KEPT,
    CHANGES_PERSISTED,
    HOURS_KEPT,
    MAX_GAP,
    FloatRing,
    History,
    ReadRing,
)
from adaptive_modbus_engine.registers import Table
from adaptive_modbus_engine.scheduler import CycleResult
from adaptive_modbus_engine.simulator import signals
from adaptive_modbus_engine.stats import (
    EngineSnapshot,
    IntervalChange,
    RegisterSnapshot,
    RequestRecord,
    Totals,
)

from .test_views import T0, Demo

# the learned-state budget of a register in the Store (reliability issue): the
# history's persisted share must leave most of it to the engine's own state
PERSISTED_BYTES_PER_REGISTER = 400


def _register(uid: str, interval: float = 60.0) -> RegisterSnapshot:
    return RegisterSnapshot(
        uid=uid, key=uid, unit_id=1, table=Table.HOLDING, address=0, size=1, enabled=True,
        value=1.0, last_read=None, last_change=None, next_due=None, interval=interval,
        effective_interval=interval, reason="rate", detail="", tolerance=0.1, rate=0.0,
        noise=0.0, noisy=False, pattern_factor=1.0, reads=0, changes=0, errors=0,
        failure_streak=0, quarantined_until=None,
    )  # fmt: skip


def _snapshot(
    at: float,
    registers: int = 4,
    *,
    requests: tuple[RequestRecord, ...] = (),
    total_requests: int = 0,
    changes: tuple[IntervalChange, ...] = (),
    total_changes: int = 0,
) -> EngineSnapshot:
    regs = {f"1.r{i}": _register(f"1.r{i}") for i in range(registers)}
    return EngineSnapshot(
        at=at, adaptive=True, fixed_interval=10.0, registers=regs, clusters=(),
        totals=Totals(requests=total_requests, interval_changes=total_changes), holes={},
        recent_requests=requests, recent_interval_changes=changes,
    )  # fmt: skip


def _cycle(at: float, requests: int = 1, registers_read: int = 4) -> CycleResult:
    return CycleResult(
        started=at, duration=0.0, changed={}, failed=frozenset(), requests=requests,
        registers_read=registers_read, errors=(),
    )  # fmt: skip


def test_elapsed_time_is_split_at_hour_boundaries_and_gaps_are_not_counted() -> None:
    """Test that elapsed time is split at hour boundaries and gaps are not counted."""
    history = History()
    start = T0 + 3600 - 30  # 30 s before an hour boundary
    history.observe(_cycle(start), _snapshot(start))
    history.observe(_cycle(start + 60), _snapshot(start + 60))
    first, second = history.hours()
    assert first.start == T0 and second.start == T0 + 3600
    assert first.seconds == pytest.approx(30) and second.seconds == pytest.approx(30)
    # 4 registers every 10 s: 0.4 requests per second of fixed polling
    assert first.fixed_requests == pytest.approx(
        12
    ) and second.fixed_requests == pytest.approx(12)
    assert first.requests == 1 and second.requests == 1
    # HA was stopped for longer than MAX_GAP: fixed polling would not have run either
    later = start + 60 + MAX_GAP + 1
    history.observe(_cycle(later), _snapshot(later))
    assert sum(h.seconds for h in history.hours()) == pytest.approx(60)


def test_requests_and_interval_changes_are_taken_once() -> None:
    """Test that requests and interval changes are taken into the history once."""
    history = History()
    req = RequestRecord(at=10.0, unit_id=1, table=Table.HOLDING, address=0, count=4,
                        latency=0.05, ok=True)  # fmt: skip
    change = IntervalChange(at=10.0, uid="1.r0", previous=60.0, interval=30.0, reason="rate",
                            detail="")  # fmt: skip
    snap = _snapshot(
        10.0, requests=(req,), total_requests=1, changes=(change,), total_changes=1
    )
    history.observe(_cycle(10.0), snap)
    # the next cycle's snapshot still holds the same records in its recent buffers
    snap2 = _snapshot(
        20.0, requests=(req,), total_requests=1, changes=(change,), total_changes=1
    )
    history.observe(_cycle(20.0, requests=0), snap2)
    assert len(history.interval_changes("1.r0")) == 1
    assert sum(h.bus_time for h in history.hours()) == pytest.approx(0.05)


def test_small_adjustments_are_left_out_of_the_timeline() -> None:
    """Test that small interval adjustments are left out of the timeline."""
    history = History()
    steps = [
        (60.0, 55.0, "rate"),
        (55.0, 52.0, "rate"),
        (52.0, 20.0, "rate"),
        (20.0, 19.0, "jump"),
    ]
    changes = tuple(
        IntervalChange(
            at=10.0 * i, uid="1.r0", previous=old, interval=new, reason=why, detail=""
        )
        for i, (old, new, why) in enumerate(steps, start=1)
    )
    for n in range(1, len(changes) + 1):
        snap = _snapshot(10.0 * n, changes=changes[:n], total_changes=n)
        history.observe(_cycle(10.0 * n), snap)
    kept = [(c.old, c.new, c.reason) for c in history.interval_changes("1.r0")]
    # 60 -> 55 kept (first), 55 -> 52 is 8 %: left out; 52 -> 20 kept and chained from
    # 55 (the last kept); a new reason is always kept
    assert kept == [(60.0, 55.0, "rate"), (55.0, 20.0, "rate"), (20.0, 19.0, "jump")]


async def test_demo_history_holds_every_change_and_read() -> None:
    """Test that the demo's history holds every interval change and read."""
    demo = Demo(History(changes_kept=100_000, min_step=0))
    await demo.run_until(T0 + signals.incident_start(0) + 600)
    snap = demo.engine.snapshot()
    assert (
        sum(len(r) for r in demo.history.changes.values())
        == snap.totals.interval_changes
    )
    # the default ring keeps the last CHANGES_KEPT per register: the newest ones
    bounded = Demo(History(min_step=0))
    await bounded.run_until(T0 + signals.incident_start(0) + 600)
    for uid, ring in bounded.history.changes.items():
        assert len(ring) <= CHANGES_KEPT
        assert list(ring) == list(demo.history.changes[uid])[-len(ring) :]
    for uid, reg in snap.registers.items():
        samples = demo.history.read_samples(uid)
        assert samples[-1].at == reg.last_read
        assert samples[-1].value == reg.value
        times = [s.at for s in samples]
        assert times == sorted(set(times))


async def test_persisted_state_round_trips_and_stays_small() -> None:
    """Test that the persisted history round-trips and stays small."""
    demo = Demo()
    await demo.run_until(T0 + signals.incident_start(0) + 600)
    stored = json.loads(json.dumps(demo.history.export_state()))
    restored = History()
    assert restored.import_state(stored, uids=demo.engine.uids) == []
    for back, kept in zip(restored.hours(), demo.history.hours(), strict=True):
        assert (
            back.start,
            back.requests,
            back.registers_read,
            back.errors,
            back.cycles,
        ) == (
            kept.start,
            kept.requests,
            kept.registers_read,
            kept.errors,
            kept.cycles,
        )
        assert back.bus_time == pytest.approx(kept.bus_time, abs=1e-3)
        assert back.seconds == pytest.approx(kept.seconds, abs=0.1)
        assert back.fixed_requests == pytest.approx(kept.fixed_requests, abs=0.1)
    for uid, ring in demo.history.changes.items():
        kept = list(ring)[-CHANGES_PERSISTED:]
        back = restored.interval_changes(uid)
        assert [c.reason for c in back] == [c.reason for c in kept]
        assert [c.new for c in back] == pytest.approx([c.new for c in kept], abs=0.05)
        assert [c.at for c in back] == pytest.approx([c.at for c in kept], abs=0.5)
    assert restored.reads == {}  # reads stay in memory
    per_register = [len(json.dumps(rows)) for rows in stored["changes"].values()]
    assert max(per_register) <= PERSISTED_BYTES_PER_REGISTER
    # a register that is gone from the connection is dropped on import
    again = History()
    again.import_state(stored, uids=["1.room_setpoint"])
    assert set(again.changes) <= {"1.room_setpoint"}


def test_thirty_days_of_hours_are_kept_and_their_size_is_bounded() -> None:
    """Test that thirty days of hours are kept and their size is bounded."""
    history = History()
    t = T0
    for _ in range(HOURS_KEPT + 48):
        history.observe(_cycle(t, requests=120, registers_read=900), _snapshot(t))
        t += 600
        history.observe(_cycle(t, requests=120, registers_read=900), _snapshot(t))
        t += 3000  # a gap > MAX_GAP: only the 600 s between the two are counted
    hours = history.hours()
    assert len(hours) == HOURS_KEPT
    assert hours[-1].start == T0 + (HOURS_KEPT + 47) * 3600
    size = len(json.dumps(history.export_state()["hours"]))
    # ~60 bytes an hour: ~43 kB for 30 days per connection
    assert size <= 60 * HOURS_KEPT


@pytest.mark.parametrize(
    ("data", "warned"),
    [
        (None, "unknown format"),
        ({"version": 99}, "unknown format"),
        ({"version": 1, "hours": [[1, 2]], "changes": {}}, "hour row"),
        (
            {"version": 1, "hours": [], "changes": {"1.r0": [["x", 1, 2, "rate"]]}},
            "change of 1.r0",
        ),
    ],
)
def test_corrupt_state_is_set_aside_with_a_warning(data: object, warned: str) -> None:
    """Test that corrupt stored history is set aside with a warning."""
    history = History()
    warnings = history.import_state(data)
    assert any(warned in w for w in warnings)
    assert history.hours() == []


def test_read_ring_keeps_types_and_the_newest_reads() -> None:
    """Test that the read ring keeps value types and the newest reads."""
    ring = ReadRing(3)
    for i, value in enumerate([True, False, None, True]):
        ring.append(float(i), value)
    assert [(s.at, s.value) for s in ring] == [(1.0, False), (2.0, None), (3.0, True)]
    assert all(isinstance(s.value, bool | None) for s in ring)
    texts = ReadRing(2)
    texts.append(0.0, 7)
    texts.append(1.0, "SN-1")
    texts.append(2.0, 8)
    assert [s.value for s in texts] == ["SN-1", 8]
    assert isinstance(list(texts)[1].value, int)


def test_float_ring_last_and_columns_across_the_wrap() -> None:
    """The newest row and the columns oldest first, before and after the ring wraps."""
    ring = FloatRing(3, 2)
    assert ring.last() is None and ring.columns() == [[], []]
    for k in range(5):
        ring.append((float(k), 10.0 * k))
        assert ring.last() == (float(k), 10.0 * k)
    assert ring.columns() == [[2.0, 3.0, 4.0], [20.0, 30.0, 40.0]]
