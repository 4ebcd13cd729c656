"""PollEngine reliability: unexpected exceptions, clock steps, units that go silent."""

from __future__ import annotations

import asyncio
import logging
import math

import pytest

from adaptive_modbus_engine.errors import (
    ModbusConnectionError,
    ModbusError,
    ModbusTimeout,
)
from adaptive_modbus_engine.registers import Table
from adaptive_modbus_engine.scheduler import (
    UNIT_PROBE_FIRST,
    UNIT_PROBE_MAX,
    CycleResult,
    PollEngine,
)
from adaptive_modbus_engine.simulator.device import SimulatedDevice
from adaptive_modbus_engine.simulator.inprocess import InProcessTransport

from .test_scheduler import VirtualClock, run_until


class ScriptedTransport(InProcessTransport):
    """The simulated device behind a transport whose faults the test scripts."""

    def __init__(self, device: SimulatedDevice) -> None:
        """Serve ``device`` with no fault armed."""
        super().__init__(device)
        self.raise_next: list[BaseException] = []  # raised by the next reads, in order
        self.fault: type[ModbusError] | None = None  # every read fails this way
        self.block: asyncio.Event | None = None  # reads wait for this event
        self.attempts = 0  # reads asked for, including failed ones

    async def read(
        self, unit_id: int, table: Table, address: int, count: int
    ) -> list[int]:
        """Read, waiting for ``block`` and raising the armed faults first."""
        self.attempts += 1
        if self.block is not None:
            await self.block.wait()
        if self.raise_next:
            raise self.raise_next.pop(0)
        if self.fault is not None:
            raise self.fault(f"scripted {self.fault.__name__}", unit_id=unit_id)
        return await super().read(unit_id, table, address, count)


def scripted_engine(
    *, monotonic: VirtualClock | None = None, wall: VirtualClock | None = None
) -> tuple[PollEngine, SimulatedDevice, ScriptedTransport, VirtualClock]:
    """Return an engine on a scripted transport, with its parts and clock."""
    clock = wall or VirtualClock()
    device = SimulatedDevice(seed=42, clock=monotonic or clock, start=0.0)
    transport = ScriptedTransport(device)
    engine = PollEngine(device.registers, transport, clock, monotonic=monotonic)
    return engine, device, transport, clock


def reads(engine: PollEngine) -> dict[str, int]:
    """Return how often each register was read."""
    return {uid: r.reads for uid, r in engine.snapshot().registers.items()}


# -- item 6: an unexpected exception never drops registers from the schedule ------


async def test_runtime_error_in_a_cycle_keeps_every_register_scheduled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Test that an unexpected error in a cycle keeps every register scheduled."""
    engine, _, transport, clock = scripted_engine()
    await run_until(engine, clock, 600)
    before = reads(engine)
    transport.raise_next = [RuntimeError("decoder bug")]
    caplog.set_level(logging.DEBUG)
    clock.t = engine.next_due()
    result = await engine.poll_due()  # must not raise
    assert result.internal_error == "RuntimeError: decoder bug"
    assert result.failed  # what that block held failed, like any failed read
    snapshot = engine.snapshot()
    assert snapshot.totals.internal_errors == 1
    assert snapshot.last_internal_error == "RuntimeError: decoder bug"
    assert snapshot.as_dict()["totals"]["internal_errors"] == 1
    # the next 250 s read every register again (the old engine: 0 reads in 250 s)
    await run_until(engine, clock, clock.t + 300)
    after = reads(engine)
    assert all(after[uid] > before[uid] for uid in before), {
        uid for uid in before if after[uid] == before[uid]
    }
    # logged once, with its traceback
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert "decoder bug" in errors[0].getMessage()


async def test_repeated_runtime_errors_are_logged_once_and_counted_every_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Test that repeated unexpected errors are logged once and counted every time."""
    engine, _, transport, clock = scripted_engine()
    await engine.poll_due()
    transport.raise_next = [RuntimeError(f"bug {i}") for i in range(5)]
    results: list[CycleResult] = await run_until(engine, clock, 200)
    assert results[0].internal_error == "RuntimeError: bug 4"  # each block went on
    assert engine.snapshot().totals.internal_errors == 5
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
    # and polling went on afterwards
    assert results[-1].internal_error is None
    assert results[-1].registers_read > 0


