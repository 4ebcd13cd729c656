"""Engine overhead: CPU per poll cycle and memory per register at 100 to 10,000 registers.

The engine polls a cheap synthetic device through an instant in-process transport
(no bus time). CPU is ``time.process_time`` around ``poll_due`` minus the time spent
inside the transport and device, so what remains is the engine's own work:
scheduler, planner, decoding and interval models. Memory is the ``tracemalloc``
growth from building the engine and running its first cycle, per register.

Learned state: every register's time-of-week profile is filled (all 168 hours seen in
two weeks plus the visit in progress) and its interval model has a full noise window,
the worst case for size. Reported: JSON bytes per register, compact and as Home
Assistant's Store writes it (indent 2), and the CPU time of ``export_state`` plus
serialisation of the whole engine (what one save costs).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
import gc
import json
import math
import random
import statistics
import time
import tracemalloc
from typing import Any

from adaptive_modbus_engine.daily import MAX_ONSETS
from adaptive_modbus_engine.registers import DataType, RegisterSpec, Table
from adaptive_modbus_engine.replay import VirtualClock
from adaptive_modbus_engine.scheduler import EngineConfig, PollEngine

PER_UNIT = 100
_RATES = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.002, 0.002, 0.05, 0.5)


class CheapDevice:
    """Words derived from the time, in a realistic mix of rates.

    60 % constant, 20 % slow, 10 % medium and 10 % fast registers (by address), so a
    steady-state cycle reads a fraction.
    """

    def __init__(self, clock: VirtualClock) -> None:
        """Derive the words from the time on ``clock``."""
        self._clock = clock

    def words(self, address: int, count: int) -> list[int]:
        """``count`` words from ``address`` at the current time."""
        t = self._clock.now()
        out = []
        for a in range(address, address + count):
            rate = _RATES[a % 10]  # units per second
            out.append(int(1000 + rate * (t % 100_000)) & 0xFFFF)
        return out


class TimedTransport:
    """An instant transport that measures the CPU time spent inside it."""

    def __init__(self, device: CheapDevice) -> None:
        """Serve ``device``, counting requests and the CPU spent inside."""
        self.device = device
        self.inside = 0.0
        self.requests = 0

    @property
    def connected(self) -> bool:
        """Always connected."""
        return True

    async def connect(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to close."""

    async def end_cycle(self) -> None:
        """Nothing to do at the end of a cycle."""

    async def read(
        self, unit_id: int, table: Table, address: int, count: int
    ) -> list[int]:
        """Instant read."""
        t0 = time.process_time()
        words = self.device.words(address, count)
        self.requests += 1
        self.inside += time.process_time() - t0
        return words

    async def write_registers(self, unit_id: int, address: int, values: Any) -> None:
        """Do nothing: the overhead runs never write."""

    async def write_coil(self, unit_id: int, address: int, value: bool) -> None:
        """Do nothing: the overhead runs never write."""


def make_specs(count: int) -> list[RegisterSpec]:
    """``count`` uint16 registers, 100 per unit, with a few gaps (every 10th address)."""
    specs = []
    for i in range(count):
        unit, slot = divmod(i, PER_UNIT)
        address = slot + slot // 9  # a one-register gap after every 9
        specs.append(
            RegisterSpec(
                key=f"r{i}",
                unit_id=unit + 1,
                table=Table.INPUT,
                address=address,
                data_type=DataType.UINT16,
                tolerance=2.0,
            )
        )
    return specs


