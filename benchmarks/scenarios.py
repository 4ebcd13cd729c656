"""Benchmark scenarios: register maps, devices, ground truth, bus and incidents.

* ``demo``: the built-in demo heat pump (``SimulatedDevice``) through all phases.
* ``install200``: a realistic installation on one RS-485 bus: hybrid inverter,
  grid meter, battery and a heat-pump sub-meter (four units, ~200 registers).
* ``stress2000``: 16 units x 125 registers behind a Modbus TCP gateway.
* ``trace``: any recorded CSV (``timestamp,key,value``) replayed with its YAML map.

Ground truth is a matrix ``truth[register, second]`` holding what a perfect read
would decode at each second of the run (``NaN`` for registers without a numeric
value, which the metrics skip).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
import datetime as dt
from typing import Any

import numpy as np
from numpy.typing import NDArray

from adaptive_modbus_engine.planner import DeviceLimits
from adaptive_modbus_engine.registers import DataType, RegisterSpec, Table
from adaptive_modbus_engine.simulator import signals
from adaptive_modbus_engine.simulator.device import SimulatedDevice

from . import waveforms as wf
from .bus import BusModel
from .devices import SyntheticUnit, clamp_to_type, quantize

#: Virtual start of every run: Monday 2026-11-23 06:00 UTC (time-of-week matters to patterns).
EPOCH = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC).timestamp()
#: Incidents start this many seconds off the round polling ticks (15 s, 30 s, ...), so a
#: fixed poller is not lucky enough to read at the very second an incident begins.
OFF_TICK = 7.7

Array = NDArray[np.float64]
UnitFactory = Callable[[Callable[[], float]], list[Any]]


@dataclass
class Scenario:
    """One benchmark workload; ``truth`` rows follow ``specs``."""

    name: str
    title: str
    specs: tuple[RegisterSpec, ...]
    truth: Array
    start: float
    duration: int
    bus: BusModel
    make_units: UnitFactory
    incidents: tuple[float, ...] = ()
    holes: Mapping[tuple[int, Table], frozenset[int]] = field(default_factory=dict)
    limits: Mapping[int, DeviceLimits] = field(default_factory=dict)
    sweep: tuple[float, ...] = (5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0)
    notes: str = ""
    day: NDArray[np.bool_] | None = None  # per second: daylight (day/night scenarios)
    incident_key: str | None = None  # time incidents on this register only

    @property
    def registers(self) -> int:
        """16-bit registers (and bits) the map spans, counted per value."""
        return sum(spec.size for spec in self.specs)

    @property
    def units(self) -> int:
        """Number of Modbus units on the bus."""
        return len({spec.unit_id for spec in self.specs})


def _is_metric(spec: RegisterSpec) -> bool:
    return spec.data_type is not DataType.STRING


# -- demo -----------------------------------------------------------------------


def demo(hours: float = 4.0, seed: int = 42, bus: BusModel | None = None) -> Scenario:
    """Build the demo device's scenario for ``hours`` (one cycle per hour)."""
    start = EPOCH
    duration = round(hours * 3600)
    device_start = start - OFF_TICK  # the scenario began OFF_TICK s before the run
    probe = SimulatedDevice(
        seed=seed, clock=lambda: start, unit_id=1, start=device_start
    )
    specs = tuple(d.spec for d in probe.definitions if d.enabled_by_default)
    truth = np.full((len(specs), duration + 1), np.nan)
    for row, spec in enumerate(specs):
        if _is_metric(spec):
            truth[row] = [
                float(probe.truth(spec.key, start + s)) for s in range(duration + 1)
            ]
    cycles = int(duration // signals.CYCLE_SECONDS) + 1
    incidents = tuple(
        probe.incident_start(c)
        for c in range(cycles + 1)
        if start <= probe.incident_start(c) < start + duration
    )

    def make_units(clock: Callable[[], float]) -> list[Any]:
        return [SimulatedDevice(seed=seed, clock=clock, unit_id=1, start=device_start)]

    return Scenario(
        name="demo",
        title=f"Demo heat pump, {hours:g} h (stable/escalation/peak/recovery each hour)",
        specs=specs,
        truth=truth,
        start=start,
        duration=duration,
        bus=bus or BusModel.rtu(9600),
        make_units=make_units,
        incidents=incidents,
        holes={(1, Table.INPUT): probe.holes(Table.INPUT)},
        limits={1: DeviceLimits(max_registers=probe.max_read_words)},
    )


# -- generated maps --------------------------------------------------------------


class MapBuilder:
    """Collects specs and their value arrays for one unit, assigning addresses."""

    def __init__(self, unit_id: int, prefix: str, samples: int) -> None:
        """Start an empty map for ``unit_id``, keys prefixed ``prefix``."""
        self.unit_id = unit_id
        self.prefix = prefix
        self.samples = samples
        self.specs: list[RegisterSpec] = []
        self.values: dict[str, Array] = {}
        self._next: dict[Table, int] = dict.fromkeys(Table, 0)

    def next_address(self, table: Table) -> int:
        """Return the address the next register of ``table`` gets."""
        return self._next[table]

    def gap(self, table: Table, count: int) -> None:
        """Leave ``count`` unmapped addresses (they read as 0)."""
        self._next[table] += count

    def add(
        self,
        name: str,
        values: Array | float,
        *,
        table: Table = Table.INPUT,
        data_type: DataType = DataType.UINT16,
        scale: float = 1.0,
        precision: int | None = None,
        tolerance: float = 0.0,
        bit: int | None = None,
        writable: bool = False,
    ) -> RegisterSpec:
        """Add one value at the next free address of ``table``."""
        if table.is_bit:
            data_type = DataType.BOOL
        address = self._next[table]
        spec = RegisterSpec(
            key=f"{self.prefix}_{name}",
            unit_id=self.unit_id,
            table=table,
            address=address,
            data_type=data_type,
            bit=bit,
            scale=scale,
            precision=precision,
            tolerance=tolerance,
            writable=writable,
        )
        if data_type is not DataType.BIT:
            self._next[table] = spec.end
        array = (
            values
            if isinstance(values, np.ndarray)
            else np.full(self.samples, float(values))
        )
        self.values[spec.key] = clamp_to_type(spec, np.asarray(array, dtype=np.float64))
        self.specs.append(spec)
        return spec

    def bits(self, name: str, flags: Sequence[Array]) -> None:
        """Add a status word with one BIT spec per flag array."""
        for index, flag in enumerate(flags):
            self.add(f"{name}_{index}", flag, data_type=DataType.BIT, bit=index)
        self._next[Table.INPUT] += 1


def _assemble(
    name: str,
    title: str,
    builders: Sequence[MapBuilder],
    *,
    duration: int,
    bus: BusModel,
    incidents: Sequence[float],
    sweep: tuple[float, ...] | None = None,
    notes: str = "",
) -> Scenario:
    start = EPOCH
    specs = tuple(spec for b in builders for spec in b.specs)
    values = {key: array for b in builders for key, array in b.values.items()}
    truth = np.vstack(
        [quantize(spec, values[spec.key][: duration + 1]) for spec in specs]
    )

    def make_units(clock: Callable[[], float]) -> list[Any]:
        return [
            SyntheticUnit(b.unit_id, b.specs, b.values, start=start, clock=clock)
            for b in builders
        ]

    return Scenario(
        name=name,
        title=title,
        specs=specs,
        truth=truth,
        start=start,
        duration=duration,
        bus=bus,
        make_units=make_units,
        incidents=tuple(start + s for s in incidents),
        sweep=sweep or Scenario.sweep,
        notes=notes,
    )


def _meter(
    b: MapBuilder, load: Array, rng: np.random.Generator, export: Array | None
) -> None:
    """Add an SDM630-style three-phase meter: float32 pairs with the usual gaps."""
    n = b.samples
    shares = (0.45, 0.33, 0.22)
    volts = [
        230 + wf.smooth_walk(n, rng, sigma=0.4) - load * 0.0004 + wf.noise(n, rng, 0.15)
        for _ in shares
    ]
    power = [load * share + wf.noise(n, rng, 4.0) for share in shares]
    f32 = {"data_type": DataType.FLOAT32, "precision": 2}
    for i, v in enumerate(volts):
        b.add(f"voltage_l{i + 1}", v, tolerance=1.0, **f32)  # type: ignore[arg-type]
    for i, (v, p) in enumerate(zip(volts, power, strict=True)):
        b.add(f"current_l{i + 1}", np.abs(p) / v, tolerance=0.2, **f32)  # type: ignore[arg-type]
    for i, p in enumerate(power):
        b.add(f"power_l{i + 1}", p, tolerance=50.0, **f32)  # type: ignore[arg-type]
    for i, p in enumerate(power):
        b.add(f"apparent_l{i + 1}", np.abs(p) * 1.04, tolerance=50.0, **f32)  # type: ignore[arg-type]
    pf = [
        np.clip(0.96 + wf.smooth_walk(n, rng, sigma=0.003, knot_s=120), 0.8, 1.0)
        for _ in shares
    ]
    for i, value in enumerate(pf):
        b.add(f"power_factor_l{i + 1}", value, tolerance=0.02, **f32)  # type: ignore[arg-type]
    b.gap(Table.INPUT, 16)
    total = sum(power, np.zeros(n))
    b.add("power", total, tolerance=50.0, **f32)  # type: ignore[arg-type]
    b.add("apparent_power", np.abs(total) * 1.04, tolerance=50.0, **f32)  # type: ignore[arg-type]
    b.add("reactive_power", np.abs(total) * 0.28, tolerance=50.0, **f32)  # type: ignore[arg-type]
    b.gap(Table.INPUT, 6)
    freq = 50 + np.clip(wf.smooth_walk(n, rng, sigma=0.004, knot_s=10), -0.1, 0.1)
    b.add("frequency", freq + wf.noise(n, rng, 0.002), tolerance=0.05, **f32)  # type: ignore[arg-type]
    b.add("import_energy", wf.energy_kwh(total, 8123.4), tolerance=0.1, **f32)  # type: ignore[arg-type]
    exported = wf.energy_kwh(export if export is not None else np.zeros(n), 2210.7)
    b.add("export_energy", exported, tolerance=0.1, **f32)  # type: ignore[arg-type]
    b.add("total_energy", wf.energy_kwh(np.abs(total), 10334.1), tolerance=0.1, **f32)  # type: ignore[arg-type]
    b.gap(Table.INPUT, 10)
    for i, v in enumerate(volts):
        thd = (
            2.0
            + wf.smooth_walk(n, rng, sigma=0.05, knot_s=300)
            + np.abs(v - 230) * 0.02
        )
        b.add(f"thd_voltage_l{i + 1}", thd, tolerance=0.2, **f32)  # type: ignore[arg-type]
    demand = wf.first_order(np.abs(total), 900)
    b.add("demand", demand, tolerance=50.0, **f32)  # type: ignore[arg-type]
    b.add("max_demand", np.maximum.accumulate(demand) + 4200, tolerance=50.0, **f32)  # type: ignore[arg-type]


def install200(
    hours: float = 4.0, seed: int = 42, bus: BusModel | None = None
) -> Scenario:
    """Hybrid inverter, grid meter, battery and heat-pump sub-meter on one RTU bus."""
    rng = np.random.default_rng(seed)
    duration = round(hours * 3600)
    n = duration + 1
    fault_at = int(duration * 0.4) + round(OFF_TICK)
    fault_end = fault_at + 600
    start_hour = 10.0
    pv = (
        8000.0
        * wf.daylight(n, start_hour, sunrise=6.0, sunset=20.0)
        * wf.clouds(n, rng)
    )
    trip = np.zeros(n)
    trip[fault_at:fault_end] = 1.0
    pv_ac = np.where(trip > 0, 0.0, pv * 0.97)
    heat_pump = 1600 * wf.telegraph(n, rng, mean_on_s=1200, mean_off_s=1800)
    heat_pump = wf.first_order(heat_pump, 30) + wf.noise(n, rng, 3.0)
    kettle = 2000 * wf.telegraph(n, rng, mean_on_s=180, mean_off_s=2400)
    house = (
        350 + np.abs(wf.smooth_walk(n, rng, sigma=15, knot_s=60)) + kettle + heat_pump
    )
    surplus = pv_ac - house
    battery = np.clip(surplus, -3000, 3000)  # + charging, - discharging
    soc = np.clip(55 + np.cumsum(battery) / 3.6e6 / 10 * 100, 10, 100)
    grid = house - pv_ac + battery

    inverter = MapBuilder(1, "inverter", n)
    for s, share in ((1, 0.55), (2, 0.45)):
        volts = np.where(pv > 10, 380 + 40 * (pv / 8000) + wf.noise(n, rng, 0.4), 0.0)
        power = pv * share + wf.noise(n, rng, 3.0) * (pv > 10)
        inverter.add(f"pv{s}_voltage", volts, scale=0.1, precision=1, tolerance=2.0)
        inverter.add(
            f"pv{s}_current",
            np.where(volts > 0, power / np.maximum(volts, 1), 0),
            scale=0.01,
            precision=2,
            tolerance=0.1,
        )
        inverter.add(f"pv{s}_power", power, data_type=DataType.UINT32, tolerance=50.0)
    inverter.add("dc_power", pv, data_type=DataType.UINT32, tolerance=50.0)
    inverter.gap(Table.INPUT, 2)
    ac_volts = [
        230 + wf.smooth_walk(n, rng, sigma=0.4) + wf.noise(n, rng, 0.15)
        for _ in range(3)
    ]
    for i, v in enumerate(ac_volts):
        inverter.add(f"ac_voltage_l{i + 1}", v, scale=0.1, precision=1, tolerance=1.0)
    for i, v in enumerate(ac_volts):
        inverter.add(
            f"ac_current_l{i + 1}",
            pv_ac / 3 / v,
            scale=0.01,
            precision=2,
            tolerance=0.2,
        )
    for i in range(3):
        inverter.add(
            f"ac_power_l{i + 1}",
            pv_ac / 3 + wf.noise(n, rng, 2.0),
            data_type=DataType.INT32,
            tolerance=50.0,
        )
    inverter.add("ac_power", pv_ac, data_type=DataType.INT32, tolerance=50.0)
    inverter.add(
        "reactive_power", pv_ac * 0.05, data_type=DataType.INT32, tolerance=50.0
    )
    inverter.add(
        "apparent_power", pv_ac * 1.01, data_type=DataType.UINT32, tolerance=50.0
    )
    inverter.add(
        "power_factor",
        np.where(pv_ac > 0, 0.99, 1.0),
        data_type=DataType.INT16,
        scale=0.001,
        precision=3,
        tolerance=0.02,
    )
    inverter.add(
        "frequency",
        50 + np.clip(wf.smooth_walk(n, rng, sigma=0.004, knot_s=10), -0.1, 0.1),
        scale=0.01,
        precision=2,
        tolerance=0.05,
    )
    inverter.gap(Table.INPUT, 8)
    heatsink = 28 + wf.first_order(pv_ac / 8000 * 25, 600) + wf.noise(n, rng, 0.05)
    inverter.add(
        "heatsink_temperature",
        heatsink,
        data_type=DataType.INT16,
        scale=0.1,
        precision=1,
        tolerance=0.5,
    )
    inverter.add(
        "internal_temperature",
        wf.first_order(heatsink - 6, 900),
        data_type=DataType.INT16,
        scale=0.1,
        precision=1,
        tolerance=0.5,
    )
    inverter.add(
        "daily_yield",
        wf.energy_kwh(pv_ac, 3.2),
        data_type=DataType.UINT32,
        scale=0.01,
        precision=2,
        tolerance=0.1,
    )
    inverter.add(
        "total_yield",
        wf.energy_kwh(pv_ac, 18234.5),
        data_type=DataType.UINT32,
        scale=0.1,
        precision=1,
        tolerance=0.5,
    )
    inverter.add(
        "operating_hours",
        14213.0 + np.arange(n, dtype=np.float64) // 3600,
        data_type=DataType.UINT32,
        tolerance=1.0,
    )
    inverter.add(
        "insulation_resistance",
        2400 + wf.smooth_walk(n, rng, sigma=3, knot_s=600),
        tolerance=50.0,
    )
    inverter.gap(Table.INPUT, 1)
    inverter.add("state", np.where(trip > 0, 7, np.where(pv > 10, 4, 2)))
    inverter.add("error_code", np.where(trip > 0, 305, 0))
    inverter.bits(
        "flags",
        [
            1 - trip,
            (pv > 10) * (1 - trip),
            (pv > 10) * (1 - trip),
            (pv_ac > 7000).astype(float),
            (heatsink > 45).astype(float),
            trip,
        ],
    )
    for name, value in (
        ("power_limit", 100),
        ("pf_setpoint", 1000),
        ("grid_code", 12),
        ("export_limit", 6000),
        ("remote_enable", 1),
    ):
        inverter.add(name, value, table=Table.HOLDING, tolerance=0.0, writable=True)

    meter = MapBuilder(2, "grid_meter", n)
    _meter(meter, grid, rng, export=-grid)

    batt = MapBuilder(3, "battery", n)
    batt.add("soc", soc, precision=0, tolerance=1.0)
    batt.add("soh", 97.0, tolerance=1.0)
    volts = 48 + soc / 100 * 6 + battery / 3000 * 0.8 + wf.noise(n, rng, 0.02)
    batt.add("voltage", volts, scale=0.1, precision=1, tolerance=0.5)
    batt.add(
        "current",
        battery / volts,
        data_type=DataType.INT16,
        scale=0.1,
        precision=1,
        tolerance=0.5,
    )
    batt.add(
        "power",
        battery + wf.noise(n, rng, 3.0),
        data_type=DataType.INT32,
        tolerance=50.0,
    )
    temp = 22 + wf.first_order(np.abs(battery) / 3000 * 8, 900) + wf.noise(n, rng, 0.05)
    batt.add(
        "temperature",
        temp,
        data_type=DataType.INT16,
        scale=0.1,
        precision=1,
        tolerance=0.5,
    )
    batt.add(
        "cell_voltage_min", volts / 16 - 0.01, scale=0.001, precision=3, tolerance=0.01
    )
    batt.add(
        "cell_voltage_max", volts / 16 + 0.01, scale=0.001, precision=3, tolerance=0.01
    )
    batt.add("cycles", 412.0)
    for module in range(1, 5):
        batt.add(
            f"module{module}_temperature",
            temp + wf.smooth_walk(n, rng, sigma=0.05, knot_s=300),
            data_type=DataType.INT16,
            scale=0.1,
            precision=1,
            tolerance=0.5,
        )
        batt.add(
            f"module{module}_voltage",
            volts / 4 + wf.noise(n, rng, 0.005),
            scale=0.01,
            precision=2,
            tolerance=0.1,
        )
    batt.add(
        "charged_energy",
        wf.energy_kwh(battery, 3120.0),
        data_type=DataType.UINT32,
        scale=0.01,
        precision=2,
        tolerance=0.1,
    )
    batt.add(
        "discharged_energy",
        wf.energy_kwh(-battery, 2987.0),
        data_type=DataType.UINT32,
        scale=0.01,
        precision=2,
        tolerance=0.1,
    )
    batt.add("state", np.where(battery > 50, 1, np.where(battery < -50, 2, 0)))
    batt.bits(
        "alarms", [np.zeros(n), np.zeros(n), (temp > 28).astype(float), np.zeros(n)]
    )
    for name, value in (
        ("max_charge_current", 60),
        ("max_discharge_current", 60),
        ("mode", 1),
        ("min_soc", 10),
    ):
        batt.add(name, value, table=Table.HOLDING, writable=True)

    hp_meter = MapBuilder(4, "heat_pump_meter", n)
    _meter(hp_meter, heat_pump + 40, rng, export=None)

    builders = [inverter, meter, batt, hp_meter]
    return _assemble(
        "install200",
        f"Installation, 4 units on one RS-485 bus, {hours:g} h (inverter trips at 40 %)",
        builders,
        duration=duration,
        bus=bus or BusModel.rtu(19200),
        incidents=[fault_at],
    )


def stress2000(
    hours: float = 1.0, seed: int = 42, bus: BusModel | None = None
) -> Scenario:
    """16 units x 125 input registers of mixed signals behind a TCP gateway."""
    rng = np.random.default_rng(seed + 2000)
    duration = round(hours * 3600)
    n = duration + 1
    incident = int(duration * 0.4) + round(OFF_TICK)
    # reuse the demo scenario's incident envelope for the stress incident's shape
    envelope = np.array(
        [signals.envelope(signals.incident_start() + s - incident) for s in range(n)]
    )
    builders = []
    for unit in range(1, 17):
        b = MapBuilder(unit, f"u{unit}", n)
        index = 0
        while b.next_address(Table.INPUT) < 124:
            kind = rng.choice(
                ["const", "temp", "power", "counter", "volt", "state"],
                p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05],
            )
            name = f"{kind}{index}"
            index += 1
            if kind == "const":
                b.add(name, float(rng.integers(0, 1000)))
            elif kind == "temp":
                value = (
                    25
                    + wf.smooth_walk(n, rng, sigma=0.15, knot_s=300)
                    + wf.noise(n, rng, 0.03)
                )
                b.add(
                    name,
                    value + (4 * envelope if unit <= 4 else 0),
                    data_type=DataType.INT16,
                    scale=0.1,
                    precision=1,
                    tolerance=0.5,
                )
            elif kind == "power":
                base = 500 + 1500 * wf.telegraph(n, rng, mean_on_s=900, mean_off_s=1800)
                value = (
                    base
                    + np.abs(wf.smooth_walk(n, rng, sigma=10))
                    + wf.noise(n, rng, 4.0)
                )
                if unit <= 4:
                    value = value * (1 + 0.8 * envelope)
                b.add(name, value, data_type=DataType.INT32, tolerance=50.0)
            elif kind == "counter":
                power = 1000 + np.abs(wf.smooth_walk(n, rng, sigma=20))
                b.add(
                    name,
                    wf.energy_kwh(power, float(rng.integers(100, 9000))),
                    data_type=DataType.UINT32,
                    scale=0.01,
                    precision=2,
                    tolerance=0.1,
                )
            elif kind == "volt":
                b.add(
                    name,
                    230 + wf.smooth_walk(n, rng, sigma=0.4) + wf.noise(n, rng, 0.15),
                    scale=0.1,
                    precision=1,
                    tolerance=1.0,
                )
            else:
                flags = wf.telegraph(n, rng, mean_on_s=600, mean_off_s=5400)
                if unit <= 4:
                    flags = np.maximum(flags, envelope > 0.02)
                b.add(name, flags)
        builders.append(b)
    return _assemble(
        "stress2000",
        f"Stress map, 16 units x 125 registers behind one TCP gateway, {hours:g} h",
        builders,
        duration=duration,
        bus=bus or BusModel.tcp(0.010),
        incidents=[incident],
        sweep=(15.0, 60.0, 300.0),
    )