async def test_cancelled_cycle_leaves_its_registers_due() -> None:
    """Test that a cancelled cycle leaves its registers due."""
    engine, _, transport, clock = scripted_engine()
    transport.block = asyncio.Event()
    task = asyncio.ensure_future(engine.poll_due())
    await asyncio.sleep(0)
    assert transport.attempts == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # nothing was lost: every register is still due and the next cycle reads them all
    assert engine.next_due() == clock.t
    transport.block = None
    result = await engine.poll_due()
    assert set(result.changed) == set(engine.uids)


# -- item 10: a backward wall-clock step does not stop polling ---------------------


async def drive_like_the_coordinator(
    engine: PollEngine, wall: VirtualClock, mono: VirtualClock, seconds: float
) -> list[CycleResult]:
    """Sleep until next_due() - wall() (on the monotonic timer), then poll at wall()."""
    end = mono.t + seconds
    results = []
    while True:
        delay = max(engine.next_due() - wall(), 0.0)
        if mono.t + delay > end:
            wall.t += end - mono.t
            mono.t = end
            return results
        wall.t += delay
        mono.t += delay
        results.append(await engine.poll_due(wall()))


async def test_backward_wall_clock_step_does_not_stop_polling() -> None:
    """Test that the wall clock stepping back does not stop polling."""
    wall, mono = VirtualClock(1_700_000_000.0), VirtualClock(5_000.0)
    engine, _, _, _ = scripted_engine(monotonic=mono, wall=wall)
    await drive_like_the_coordinator(engine, wall, mono, 1800)
    before = reads(engine)
    wall.t -= 3600  # NTP (or a user) sets the clock back an hour
    await drive_like_the_coordinator(engine, wall, mono, 600)
    after = reads(engine)
    # the same device and history without the step: exactly the same reads
    ref_wall, ref_mono = VirtualClock(1_700_000_000.0), VirtualClock(5_000.0)
    reference, _, _, _ = scripted_engine(monotonic=ref_mono, wall=ref_wall)
    await drive_like_the_coordinator(reference, ref_wall, ref_mono, 2400)
    assert after == reads(reference)
    # (the wall-clock engine read nothing in the hour after such a step)
    assert all(after[uid] > before[uid] for uid in before)
    # times shown to users are wall times (after the step)
    last = engine.snapshot()
    newest = max(r.last_read or 0 for r in last.registers.values())
    assert newest == pytest.approx(wall.t, abs=UNIT_PROBE_MAX * 10)
    assert last.wall_at == wall.t
    assert last.to_wall(last.at) == wall.t


async def test_forward_wall_clock_step_does_not_make_everything_due() -> None:
    """Test that the wall clock jumping forward does not make everything due."""
    wall, mono = VirtualClock(1_700_000_000.0), VirtualClock(5_000.0)
    engine, _, transport, _ = scripted_engine(monotonic=mono, wall=wall)
    await drive_like_the_coordinator(engine, wall, mono, 1800)
    transport.reset_counters()
    await drive_like_the_coordinator(engine, wall, mono, 600)
    normal = transport.counters.requests
    wall.t += 3600
    transport.reset_counters()
    await drive_like_the_coordinator(engine, wall, mono, 600)
    assert transport.counters.requests <= normal * 1.5 + 2


# -- item 19: a unit that goes silent is probed, and back at once -------------------


