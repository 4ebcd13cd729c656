"""PollEngine under faults.

Quarantine re-probes without a verdict, transient device failures, learned block
limits, resets, writes whose read-back fails.

Scripted transports on a virtual clock (the simulated demo device behind a switch
that injects the fault), and one real pymodbus server on loopback for a device that
stays silent on large reads.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence

import pytest

from adaptive_modbus_engine import scheduler
from adaptive_modbus_engine.errors import (
    DeviceFailure,
    ErrorKind,
    ModbusConnectionError,
    ModbusError,
    ModbusTimeout,
    WriteUnconfirmed,
)
from adaptive_modbus_engine.registers import DataType, RegisterSpec, Table
from adaptive_modbus_engine.replay import VirtualClock
from adaptive_modbus_engine.scheduler import (
    HOLE_VERIFY_FAILURE,
    HOLE_VERIFY_FIRST,
    LIMIT_RETRY_FIRST,
    QUARANTINE_FIRST,
    EngineConfig,
    PollEngine,
)
from adaptive_modbus_engine.simulator.device import SimulatedDevice
from adaptive_modbus_engine.simulator.inprocess import InProcessTransport
from adaptive_modbus_engine.simulator.server import SimulatorServer
from adaptive_modbus_engine.transport import (
    PymodbusTransport,
    TransportConfig,
    classify_exception_code,
)

LOOPBACK = "127.0.0.1"
REQUEST_TIME = 0.05  # seconds of virtual bus time per answered request
TIMEOUT = 3.0


def _busy(unit_id: int, address: int) -> ModbusError:
    return classify_exception_code(6, unit_id, address)


FAULTS: dict[str, Callable[[int, int], ModbusError]] = {
    "timeout": lambda unit, address: ModbusTimeout(
        "no answer", unit_id=unit, address=address
    ),
    "connection": lambda unit, address: ModbusConnectionError("refused", unit_id=unit),
    "busy": _busy,
}


class FaultyTransport(InProcessTransport):
    """The demo device behind a switch: ``fault`` makes every request fail that way.

    ``max_read`` refuses larger reads (``refuse``: "code3" answers exception 3 as the
    real transport classifies it, "silent" never answers). ``fail_once`` answers
    exception 4 once to the next read touching one of those input addresses.
    """

    def __init__(self, device: SimulatedDevice, clock: VirtualClock) -> None:
        """Serve ``device`` with every request taking REQUEST_TIME on ``clock``."""
        super().__init__(
            device,
            latency=lambda kind, unit, count: REQUEST_TIME,
            clock_advance=clock.advance,
            timeout=TIMEOUT,
        )
        self.clock = clock
        self.fault: str | None = None
        self.reads_fail = False  # only reads fail (writes go through)
        self.max_read: int | None = None
        self.refuse = "code3"
        self.fail_once: set[int] = set()
        self.log: list[tuple[Table, int, int, str]] = []

    def injected(
        self, unit_id: int, table: Table, address: int, count: int
    ) -> ModbusError | None:
        """Return the fault the test set up for this read, if any."""
        if self.fault is not None:
            return FAULTS[self.fault](unit_id, address)
        if self.max_read is not None and count > self.max_read and not table.is_bit:
            if self.refuse == "silent":
                return ModbusTimeout("no answer", unit_id=unit_id, address=address)
            return classify_exception_code(3, unit_id, address)
        hit = {a for a in self.fail_once if address <= a < address + count}
        if table is Table.INPUT and hit:
            self.fail_once -= hit
            return DeviceFailure("device failure (code 4)", unit_id=unit_id, code=4)
        return None

    async def read(
        self, unit_id: int, table: Table, address: int, count: int
    ) -> list[int]:
        """Read, unless an injected fault or ``reads_fail`` says otherwise."""
        error = self.injected(unit_id, table, address, count)
        if error is None and self.reads_fail:
            error = ModbusTimeout("no answer", unit_id=unit_id, address=address)
        if error is not None:
            self.counters.requests += 1
            self.counters.errors += 1
            self.clock.advance(
                TIMEOUT if error.kind is ErrorKind.TIMEOUT else REQUEST_TIME
            )
            self.log.append((table, address, count, str(error.kind)))
            raise error
        try:
            values = await super().read(unit_id, table, address, count)
        except ModbusError as err:
            self.log.append((table, address, count, str(err.kind)))
            raise
        self.log.append((table, address, count, "ok"))
        return values


def ghost() -> RegisterSpec:
    """Return a register on the demo's illegal input address 10 (quarantined at once)."""
    return RegisterSpec("ghost", 1, Table.INPUT, 10, DataType.UINT16)


