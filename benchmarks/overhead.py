"""Engine overhead: CPU per poll cycle and memory per register at 100 to 10,000 registers.

The engine polls a cheap synthetic device through an instant in-process transport
(no bus time). Every size is timed in several rounds, the sizes taking turns, and
each CPU figure is the median over the rounds with its min-max: on a shared machine
one round can be slowed by whatever else runs, the median of five hardly. Each round
times copies of engines warmed untimed (see :class:`_Rig`), so every round and every
size times the same cycles. CPU is ``time.process_time`` around ``poll_due`` minus the time spent
inside the transport and device, so what remains is the engine's own work:
scheduler, planner, decoding and interval models. Memory is the ``tracemalloc``
growth from building the engine and running its first cycle, per register.

Growth is judged at equal data volume: one engine of 10,000 registers against ten
engines of 1,000 polled in turn (:class:`_Fleet`). Both hold the same data, so the
memory caches treat them alike, and what remains of the ratio is the engine's own
work per register (see :func:`growth`).

Learned state: every register's time-of-week profile is filled (all 168 hours seen in
two weeks plus the visit in progress) and its interval model has a full noise window,
the worst case for size. Reported: JSON bytes per register, compact and as Home
Assistant's Store writes it (indent 2), and the CPU time of ``export_state`` plus
serialisation of the whole engine (what one save costs).
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import asdict, dataclass, field
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
REPEATS = 5
"""Rounds each size is timed in; CPU figures are medians over them."""
FULL_WARM_CYCLES = 5
"""Untimed first cycles of the fixed engine (its first reads allocate; see _Rig.start)."""
FULL_CYCLES = 11
"""Full cycles timed per round, the same at every size (the same cycles, see _Rig.round)."""
FLEET = (1000, 10_000)
"""(small, large): the growth is judged on one engine of ``large`` registers against
``large // small`` engines of ``small`` polled in turn (see :class:`_Fleet`)."""
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
    """Engine cost at one size: CPU figures are medians over the rounds (see :func:`measure`)."""

    registers: int
    full_cycle_ms: float  # every register due (first cycles / fixed mode), median
    full_per_register_us: float
    adaptive_cycle_ms: float  # steady-state adaptive cycle, median
    adaptive_per_read_us: float  # engine CPU per register read in steady state
    adaptive_cycles: int  # steady-state cycles timed, all rounds
    adaptive_due_per_cycle: float  # registers due per steady-state cycle (mean)
    # scheduler + planner part of a steady-state cycle, median
    adaptive_sched_plan_ms: float
    full_sched_plan_ms: float  # scheduler + planner part of a full cycle, median
    memory_per_register_bytes: float
    state_bytes_per_register: float  # learned state as compact JSON, full patterns
    state_store_bytes_per_register: float  # the same as HA's Store writes it (indent 2)
    state_save_ms: float  # export_state + json.dumps of the whole engine, CPU
    # at the fleet's large size: full cycles of large // small engines of small
    # registers polled in turn (the same data volume), per register / summed, median;
    # None at the other sizes (results.json holds no NaN)
    fleet_per_register_us: float | None = None
    fleet_sched_plan_ms: float | None = None
    repeats: int = 1  # rounds the CPU figures are the median of
    # min and max over the rounds of each CPU figure above
    spread: dict[str, tuple[float, float]] = field(default_factory=dict)
    # each round's CPU figures (the growth check pairs rounds of two sizes)
    rounds: list[dict[str, float]] = field(default_factory=list)


ROUND_FIGURES = (
    "full_cycle_ms",
    "full_per_register_us",
    "full_sched_plan_ms",
    "adaptive_cycle_ms",
    "adaptive_per_read_us",
    "adaptive_sched_plan_ms",
    "fleet_per_register_us",
    "fleet_sched_plan_ms",
)
"""The CPU figures measured in every round, reported as median and min-max (the
fleet's only in the rounds of the fleet's large size)."""


def aggregate(rounds: list[dict[str, float]]) -> dict[str, Any]:
    """Median of each figure over the rounds, and its (min, max) under ``spread``.

    NaN figures (a probe that found nothing to wrap) are left out; a figure that is
    NaN in every round stays NaN.
    """
    out: dict[str, Any] = {"spread": {}}
    for key in ROUND_FIGURES:
        values = [r[key] for r in rounds if key in r and not math.isnan(r[key])]
        if not values:
            out[key] = math.nan
            continue
        out[key] = statistics.median(values)
        out["spread"][key] = (min(values), max(values))
    return out


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