class SchedulerTimer:
    """CPU spent in the engine's due-set selection and planning (scheduler + planner).

    Wraps the engine instance's ``_schedule.pop_due`` and ``_planning.plan_with_early``
    (the plan plus the search for nearly due neighbours; private, so this is a
    measurement probe: when the engine renames them the split reads NaN and the
    totals still stand). Counts the registers due per cycle too.
    """

    def __init__(self, engine: PollEngine) -> None:
        """Wrap the engine's due-set selection and planning with timers."""
        self.spent = 0.0
        self.due = 0
        schedule: Any = getattr(engine, "_schedule", None)
        planning: Any = getattr(engine, "_planning", None)
        self.ok = hasattr(schedule, "pop_due") and hasattr(planning, "plan_with_early")
        if not self.ok:
            return
        pop, plan = schedule.pop_due, planning.plan_with_early

        def timed_pop(*args: Any) -> Any:
            t0 = time.process_time()
            due = pop(*args)
            self.spent += time.process_time() - t0
            self.due += len(due)
            return due

        def timed_plan(*args: Any) -> Any:
            t0 = time.process_time()
            blocks = plan(*args)
            self.spent += time.process_time() - t0
            return blocks

        schedule.pop_due = timed_pop
        planning.plan_with_early = timed_plan


@dataclass(frozen=True)
class OverheadResult:
    """Engine cost at one size."""

    registers: int
    full_cycle_ms: float  # every register due (first cycles / fixed mode), median
    full_per_register_us: float
    adaptive_cycle_ms: float  # steady-state adaptive cycle, median
    adaptive_per_read_us: float  # engine CPU per register read in steady state
    adaptive_cycles: int
    adaptive_due_per_cycle: float  # registers due per steady-state cycle (mean)
    # scheduler + planner part of a steady-state cycle, median
    adaptive_sched_plan_ms: float
    full_sched_plan_ms: float  # scheduler + planner part of a full cycle, median
    memory_per_register_bytes: float
    state_bytes_per_register: float  # learned state as compact JSON, full patterns
    state_store_bytes_per_register: float  # the same as HA's Store writes it (indent 2)
    state_save_ms: float  # export_state + json.dumps of the whole engine, CPU


def fill_learned_state(engine: PollEngine, seed: int = 7) -> None:
    """Give every register full time-of-week and daily patterns and a full noise window.

    A measurement probe on the engine's private registers (as :class:`SchedulerTimer`):
    two weeks of hourly activity plus the hour in progress, every onset the daily
    profile keeps, and 40 noisy reads.
    """
    rng = random.Random(seed)
    start = 1_795_000_000.0 - 1_795_000_000.0 % (7 * 86400) + 4 * 86400  # a Monday
    # a measurement probe (as SchedulerTimer): no public API fills learned state
    for reg in engine._registry.regs.values():  # noqa: SLF001
        value = 1000.0
        for k in range(40):
            value += rng.gauss(0.0, 3.0)
            reg.model.observe(start - (40 - k) * 30.0, value, True)
        for hour in range(2 * 168 + 1):
            reg.profile.record(start + hour * 3600.0, rng.expovariate(1.0))
        for k in range(MAX_ONSETS):  # the daily profile's onsets, all of them
            tod = k * 86400.0 / MAX_ONSETS + rng.uniform(0.0, 3600.0)
            reg.profile.daily.learn_onset(tod, rng.uniform(0.0, 900.0), 20_000 + k)


def measure_state(
    engine: PollEngine, count: int, repeats: int = 3
) -> tuple[float, float, float]:
    """(compact bytes per register, Store bytes per register, save ms) of ``engine``."""
    fill_learned_state(engine)
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        text = json.dumps(engine.export_state(), separators=(",", ":"))
        times.append(time.process_time() - t0)
    store = json.dumps(engine.export_state(), indent=2)
    return len(text) / count, len(store) / count, statistics.median(times) * 1e3