def make(
    registers: Sequence[RegisterSpec] | None = None, config: EngineConfig | None = None
) -> tuple[PollEngine, SimulatedDevice, FaultyTransport, VirtualClock]:
    """Return an engine on the fault-injecting demo transport, with its parts."""
    clock = VirtualClock()
    device = SimulatedDevice(clock=clock.now, start=0.0)
    transport = FaultyTransport(device, clock)
    specs = device.registers if registers is None else registers
    engine = PollEngine(specs, transport, clock.now, config)
    return engine, device, transport, clock


async def drive(engine: PollEngine, clock: VirtualClock, until: float) -> list[float]:
    """Run cycles as the coordinator does; return the wake-up times.

    Wake at the next due time, at least 0.1 s apart, so a schedule stuck in the
    past still ends. More than 3,000 wake-ups in one call ends it (no test here
    needs that many).
    """
    wakeups: list[float] = []
    while (due := engine.next_due()) <= until:
        clock.advance_to(max(due, clock.now() + 0.1) if wakeups else due)
        wakeups.append(clock.now())
        await engine.poll_due()
        if len(wakeups) > 3000:  # a storm: fail fast instead of running it out
            break
    clock.advance_to(until)
    return wakeups


def everything_due(engine: PollEngine) -> None:
    """Make every register due now (disable and enable each)."""
    for uid in engine.uids:
        engine.set_enabled(uid, False)
        engine.set_enabled(uid, True)


def live_entries(engine: PollEngine) -> Counter[str]:
    """Count the live heap entries of each register (the invariant is at most one).

    The invariant is the schedule's own: no public API shows the heap.
    """
    heap = engine._heap  # noqa: SLF001
    return Counter(
        uid
        for entry in heap
        if engine._is_live(entry)  # noqa: SLF001
        for uid in [entry[2]]
    )


# -- item: quarantine re-probes without a verdict -----------------------------------------


@pytest.mark.parametrize("fault", ["timeout", "connection", "busy"])
async def test_offline_device_with_a_quarantined_register_does_not_storm(
    fault: str,
) -> None:
    """Test that an offline device with a quarantined register is not flooded with probes."""
    engine, _device, transport, clock = make([*SimulatedDevice().registers, ghost()])
    first = await engine.poll_due()
    assert "1.ghost" in first.failed
    assert engine.snapshot().registers["1.ghost"].quarantined_until == pytest.approx(
        QUARANTINE_FIRST, abs=1
    )
    clock.advance_to(10.0)
    transport.fault = fault  # the device (or its gateway) goes away for > 5 minutes
    await drive(engine, clock, 10 + 400)  # the quarantine's probe came due at 300 s
    transport.reset_counters()
    start = clock.now()
    wakeups = await drive(engine, clock, start + 60)
    # the registers retry with backoff (the demo's alarms at least every 10 s): a few
    # cycles a minute, never the 0.1 s storm with thousands of requests
    assert len(wakeups) <= 15, wakeups
    assert transport.counters.requests <= 60, transport.counters
    assert max(live_entries(engine).values(), default=0) <= 1
    assert engine.next_due() > clock.now()
    snap = engine.snapshot().registers["1.ghost"]
    # still quarantined: no verdict is no release, and no doubling either
    assert snap.quarantined_until is not None
    assert (
        engine.export_state()["registers"]["1.ghost"]["quarantine_backoff"]
        == QUARANTINE_FIRST
    )
    # the device comes back: everything is read again, the ghost is refused again on
    # its next probe and only then does its quarantine double
    transport.fault = None
    await drive(engine, clock, clock.now() + 400)
    registers = engine.snapshot().registers
    assert all(
        r.last_read is not None and r.last_read > start + 60
        for uid, r in registers.items()
        if uid != "1.ghost"
    )
    assert registers["1.ghost"].reads == 0
    assert engine.export_state()["registers"]["1.ghost"]["quarantine_backoff"] == (
        2 * QUARANTINE_FIRST
    )
    assert max(live_entries(engine).values(), default=0) <= 1