#: PV day/night scenario: sunrise and sunset (hours UTC) on every day.
PV_SUNRISE = 7.22
PV_SUNSET = 16.85


def pv(hours: float = 52.0, seed: int = 42, bus: BusModel | None = None) -> Scenario:
    """Build a PV inverter on RTU over days: clear-sky shape with clouds, flat at night.

    The run starts at 06:00 UTC, so the default 52 h hold three sunrises (07:13 UTC
    each day) and two whole days and nights. Every sunrise is an incident, timed on
    the AC power from half an hour before it: the inverter starts feeding in at
    100 W (a step beyond the 50 W tolerance), and the delay runs from that second
    until a read shows it. ``day`` marks daylight.
    """
    rng = np.random.default_rng(seed + 7)
    duration = round(hours * 3600)
    n = duration + 1
    start_hour = (EPOCH % 86400) / 3600
    shape = wf.daylight(n, start_hour, sunrise=PV_SUNRISE, sunset=PV_SUNSET)
    pv_dc = 6000.0 * shape * wf.clouds(n, rng)
    day = shape > 0
    # the inverter starts feeding in once the strings give 100 W: a step at sunrise
    ac = np.where(pv_dc > 100, pv_dc * 0.97, 0.0)
    b = MapBuilder(1, "pv", n)
    volts = np.where(day, 350 + 60 * shape + wf.noise(n, rng, 0.4), 0.0)
    b.add("string_voltage", volts, scale=0.1, precision=1, tolerance=2.0)
    b.add(
        "string_current",
        np.where(volts > 0, pv_dc / np.maximum(volts, 1), 0),
        scale=0.01,
        precision=2,
        tolerance=0.1,
    )
    b.add("dc_power", pv_dc, data_type=DataType.UINT32, tolerance=50.0)
    b.add("ac_power", ac, data_type=DataType.INT32, tolerance=50.0)
    grid_v = 230 + wf.smooth_walk(n, rng, sigma=0.3) + wf.noise(n, rng, 0.1)
    b.add("ac_voltage", grid_v, scale=0.1, precision=1, tolerance=2.0)
    b.add("ac_current", ac / grid_v, scale=0.01, precision=2, tolerance=0.2)
    b.add(
        "ac_frequency",
        50 + wf.smooth_walk(n, rng, sigma=0.003, knot_s=30),
        scale=0.01,
        precision=2,
        tolerance=0.05,
    )
    heatsink = 12 + wf.first_order(ac / 6000 * 30, 900) + wf.noise(n, rng, 0.05)
    b.add(
        "heatsink_temperature",
        heatsink,
        data_type=DataType.INT16,
        scale=0.1,
        precision=1,
        tolerance=0.5,
    )
    hour_of_day = (start_hour + np.arange(n) / 3600.0) % 24
    midnight = np.concatenate(([False], np.diff(hour_of_day) < 0))
    energy = np.cumsum(ac) / 3.6e6
    daily = energy - np.maximum.accumulate(np.where(midnight, energy, 0.0))
    b.add(
        "daily_yield",
        daily,
        data_type=DataType.UINT32,
        scale=0.01,
        precision=2,
        tolerance=0.1,
    )
    b.add(
        "total_yield",
        9120.0 + energy,
        data_type=DataType.UINT32,
        scale=0.1,
        precision=1,
        tolerance=0.5,
    )
    b.add("state", np.where(day & (pv_dc > 10), 4, 2))
    b.bits("flags", [(pv_dc > 10).astype(float), (ac > 5000).astype(float)])
    b.add("power_limit", 100, table=Table.HOLDING, writable=True)
    sunrises = [int(i) + 1 for i in np.flatnonzero(np.diff(day.astype(np.int8)) == 1)]
    scenario = _assemble(
        "pv",
        f"PV inverter day/night, {hours / 24:g} days on RTU 9600 (clear sky with clouds)",
        [b],
        duration=duration,
        bus=bus or BusModel.rtu(9600),
        incidents=[max(s_ - 1800, 1) for s_ in sunrises],
        sweep=(5.0, 15.0, 30.0, 60.0, 120.0, 300.0),
    )
    scenario.day = day
    scenario.incident_key = "pv_ac_power"
    return scenario