async def _measure(
    count: int, full_cycles: int, steady_seconds: float, max_cycles: int
) -> OverheadResult:
    specs = make_specs(count)
    clock = VirtualClock(1_795_000_000.0)
    transport = TimedTransport(CheapDevice(clock))

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    engine = PollEngine(specs, transport, clock.now, EngineConfig())
    await engine.poll_due(clock.now())
    memory = (tracemalloc.get_traced_memory()[0] - before) / count
    tracemalloc.stop()

    fixed = PollEngine(
        specs, transport, clock.now, EngineConfig(adaptive=False, fixed_interval=10)
    )
    fixed_timer = SchedulerTimer(fixed)
    full: list[float] = []
    full_split: list[float] = []
    for _ in range(full_cycles):
        clock.advance_to(fixed.next_due())
        inside = transport.inside
        split = fixed_timer.spent
        t0 = time.process_time()
        await fixed.poll_due(clock.now())
        full.append(time.process_time() - t0 - (transport.inside - inside))
        full_split.append(fixed_timer.spent - split)

    timer = SchedulerTimer(engine)
    cycles: list[float] = []
    splits: list[float] = []
    due_total = 0
    reads = 0
    engine_cpu = 0.0
    end = clock.now() + steady_seconds
    warm = clock.now() + steady_seconds / 3
    while (due := engine.next_due()) < end and len(cycles) < max_cycles:
        clock.advance_to(due)
        inside = transport.inside
        split, due_before = timer.spent, timer.due
        t0 = time.process_time()
        result = await engine.poll_due(clock.now())
        spent = time.process_time() - t0 - (transport.inside - inside)
        if due >= warm:
            cycles.append(spent)
            splits.append(timer.spent - split)
            due_total += timer.due - due_before
            reads += result.registers_read
            engine_cpu += spent
    full_median = statistics.median(full)
    state_bytes, store_bytes, save_ms = measure_state(
        PollEngine(specs, transport, clock.now, EngineConfig()), count
    )
    return OverheadResult(
        registers=count,
        full_cycle_ms=full_median * 1e3,
        full_per_register_us=full_median / count * 1e6,
        adaptive_cycle_ms=statistics.median(cycles) * 1e3 if cycles else math.nan,
        adaptive_per_read_us=engine_cpu / max(reads, 1) * 1e6,
        adaptive_cycles=len(cycles),
        adaptive_due_per_cycle=due_total / max(len(cycles), 1),
        adaptive_sched_plan_ms=_median_ms(splits) if timer.ok else math.nan,
        full_sched_plan_ms=_median_ms(full_split) if fixed_timer.ok else math.nan,
        memory_per_register_bytes=memory,
        state_bytes_per_register=state_bytes,
        state_store_bytes_per_register=store_bytes,
        state_save_ms=save_ms,
    )


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1e3 if values else math.nan


def measure(
    sizes: tuple[int, ...] = (100, 1000, 10_000), *, quick: bool = False
) -> list[dict[str, Any]]:
    """Overhead at each size (``quick``: fewer cycles, for the smoke test)."""
    results = []
    for count in sizes:
        full_cycles = 3 if quick else (11 if count <= 1000 else 5)
        steady = 120.0 if quick else 1200.0
        max_cycles = 20 if quick else (200 if count <= 1000 else 60)
        result = asyncio.run(_measure(count, full_cycles, steady, max_cycles))
        results.append(asdict(result))
    return results


def growth(
    results: list[dict[str, Any]], small: int = 1000, large: int = 10_000
) -> dict[str, Any]:
    """Per-register cost ratio large/small against the n log n bound log(large)/log(small)."""
    by_size = {r["registers"]: r for r in results}
    if small not in by_size or large not in by_size:
        return {}
    bound = math.log(large) / math.log(small)
    full = (
        by_size[large]["full_per_register_us"] / by_size[small]["full_per_register_us"]
    )
    steady = (
        by_size[large]["adaptive_per_read_us"] / by_size[small]["adaptive_per_read_us"]
    )
    split = (by_size[large]["full_sched_plan_ms"] / large) / (
        by_size[small]["full_sched_plan_ms"] / small
    )
    return {
        "bound": bound,
        "full_cycle_ratio": full,
        "sched_plan_ratio": split,
        "adaptive_ratio": steady,
    }