@pytest.mark.parametrize("fault", ["timeout", "connection", "busy"])
async def test_reprobe_without_verdict_keeps_quarantine_and_retries_later(
    fault: str,
) -> None:
    """Test that a re-probe without an answer keeps the quarantine and tries later."""
    engine, _, transport, clock = make([*SimulatedDevice().registers, ghost()])
    await engine.poll_due()
    probe_at = engine.snapshot().registers["1.ghost"].quarantined_until
    assert probe_at is not None
    # only the ghost's own probe is in that cycle
    for uid in engine.uids:
        if uid != "1.ghost":
            engine.set_enabled(uid, False)
    clock.advance_to(probe_at)
    transport.fault = fault
    result = await engine.poll_due()
    assert result.failed == {"1.ghost"} and result.requests == 1
    snap = engine.snapshot().registers["1.ghost"]
    assert snap.quarantined_until is not None and snap.quarantined_until > clock.now()
    assert snap.next_due is not None and snap.next_due > clock.now()
    assert engine.next_due() > clock.now()
    assert live_entries(engine) == Counter({"1.ghost": 1})
    # a probe that does get an answer releases it
    transport.fault = None
    device_with_ghost_fixed = transport.devices[1]
    original = device_with_ghost_fixed.read

    def read(unit_id: int, table: Table, address: int, count: int) -> list[int]:
        if (table, address, count) == (Table.INPUT, 10, 1):
            return [7]
        return original(unit_id, table, address, count)

    device_with_ghost_fixed.read = read  # type: ignore[method-assign]
    await drive(engine, clock, clock.now() + 60)
    assert engine.value("1.ghost") == 7
    assert engine.snapshot().registers["1.ghost"].quarantined_until is None


# -- item: a transient exception 4 is not learned for good --------------------------------


async def test_transient_device_failure_hole_expires() -> None:
    """Test that a hole learned from a transient device failure expires."""
    engine, device, transport, clock = make()
    await engine.poll_due()
    assert engine.snapshot().holes == {"1.input": (10,)}
    await drive(engine, clock, 200)
    baseline = engine.snapshot().clusters
    # one exception 4 on input 3 (a register gap of the first input block): bisected,
    # and the gap the halves did not read is taken for a hole
    spans = [c for c in baseline if c.table is Table.INPUT]
    assert spans
    target = next(a for a in range(spans[0].address, spans[0].address + spans[0].count)
                  if a not in {s.address for s in device.registers if s.table is Table.INPUT}
                  and a != 10)  # fmt: skip
    transport.fail_once = {target}
    for uid in engine.uids:  # everything due now, so the whole block is read
        engine.set_enabled(uid, False)
        engine.set_enabled(uid, True)
    result = await engine.poll_due()
    assert any(e.kind is ErrorKind.DEVICE_FAILURE for e in result.errors)
    holes = set(engine.snapshot().holes["1.input"]) - {10}
    assert target in holes
    blocks_with_hole = len(engine.snapshot().clusters)
    assert blocks_with_hole > len(baseline)  # the plan was split by the fault
    # the hole is read alone after a short backoff; the device answers: it is forgotten
    await drive(engine, clock, clock.now() + HOLE_VERIFY_FAILURE + 60)
    assert engine.snapshot().holes == {"1.input": (10,)}
    assert len(engine.snapshot().clusters) == len(baseline)
    assert any(
        (table, address, count, outcome) == (Table.INPUT, min(holes), len(holes), "ok")
        for table, address, count, outcome in transport.log
    )


async def test_real_illegal_address_stays_learned_and_is_checked_rarely() -> None:
    """Test that a real illegal address stays a hole and is checked rarely."""
    near = [RegisterSpec(f"n{a}", 1, Table.INPUT, a, DataType.UINT16) for a in (9, 11)]
    engine, _, transport, clock = make(near)
    await engine.poll_due()
    assert engine.snapshot().holes == {"1.input": (10,)}
    await drive(engine, clock, 3 * 24 * 3600)
    assert engine.snapshot().holes == {"1.input": (10,)}
    checks = [t for t in transport.log if t[:3] == (Table.INPUT, 10, 1)]
    # checked at 6 h, then 12 h later, then daily: a handful in three days
    assert 2 <= len(checks) <= 5, checks
    state = engine.export_state()
    (hole,) = state["holes"]
    assert hole["addresses"] == [10] and hole["kind"] == "illegal_address"
    assert hole["backoff"] > HOLE_VERIFY_FIRST