@pytest.mark.parametrize("fault", [ModbusTimeout, ModbusConnectionError])
async def test_outage_is_probed_on_a_bounded_backoff_and_recovers_within_one_step(
    fault: type[ModbusError],
) -> None:
    """Test that an outage is probed on a bounded backoff and polling recovers at once."""
    engine, _, transport, clock = scripted_engine()
    await run_until(engine, clock, 3600)
    learned = {uid: r.interval for uid, r in engine.snapshot().registers.items()}
    outage_start = clock.t
    transport.fault = fault
    attempts = transport.attempts
    results = await run_until(engine, clock, outage_start + 600)
    # one cycle sees the failure and the unit goes down, once
    downs = [r for r in results if r.units_down]
    assert [r.units_down for r in downs] == [frozenset({1})]
    assert not any(r.units_back for r in results)
    snapshot = engine.snapshot()
    status = snapshot.units_down[1]
    assert status.down_since == downs[0].started
    assert status.probe_backoff == UNIT_PROBE_MAX
    assert status.next_probe > clock.t - UNIT_PROBE_MAX
    assert snapshot.as_dict()["units_down"]["1"]["probes"] == status.probes
    # requests in the outage: the failing cycle's one, then probes at 5, 10, 20, then
    # every 30 s (the documented backoff), never one per register
    sent = transport.attempts - attempts
    probes = 3 + math.ceil((600 - (UNIT_PROBE_FIRST + 10 + 20)) / UNIT_PROBE_MAX)
    assert sent <= 1 + probes
    assert status.probes == sent - 1
    # entities can tell: every register's failure streak grew
    assert all(r.failure_streak >= 3 for r in snapshot.registers.values())
    # the device returns: fresh values within one probe step, all in one cycle
    back_at = clock.t
    transport.fault = None
    while not (
        result := await engine.poll_due(max(clock.t, engine.next_due()))
    ).units_back:
        clock.t = max(clock.t, engine.next_due())
        assert clock.t <= back_at + UNIT_PROBE_MAX
    assert result.units_back == {1}
    fresh = engine.snapshot()
    assert not fresh.units_down
    for uid, reg in fresh.registers.items():
        assert reg.last_read is not None
        assert back_at <= reg.last_read <= back_at + UNIT_PROBE_MAX, uid
        assert reg.failure_streak == 0
    # learned intervals intact: the outage and the gap taught the models nothing
    assert {uid: r.interval for uid, r in fresh.registers.items()} == pytest.approx(
        learned
    )
    later = await run_until(engine, clock, clock.t + 120)
    assert not any(r.units_down or r.units_back for r in later)


async def test_unit_that_answers_with_an_exception_is_not_down() -> None:
    """Test that a unit answering with an exception is not taken for down."""
    clock = VirtualClock()
    device = SimulatedDevice(seed=42, clock=clock, start=0.0)
    transport = ScriptedTransport(device)
    engine = PollEngine(device.registers, transport, clock)
    await engine.poll_due()
    assert not engine.snapshot().units_down
    # illegal-address answers blame addresses, not the unit
    assert engine.snapshot().holes


async def test_request_read_on_a_down_unit_probes_it_now() -> None:
    """Test that request_read on a down unit probes it now."""
    engine, _, transport, clock = scripted_engine()
    await run_until(engine, clock, 600)
    transport.fault = ModbusTimeout
    await run_until(engine, clock, 700)
    status = engine.snapshot().units_down[1]
    assert status.next_probe > clock.t
    transport.fault = None
    engine.request_read([engine.uids[0]])
    assert engine.next_due() == clock.t
    result = await engine.poll_due()
    assert result.units_back == {1}
    assert all(r.last_read == clock.t for r in engine.snapshot().registers.values())


async def test_a_connection_blip_is_not_logged_as_a_silent_unit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Test that a connection blip is not logged as a silent unit.

    The unit is parked while the connection fails (as before), but "not answering"
    is logged only once a probe meets a timeout on a working connection, and the
    return only when the silence was logged. A connection blip logs nothing per unit.
    """
    caplog.set_level(logging.DEBUG, logger="adaptive_modbus_engine")
    engine, _, transport, clock = scripted_engine()
    await run_until(engine, clock, 600)

    def unit_lines(text: str) -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.levelno >= logging.WARNING and text in r.getMessage()
        ]

    transport.fault = ModbusConnectionError
    await run_until(engine, clock, 700)
    assert engine.snapshot().units_down  # parked: probes, not per-register retries
    transport.fault = None
    await run_until(engine, clock, 800)
    assert not engine.snapshot().units_down
    assert unit_lines("not answering") == []
    assert unit_lines("answers again") == []

    transport.fault = ModbusConnectionError
    await run_until(engine, clock, 900)
    transport.fault = ModbusTimeout  # connected again, but the unit is silent
    await run_until(engine, clock, 1000)
    transport.fault = ModbusConnectionError  # and the link drops once more
    await run_until(engine, clock, 1100)
    transport.fault = None
    await run_until(engine, clock, 1200)
    assert not engine.snapshot().units_down
    silent = unit_lines("not answering")
    assert len(silent) == 1, silent
    assert "(timeout)" in silent[0]
    assert len(unit_lines("answers again")) == 1