class _Fixed:
    """A fixed-mode engine (every register due every cycle) on its own clock and device."""

    def __init__(self, specs: list[RegisterSpec]) -> None:
        """Build the engine of ``specs``; :meth:`warm` runs its first cycles."""
        self.count = len(specs)
        self.clock = VirtualClock(1_795_000_000.0)
        self.transport = TimedTransport(CheapDevice(self.clock))
        self.engine = PollEngine(
            specs,
            self.transport,
            self.clock.now,
            EngineConfig(adaptive=False, fixed_interval=10),
        )

    async def warm(self) -> None:
        """Run the first :data:`FULL_WARM_CYCLES` cycles untimed (see :meth:`_Rig.start`)."""
        for _ in range(FULL_WARM_CYCLES):
            self.clock.advance_to(self.engine.next_due())
            await self.engine.poll_due(self.clock.now())

    def copy(self) -> tuple[PollEngine, VirtualClock, TimedTransport]:
        """Copy the engine with its clock and transport: a round leaves this one as is."""
        return copy.deepcopy((self.engine, self.clock, self.transport))


class _Fleet:
    """``large // small`` fixed engines of ``small`` registers, polled in turn.

    They hold about the data one engine of ``large`` registers holds, so a cycle of
    all of them meets the same memory caches: the per-register CPU of one large
    engine over theirs is the growth of the engine's own work. Against one engine of
    ``small`` registers the ratio also counts the caches: cachegrind (full cycles
    6-15, a 32 MB last level) counted the same instructions and data references per
    register read at 1,000 and 10,000 registers (58,100 -> 57,760 and 25,630 ->
    25,550) but 2.3 -> 25.1 last-level misses, since the data a full cycle touches,
    about 8 MB at 1,000 registers, stays in the cache and 80 MB at 10,000 do not.
    """

    def __init__(self, small: int, large: int) -> None:
        """Build the engines; :meth:`warm` runs their first cycles."""
        self.engines = [_Fixed(make_specs(small)) for _ in range(large // small)]

    async def warm(self) -> None:
        """Run every engine's first cycles untimed."""
        for fixed in self.engines:
            await fixed.warm()

    async def round(self, cycles: int) -> dict[str, float]:
        """Time the next ``cycles`` cycles of copies of all engines, in turn.

        ``fleet_per_register_us`` is per register of the whole fleet,
        ``fleet_sched_plan_ms`` the scheduler + planner of one cycle of all of them.
        """
        figures = await _time_full_cycles(self.engines, cycles)
        return {
            "fleet_per_register_us": figures["full_per_register_us"],
            "fleet_sched_plan_ms": figures["full_sched_plan_ms"],
        }


async def _time_full_cycles(engines: list[_Fixed], cycles: int) -> dict[str, float]:
    """Time ``cycles`` cycles of copies of ``engines``, each cycle one of every engine in turn.

    A cycle's CPU is the sum over the engines (minus the time inside the transports);
    the figures are the median cycle, per cycle and per register of all engines.
    """
    copies = [fixed.copy() for fixed in engines]
    timers = [SchedulerTimer(engine) for engine, _, _ in copies]
    count = sum(fixed.count for fixed in engines)
    gc.collect()
    full, full_split = [], []
    for _ in range(cycles):
        spent = split = 0.0
        for (engine, clock, transport), timer in zip(copies, timers, strict=True):
            clock.advance_to(engine.next_due())
            inside, before = transport.inside, timer.spent
            t0 = time.process_time()
            await engine.poll_due(clock.now())
            spent += time.process_time() - t0 - (transport.inside - inside)
            split += timer.spent - before
        full.append(spent)
        full_split.append(split)
    full_median = statistics.median(full)
    return {
        "full_cycle_ms": full_median * 1e3,
        "full_per_register_us": full_median / count * 1e6,
        "full_sched_plan_ms": (
            _median_ms(full_split) if all(t.ok for t in timers) else math.nan
        ),
    }


class _Rig:
    """One size: a warmed adaptive and a warmed fixed engine to copy for each round."""

    def __init__(self, count: int) -> None:
        """Build both engines of ``count`` registers; :meth:`start` warms them."""
        self.count = count
        self.specs = make_specs(count)
        self.clock = VirtualClock(1_795_000_000.0)
        self.transport = TimedTransport(CheapDevice(self.clock))
        self.full = _Fixed(self.specs)
        self.memory = math.nan
        self.engine = PollEngine(
            self.specs, self.transport, self.clock.now, EngineConfig()
        )
        self.cycles = 0
        self.due_total = 0

    async def start(self, warm_seconds: float) -> None:
        """Warm both engines untimed: the fixed one's first cycles, the adaptive one.

        The adaptive engine runs ``warm_seconds`` (it learns meanwhile). The fixed
        engine runs its first :data:`FULL_WARM_CYCLES` cycles, which are not the
        steady work a full cycle times: the first read only stores the values, the
        second allocates about 5.6 KB per register (the profiles' arrays on their
        first sample) and took about 24 us per register instead of 6, the third
        0.7 KB. Timed, they fell into the first round only, where 10,000 registers
        timed 3 cycles (1,000 registers 11), and made that round's median a warm-up
        cycle: round ratios up to 2.04 where the steady cycles grow 1.0-1.3.
        The memory per register is the ``tracemalloc`` growth from building an
        engine and running its first cycle.
        """
        await self.full.warm()
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        engine = PollEngine(self.specs, self.transport, self.clock.now, EngineConfig())
        await engine.poll_due(self.clock.now())
        self.memory = (tracemalloc.get_traced_memory()[0] - before) / self.count
        tracemalloc.stop()
        self.engine = engine
        end = self.clock.now() + warm_seconds
        while (due := engine.next_due()) < end:
            self.clock.advance_to(due)
            await engine.poll_due(due)

    async def round(
        self, full_cycles: int, seconds: float, max_cycles: int
    ) -> dict[str, float]:
        """Time ``full_cycles`` fixed (all due) cycles and the steady adaptive cycles.

        The full cycles are the next ``full_cycles`` of a copy of the warmed fixed
        engine, the steady cycles those of the next ``seconds`` (at most
        ``max_cycles``) of a copy of the warmed adaptive engine: every round times
        the same work, and with the same ``full_cycles`` every size times the same
        cycles (the values, hence the models' work, follow the virtual clock). The
        fixed copy is dropped before the adaptive one is made: the steady cycles
        run beside as many live engines as when the fixed engine was not copied.
        """
        return {
            **await self._full_cycles(full_cycles),
            **await self._steady_cycles(seconds, max_cycles),
        }

    async def _full_cycles(self, cycles: int) -> dict[str, float]:
        """Time the next ``cycles`` cycles of a copy of the warmed fixed engine."""
        return await _time_full_cycles([self.full], cycles)

    async def _steady_cycles(self, seconds: float, max_cycles: int) -> dict[str, float]:
        """Time the cycles of the next ``seconds`` of a copy of the adaptive engine."""
        engine, clock, transport = copy.deepcopy(
            (self.engine, self.clock, self.transport)
        )
        timer = SchedulerTimer(engine)
        gc.collect()
        steady, splits = [], []
        reads, engine_cpu = 0, 0.0
        end = clock.now() + seconds
        while (due := engine.next_due()) < end and len(steady) < max_cycles:
            clock.advance_to(due)
            inside, split, due_before = transport.inside, timer.spent, timer.due
            t0 = time.process_time()
            result = await engine.poll_due(clock.now())
            spent = time.process_time() - t0 - (transport.inside - inside)
            steady.append(spent)
            splits.append(timer.spent - split)
            self.due_total += timer.due - due_before
            reads += result.registers_read
            engine_cpu += spent
        self.cycles += len(steady)
        return {
            "adaptive_cycle_ms": _median_ms(steady),
            "adaptive_per_read_us": engine_cpu / max(reads, 1) * 1e6,
            "adaptive_sched_plan_ms": _median_ms(splits) if timer.ok else math.nan,
        }


def _measured(value: float) -> float | None:
    """``value``, None when it is NaN (not measured at this size)."""
    return None if math.isnan(value) else value


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1e3 if values else math.nan


def measure(
    sizes: tuple[int, ...] = (100, 1000, 10_000),
    *,
    quick: bool = False,
    repeats: int | None = None,
    fleet: tuple[int, int] = FLEET,
) -> list[dict[str, Any]]:
    """Overhead at each size (``quick``: fewer cycles, for the smoke test).

    CPU time on a shared machine moves with whatever else runs, so each size is
    timed in ``repeats`` rounds (5, 3 at more than 1,000 registers to stay in
    about the time one round took before; 2 when quick), the sizes taking turns,
    and every CPU figure is the median over the rounds (with its min-max). A round
    times the next :data:`FULL_CYCLES` full cycles (3 when quick) of a copy of a
    fixed engine past its first cycles, and the steady-state cycles of the next
    800 s (80 s when quick) of a copy of an adaptive engine that learned for 400 s
    (40 s) first, so every round times the same work, and every size the same
    cycles: the growth check compares like with like. When both sizes of ``fleet``
    are measured, each round of the large size also times the full cycles of
    :class:`_Fleet` (the same data volume in engines of the small size).
    """
    rigs = [_Rig(count) for count in sizes]
    rounds: dict[int, list[dict[str, float]]] = {count: [] for count in sizes}
    wanted = {
        rig.count: repeats or (2 if quick else (REPEATS if rig.count <= 1000 else 3))
        for rig in rigs
    }
    small, large = fleet
    fleet_rig = _Fleet(small, large) if small in sizes and large in sizes else None
    full_cycles = 3 if quick else FULL_CYCLES

    async def run() -> None:
        for rig in rigs:
            await rig.start(40.0 if quick else 400.0)
        if fleet_rig is not None:
            await fleet_rig.warm()
        for index in range(max(wanted.values())):
            for rig in rigs:
                if index >= wanted[rig.count]:
                    continue
                max_cycles = 20 if quick else (200 if rig.count <= 1000 else 60)
                seconds = 80.0 if quick else 800.0
                figures = await rig.round(full_cycles, seconds, max_cycles)
                if fleet_rig is not None and rig.count == large:
                    # the same round: the fleet right after the large engine
                    figures.update(await fleet_rig.round(full_cycles))
                rounds[rig.count].append(figures)

    asyncio.run(run())
    results = []
    for rig in rigs:
        state_bytes, store_bytes, save_ms = measure_state(
            PollEngine(rig.specs, rig.transport, rig.clock.now, EngineConfig()),
            rig.count,
        )
        figures = aggregate(rounds[rig.count])
        result = OverheadResult(
            registers=rig.count,
            full_cycle_ms=figures["full_cycle_ms"],
            full_per_register_us=figures["full_per_register_us"],
            adaptive_cycle_ms=figures["adaptive_cycle_ms"],
            adaptive_per_read_us=figures["adaptive_per_read_us"],
            adaptive_cycles=rig.cycles,
            adaptive_due_per_cycle=rig.due_total / max(rig.cycles, 1),
            adaptive_sched_plan_ms=figures["adaptive_sched_plan_ms"],
            full_sched_plan_ms=figures["full_sched_plan_ms"],
            fleet_per_register_us=_measured(figures["fleet_per_register_us"]),
            fleet_sched_plan_ms=_measured(figures["fleet_sched_plan_ms"]),
            memory_per_register_bytes=rig.memory,
            state_bytes_per_register=state_bytes,
            state_store_bytes_per_register=store_bytes,
            state_save_ms=save_ms,
            repeats=len(rounds[rig.count]),
            spread=figures["spread"],
            rounds=rounds[rig.count],
        )
        results.append(asdict(result))
    return results


def growth(
    results: list[dict[str, Any]], small: int = FLEET[0], large: int = FLEET[1]
) -> dict[str, Any]:
    """Per-register cost ratio large/small against the n log n bound log(large)/log(small).

    The ratios compare the medians over the rounds; ``*_spread`` gives the min-max
    of the same ratio round by round (the sizes of one round ran side by side).

    ``work_ratio`` and ``work_sched_plan_ratio`` compare the large engine's full
    cycle (and its scheduler + planner) with the :class:`_Fleet`'s, the same data
    in engines of ``small`` registers, timed in the same round: the growth of the
    engine's own work. ``full_cycle_ratio`` and ``sched_plan_ratio`` compare it
    with one engine of ``small`` registers, whose data stays in the shared cache
    (see :class:`_Fleet`): they move with whatever else uses that cache, about
    1.45 on a quiet machine and 1.0-1.25 when other processes evict the small
    size's data too.
    """
    by_size = {r["registers"]: r for r in results}
    if small not in by_size or large not in by_size:
        return {}
    bound = math.log(large) / math.log(small)

    def ratios(key: str, a: dict[str, Any], b: dict[str, Any]) -> float:
        if key.endswith("_ms"):  # per cycle: per register first
            return (b[key] / large) / (a[key] / small)
        return float(b[key] / a[key])

    keys = {
        "full_cycle_ratio": "full_per_register_us",
        "sched_plan_ratio": "full_sched_plan_ms",
        "adaptive_ratio": "adaptive_per_read_us",
    }
    out: dict[str, Any] = {"bound": bound}
    lo, hi = by_size[small], by_size[large]
    for name, key in keys.items():
        out[name] = ratios(key, lo, hi)
        _spread(
            out,
            name,
            [
                ratios(key, a, b)
                for a, b in zip(
                    lo.get("rounds", []), hi.get("rounds", []), strict=False
                )
            ],
        )
    for name, key, fleet_key in (
        ("work_ratio", "full_per_register_us", "fleet_per_register_us"),
        ("work_sched_plan_ratio", "full_sched_plan_ms", "fleet_sched_plan_ms"),
    ):
        if hi.get(fleet_key) is None or math.isnan(hi[fleet_key]):
            continue
        out[name] = hi[key] / hi[fleet_key]
        _spread(
            out,
            name,
            [r[key] / r[fleet_key] for r in hi.get("rounds", []) if fleet_key in r],
        )
    return out


def _spread(out: dict[str, Any], name: str, paired: list[float]) -> None:
    """Put the min-max of a ratio over the rounds under ``{name}_spread``."""
    paired = [x for x in paired if not math.isnan(x)]
    if paired:
        out[f"{name}_spread"] = (min(paired), max(paired))