async def test_holes_without_checks_from_older_state_are_checked_soon() -> None:
    """Test that holes stored without a check time are checked soon."""
    engine, _, _transport, clock = make()
    old = {
        "version": 1,
        "holes": [{"unit_id": 1, "table": "input", "addresses": [3, 4, 10]}],
    }
    assert engine.import_state(old).warnings == []
    assert engine.snapshot().holes == {"1.input": (3, 4, 10)}
    await drive(engine, clock, HOLE_VERIFY_FAILURE + 60)
    assert engine.snapshot().holes == {"1.input": (10,)}  # 3-4 answered, 10 did not


# -- reset_learning ---------------------------------------------------------------------


async def test_reset_learning_scopes() -> None:
    """Test that reset_learning resets only what its scope names."""
    bad = ghost()
    other_unit = SimulatedDevice(unit_id=2).registers
    clock = VirtualClock()
    devices = [
        SimulatedDevice(clock=clock.now, start=0.0),
        SimulatedDevice(clock=clock.now, unit_id=2),
    ]
    transport = InProcessTransport(devices)
    registers = [*devices[0].registers, bad, *other_unit]
    engine = PollEngine(registers, transport, clock.now)
    await engine.poll_due()
    await drive(engine, clock, 3000)
    snap = engine.snapshot()
    assert snap.holes == {"1.input": (10,), "2.input": (10,)}
    assert snap.registers["1.room_setpoint"].interval > 5
    assert snap.registers["1.ghost"].quarantined_until is not None
    # learned block limits on both units, through the public state API
    state = engine.export_state()
    state["unit_limits"] = [
        {"unit_id": unit, "max_registers": size, "retry_at": clock.now() + 100}
        for unit, size in ((1, 20), (2, 30))
    ]
    assert not engine.import_state(state).warnings
    assert len(engine.export_state()["unit_limits"]) == 2

    # one register: its interval, quarantine and the holes in its span, nothing else
    engine.reset_learning(uid="1.room_setpoint")
    snap = engine.snapshot()
    assert snap.registers["1.room_setpoint"].interval == 5
    assert snap.registers["1.ghost"].quarantined_until is not None
    assert snap.holes == {"1.input": (10,), "2.input": (10,)}
    engine.reset_learning(uid="1.ghost")  # it sits on unit 1's hole
    snap = engine.snapshot()
    assert snap.registers["1.ghost"].quarantined_until is None
    assert snap.registers["1.ghost"].next_due == clock.now()
    assert snap.holes == {"2.input": (10,)}
    assert snap.registers["1.power_limit"].interval > 5
    setpoint_2 = snap.registers["2.room_setpoint"].interval
    with pytest.raises(KeyError):
        engine.reset_learning(uid="1.nope")
    with pytest.raises(ValueError, match="unit 2"):
        engine.reset_learning(unit_id=2, uid="1.ghost")

    # one unit: its registers, holes and limit; unit 2 keeps everything
    engine.reset_learning(unit_id=1)
    snap = engine.snapshot()
    assert snap.holes == {"2.input": (10,)}
    assert snap.registers["1.power_limit"].interval == 5
    assert snap.registers["1.power_limit"].reason == "initial"
    assert snap.registers["2.room_setpoint"].interval == setpoint_2
    state = engine.export_state()
    assert [item["unit_id"] for item in state["unit_limits"]] == [2]
    assert state["registers"]["1.room_setpoint"]["profile"] == (
        scheduler.ActivityProfile().to_dict()
    )
    assert max(live_entries(engine).values(), default=0) <= 1

    # the whole engine
    engine.reset_learning()
    snap = engine.snapshot()
    assert snap.holes == {}
    assert snap.registers["2.room_setpoint"].interval == 5
    assert engine.export_state()["unit_limits"] == []
    assert max(live_entries(engine).values(), default=0) <= 1
    # and it relearns by itself (unit 1's address 10 is the ghost's: quarantined, no hole)
    await engine.poll_due()
    snap = engine.snapshot()
    assert snap.holes == {"2.input": (10,)}
    assert snap.registers["1.ghost"].quarantined_until is not None