# -- wrong defaults ---------------------------------------------------------------

#: the wrong-defaults meter answers no read of more registers than this
WRONG_DEFAULTS_MAX_READ = 20
#: ... and its supply temperature's noise is this many times its tolerance
WRONG_DEFAULTS_NOISE = 3.0


def wrong_defaults(
    hours: float = 4.0, seed: int = 42, bus: BusModel | None = None
) -> Scenario:
    """Build a meter with a heat-pump controller where the engine's defaults are wrong.

    The unit never answers a read of more than :data:`WRONG_DEFAULTS_MAX_READ`
    registers (the engine reads up to 125 by default and must learn it), and one
    temperature's noise is :data:`WRONG_DEFAULTS_NOISE` times its tolerance.
    """
    rng = np.random.default_rng(seed)
    duration = round(hours * 3600)
    n = duration + 1
    start_at = int(duration * 0.4) + round(OFF_TICK)
    compressor = np.zeros(n)
    compressor[start_at:] = 1.0
    compressor = np.maximum(
        compressor, wf.telegraph(n, rng, mean_on_s=1500, mean_off_s=2400)
    )
    heat_pump = wf.first_order(1800 * compressor, 40)
    load = 400 + np.abs(wf.smooth_walk(n, rng, sigma=12, knot_s=60)) + heat_pump
    b = MapBuilder(1, "meter", n)
    _meter(b, load, rng, None)
    b.gap(Table.INPUT, 4)
    tolerance = 0.1
    sigma = WRONG_DEFAULTS_NOISE * tolerance / np.sqrt(2.0)  # RMS read-to-read = 3 tol
    flow = 30 + wf.first_order(compressor * 15, 400)
    b.add("supply_temperature", flow + wf.noise(n, rng, sigma), data_type=DataType.FLOAT32,
          tolerance=tolerance)  # fmt: skip
    b.add("return_temperature", 27 + wf.first_order(compressor * 9, 500),
          data_type=DataType.FLOAT32, precision=1, tolerance=0.2)  # fmt: skip
    b.add("compressor_running", compressor, table=Table.DISCRETE)
    b.add("setpoint", 45, table=Table.HOLDING, scale=0.1, precision=1, writable=True)
    scenario = _assemble(
        "wrongdefaults",
        f"Wrong defaults: meter + heat-pump controller, {hours:g} h on RTU 9600; "
        f"no answer to reads over {WRONG_DEFAULTS_MAX_READ} registers, one "
        f"temperature's noise {WRONG_DEFAULTS_NOISE:g}x its tolerance",
        [b],
        duration=duration,
        bus=bus or BusModel.rtu(9600),
        incidents=[start_at],
    )
    start = scenario.start

    def make_units(clock: Callable[[], float]) -> list[Any]:
        return [
            SyntheticUnit(b.unit_id, b.specs, b.values, start=start, clock=clock,
                          timeout_above=WRONG_DEFAULTS_MAX_READ)
        ]  # fmt: skip

    scenario.make_units = make_units
    scenario.incident_key = "meter_power"
    return scenario


SCENARIOS: dict[str, Callable[..., Scenario]] = {
    "demo": demo,
    "install200": install200,
    "stress2000": stress2000,
    "pv": pv,
    "wrongdefaults": wrong_defaults,
}