# -- item: learned block limits ------------------------------------------------------------


def wide_registers() -> list[RegisterSpec]:
    """60 holding registers on addresses 0-59: one 60-register block."""
    return [
        RegisterSpec(f"r{i}", 1, Table.HOLDING, i, DataType.UINT16) for i in range(60)
    ]


def small_inputs() -> list[RegisterSpec]:
    """Two input registers read in a small block of their own."""
    return [RegisterSpec(f"i{a}", 1, Table.INPUT, a, DataType.UINT16) for a in (0, 1)]


class WideDevice(SimulatedDevice):
    """The demo device with 60 plain holding registers (word i reads i)."""

    def read(self, unit_id: int, table: Table, address: int, count: int) -> list[int]:
        """Return the address as the value of every holding register."""
        self._check_unit(unit_id)
        if table is Table.HOLDING:
            return list(range(address, address + count))
        return super().read(unit_id, table, address, count)


def make_wide(
    config: EngineConfig | None = None,
) -> tuple[PollEngine, FaultyTransport, VirtualClock]:
    """Return an engine on a wide device whose largest read the test sets."""
    clock = VirtualClock()
    device = WideDevice(clock=clock.now, start=0.0)
    transport = FaultyTransport(device, clock)
    return (
        PollEngine([*wide_registers(), *small_inputs()], transport, clock.now, config),
        transport,
        clock,
    )


@pytest.mark.parametrize("refuse", ["code3", "silent"])
async def test_device_limit_is_learned_and_kept(refuse: str) -> None:
    """Test that a device's largest read is learned and kept."""
    engine, transport, clock = make_wide()
    transport.max_read = 20
    transport.refuse = refuse
    await drive(engine, clock, 120)
    limit = engine.export_state()["unit_limits"]
    assert len(limit) == 1 and limit[0]["max_registers"] <= 20
    # learned: every register is read, and no request fails any more
    transport.log.clear()
    for uid in engine.uids:
        engine.set_enabled(uid, False)
        engine.set_enabled(uid, True)
    result = await engine.poll_due()
    assert not result.failed and not result.errors
    assert all(outcome == "ok" for *_, outcome in transport.log)
    assert all(count <= 20 for table, _, count, _ in transport.log if not table.is_bit)
    assert all(engine.value(spec.uid) == spec.address for spec in wide_registers())
    # persisted: a restarted engine does not fail a block to relearn it
    fresh, fresh_transport, fresh_clock = make_wide()
    fresh_transport.max_read = 20
    fresh_transport.refuse = refuse
    fresh_clock.advance_to(clock.now())
    assert fresh.import_state(engine.export_state()).warnings == []
    result = await fresh.poll_due()
    assert not result.failed and not result.errors


async def test_refused_size_is_retried_rarely_and_grows_back() -> None:
    """Test that a refused read size is tried again rarely and grows back."""
    engine, transport, clock = make_wide()
    transport.max_read = 20
    await drive(engine, clock, 60)
    learned = engine.export_state()["unit_limits"][0]["max_registers"]
    assert learned <= 20
    transport.log.clear()
    await drive(engine, clock, LIMIT_RETRY_FIRST - 60)
    # no retry before the backoff
    assert all(outcome == "ok" for *_, outcome in transport.log)
    transport.log.clear()
    await drive(engine, clock, 3 * LIMIT_RETRY_FIRST + 60)
    refused = [t for t in transport.log if t[3] != "ok"]
    # tried larger reads twice (after 1 h, then 2 h later), not every cycle: each trial
    # is refused for the two blocks of 30 it planned
    assert 2 <= len(refused) <= 4, refused
    assert all(count > learned for _, _, count, _ in refused)
    assert engine.export_state()["unit_limits"][0]["max_registers"] == learned
    # the device's firmware is updated: larger reads answer again, and the limit grows
    transport.max_read = None
    await drive(engine, clock, clock.now() + 16 * LIMIT_RETRY_FIRST)
    state = engine.export_state()["unit_limits"]
    assert state == [] or state[0]["max_registers"] > learned


async def test_configured_unit_limit_is_honoured_from_the_first_cycle() -> None:
    """Test that a configured unit limit holds from the first cycle."""
    engine, transport, _ = make_wide(EngineConfig(unit_max_registers={1: 16}))
    transport.max_read = 16
    result = await engine.poll_due()
    assert not result.errors
    assert all(count <= 16 for table, _, count, _ in transport.log if not table.is_bit)
    with pytest.raises(ValueError, match="unit 1"):
        EngineConfig(unit_max_registers={1: 126})


async def test_code3_on_one_address_is_not_taken_for_a_limit() -> None:
    """Test that exception 3 on one address is not taken for a block limit.

    A device that answers exception 3 for an address it lacks: that address is
    quarantined, the limit is left alone.
    """
    engine, transport, _clock = make_wide()
    original = transport.injected

    def injected(
        unit_id: int, table: Table, address: int, count: int
    ) -> ModbusError | None:
        if table is Table.HOLDING and address <= 37 < address + count:
            return classify_exception_code(3, unit_id, address)
        return original(unit_id, table, address, count)

    transport.injected = injected  # type: ignore[method-assign]
    result = await engine.poll_due()
    assert result.failed == {"1.r37"}
    assert engine.export_state()["unit_limits"] == []
    assert engine.snapshot().registers["1.r37"].quarantined_until is not None
    assert all(engine.value(f"1.r{i}") == i for i in range(60) if i != 37)


class SilentAboveDevice(WideDevice):
    """Served by a real server: reads larger than 20 registers get no answer at all."""

    def read(self, unit_id: int, table: Table, address: int, count: int) -> list[int]:
        """Stay silent on register reads of more than 20."""
        if count > 20 and not table.is_bit:
            raise ModbusTimeout("too large", unit_id=unit_id)
        return super().read(unit_id, table, address, count)


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.allow_hosts([LOOPBACK])
async def test_silent_on_large_reads_real_server() -> None:
    """Test that a real server silent on large reads halves the block size."""
    device = SilentAboveDevice(start=0.0)
    server = SimulatorServer(device)
    port = await server.start()
    transport = PymodbusTransport(
        TransportConfig(
            host=LOOPBACK, port=port, timeout=0.3, retries=0, reconnect_min=0.0
        )
    )
    registers = [*wide_registers(), *small_inputs()]
    loop = asyncio.get_running_loop()
    engine = PollEngine(registers, transport, loop.time)
    try:
        # 60 -> 30 -> 15: one halving per cycle, each after a timeout
        for _ in range(4):
            everything_due(engine)
            await engine.poll_due(loop.time())
        state = engine.export_state()["unit_limits"]
        assert len(state) == 1 and state[0]["max_registers"] <= 20
        everything_due(engine)
        result = await engine.poll_due(loop.time())
        assert not result.failed and not result.errors
        assert all(engine.value(spec.uid) == spec.address for spec in wide_registers())
    finally:
        await transport.close()
        await server.stop()


# -- item: write confirmed or not ------------------------------------------------------------


async def test_write_with_failed_read_back_is_unconfirmed_not_failed() -> None:
    """Test that a write whose read-back fails is unconfirmed, not failed."""
    engine, device, transport, clock = make()
    await engine.poll_due()
    clock.advance_to(100.0)
    transport.reads_fail = True
    with pytest.raises(WriteUnconfirmed) as err:
        await engine.write("1.room_setpoint", 23.5)
    assert err.value.value == 23.5
    assert (
        err.value.read_error is not None
        and err.value.read_error.kind is ErrorKind.TIMEOUT
    )
    assert isinstance(err.value, ModbusError)
    assert device.truth("room_setpoint", clock.now()) == 23.5  # it was written
    snap = engine.snapshot()
    assert snap.totals.writes == 1
    writes = [r for r in snap.recent_requests if r.write]
    assert writes and writes[-1].ok
    # read again soon (not at its old, long interval), once
    reg = snap.registers["1.room_setpoint"]
    assert reg.next_due is not None and reg.next_due <= clock.now() + 5
    assert live_entries(engine)["1.room_setpoint"] == 1
    transport.reads_fail = False
    clock.advance_to(reg.next_due)
    await engine.poll_due()
    assert engine.value("1.room_setpoint") == 23.5
    # a write the device refuses is still a failed write, not an unconfirmed one
    with pytest.raises(ModbusError) as refused:
        await engine.write("1.room_setpoint", 99)
    assert not isinstance(refused.value, WriteUnconfirmed)
