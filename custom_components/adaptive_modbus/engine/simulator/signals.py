"""Seeded, deterministic signals of the demo scenario.

Every value is a pure function of ``(seed, key, t)``: no global random state, no
hidden clock. ``t`` is scenario time in seconds (any float, negative included).
The scenario repeats every :data:`CYCLE_SECONDS`:

=========== ======================= =================================================
phase       share of the cycle      what happens
=========== ======================= =================================================
stable      50 %                    slow drift, power noise below its tolerance
escalation  20 %                    temperatures and power ramp up, warnings switch on
peak        10 %                    plateau, faults and alarms on, big power swings
recovery    20 %                    everything ramps back, alarms clear
=========== ======================= =================================================

Analog signals are ``base + sum of seeded sines + gain * envelope(t) + noise``.
The noise is piecewise constant per ``noise_step`` and derived from a hash of
``(seed, key, floor(t / noise_step))``. Energy counters integrate the noise-free
part of their power source in closed form, so a counter is exact, O(1) and
monotonic for any ``t``, also when time goes backwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
import hashlib
import math
from typing import Final

from ..registers import Value

CYCLE_SECONDS: Final = 3600.0
"""Length of one stable -> escalation -> peak -> recovery cycle (virtual seconds)."""

JOULES_PER_KWH: Final = 3_600_000.0


class Phase(StrEnum):
    """Phases of the repeating demo scenario, in cycle order."""

    STABLE = "stable"
    ESCALATION = "escalation"
    PEAK = "peak"
    RECOVERY = "recovery"


PHASE_SHARES: Final[Mapping[Phase, float]] = {
    Phase.STABLE: 0.5,
    Phase.ESCALATION: 0.2,
    Phase.PEAK: 0.1,
    Phase.RECOVERY: 0.2,
}
"""Share of :data:`CYCLE_SECONDS` spent in each phase (sums to 1)."""


def _phase_offsets() -> dict[Phase, tuple[float, float]]:
    offsets: dict[Phase, tuple[float, float]] = {}
    start = 0.0
    for phase in Phase:
        length = PHASE_SHARES[phase] * CYCLE_SECONDS
        offsets[phase] = (start, length)
        start += length
    return offsets


_OFFSETS: Final = _phase_offsets()


# -- scenario timeline --------------------------------------------------------


def cycle_index(t: float) -> int:
    """Index of the cycle containing ``t`` (cycle 0 starts at ``t = 0``)."""
    return math.floor(t / CYCLE_SECONDS)


def cycle_position(t: float) -> float:
    """Seconds since the start of the cycle containing ``t`` (0 <= x < cycle)."""
    return t - cycle_index(t) * CYCLE_SECONDS


def phase_length(phase: Phase) -> float:
    """Duration of ``phase`` in seconds."""
    return _OFFSETS[phase][1]


def phase_start(phase: Phase, cycle: int = 0) -> float:
    """Scenario time at which ``phase`` of cycle number ``cycle`` starts."""
    return cycle * CYCLE_SECONDS + _OFFSETS[phase][0]


def incident_start(cycle: int = 0) -> float:
    """Scenario time of the first step of the incident (escalation start) of ``cycle``."""
    return phase_start(Phase.ESCALATION, cycle)


def phase_at(t: float) -> Phase:
    """Return the phase the scenario is in at time ``t``."""
    position = cycle_position(t)
    for phase in Phase:
        start, length = _OFFSETS[phase]
        if position < start + length:
            return phase
    return Phase.RECOVERY  # float rounding at the very end of a cycle


def _envelope_at(position: float) -> float:
    """Incident envelope at a cycle position: 0 stable, cosine ramps, 1 at peak."""
    esc, esc_len = _OFFSETS[Phase.ESCALATION]
    rec, rec_len = _OFFSETS[Phase.RECOVERY]
    if position < esc:
        return 0.0
    if position < esc + esc_len:
        return (1.0 - math.cos(math.pi * (position - esc) / esc_len)) / 2.0
    if position < rec:
        return 1.0
    return (1.0 + math.cos(math.pi * min(position - rec, rec_len) / rec_len)) / 2.0


def _envelope_area(position: float) -> float:
    """Integral of the envelope from the cycle start to ``position`` (closed form)."""
    esc, esc_len = _OFFSETS[Phase.ESCALATION]
    peak, peak_len = _OFFSETS[Phase.PEAK]
    rec, rec_len = _OFFSETS[Phase.RECOVERY]
    if position <= esc:
        return 0.0
    x = min(position - esc, esc_len)
    area = x / 2.0 - esc_len * math.sin(math.pi * x / esc_len) / (2.0 * math.pi)
    if position <= peak:
        return area
    area += min(position - peak, peak_len)
    if position <= rec:
        return area
    x = min(position - rec, rec_len)
    return area + x / 2.0 + rec_len * math.sin(math.pi * x / rec_len) / (2.0 * math.pi)


_CYCLE_AREA: Final = _envelope_area(CYCLE_SECONDS)


def envelope(t: float) -> float:
    """Incident intensity at ``t``: 0 when stable, rising to 1 at the peak, back to 0."""
    return _envelope_at(cycle_position(t))


def envelope_integral(t: float) -> float:
    """Integral of :func:`envelope` from 0 to ``t`` (negative for negative ``t``)."""
    return cycle_index(t) * _CYCLE_AREA + _envelope_area(cycle_position(t))


# -- seeded randomness ----------------------------------------------------------


def unit_hash(seed: int, key: str, salt: str, index: int) -> float:
    """Return a reproducible pseudo-random number in [0, 1) for the arguments."""
    digest = hashlib.blake2b(
        f"{seed}|{key}|{salt}|{index}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def unit_noise(seed: int, key: str, index: int) -> float:
    """Reproducible noise in [-1, 1) for noise step ``index`` of ``key``."""
    return 2.0 * unit_hash(seed, key, "noise", index) - 1.0


@lru_cache(maxsize=1024)
def _wave_phases(seed: int, key: str, waves: int) -> tuple[float, ...]:
    return tuple(2.0 * math.pi * unit_hash(seed, key, "wave", i) for i in range(waves))


# -- signal kinds -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Wave:
    """One sine component of a drift: amplitude (units) and period (seconds)."""

    amplitude: float
    period: float


@dataclass(frozen=True, slots=True)
class Analog:
    """``base + seeded sines + incident_gain * envelope + noise``.

    ``noise`` is the noise amplitude when stable, ``incident_noise`` at the peak
    (interpolated by the envelope); each noise value holds for ``noise_step`` seconds.
    """

    base: float
    waves: tuple[Wave, ...] = ()
    incident_gain: float = 0.0
    noise: float = 0.0
    incident_noise: float = 0.0
    noise_step: float = 1.0

    def smooth(self, seed: int, key: str, t: float) -> float:
        """Return the noise-free part of the signal."""
        total = self.base + self.incident_gain * envelope(t)
        for wave, phi in zip(
            self.waves, _wave_phases(seed, key, len(self.waves)), strict=True
        ):
            total += wave.amplitude * math.sin(2.0 * math.pi * t / wave.period + phi)
        return total

    def integral(self, seed: int, key: str, t: float) -> float:
        """Integral of :meth:`smooth` from 0 to ``t`` (closed form)."""
        total = self.base * t + self.incident_gain * envelope_integral(t)
        for wave, phi in zip(
            self.waves, _wave_phases(seed, key, len(self.waves)), strict=True
        ):
            omega = 2.0 * math.pi / wave.period
            total += (
                wave.amplitude / omega * (math.cos(phi) - math.cos(omega * t + phi))
            )
        return total

    def noise_amplitude(self, t: float) -> float:
        """Noise amplitude at ``t`` (the stable amplitude outside the incident)."""
        return self.noise + (self.incident_noise - self.noise) * envelope(t)

    def value(self, seed: int, key: str, t: float) -> Value:
        """Signal value at ``t``."""
        step = math.floor(t / self.noise_step)
        return self.smooth(seed, key, t) + self.noise_amplitude(t) * unit_noise(
            seed, key, step
        )


@dataclass(frozen=True, slots=True)
class Derived:
    """``factor`` times the sum of other analog signals' smooth parts, plus own noise.

    Keeps a device's values physically consistent: a meter's total is the sum of
    its phases, an inverter's AC power a share of its DC power. ``sources`` are
    :class:`Analog` keys of the same ``model``.
    """

    model: str
    sources: tuple[str, ...]
    factor: float = 1.0
    noise: float = 0.0
    noise_step: float = 1.0

    def _analogs(self) -> list[tuple[str, Analog]]:
        out = []
        for source in self.sources:
            signal = SIGNAL_TABLES[self.model][source]
            assert isinstance(signal, Analog)
            out.append((hash_key(self.model, source), signal))
        return out

    def smooth(self, seed: int, key: str, t: float) -> float:
        """Return the noise-free part of the signal."""
        return self.factor * sum(a.smooth(seed, k, t) for k, a in self._analogs())

    def integral(self, seed: int, key: str, t: float) -> float:
        """Integral of :meth:`smooth` from 0 to ``t`` (closed form)."""
        return self.factor * sum(a.integral(seed, k, t) for k, a in self._analogs())

    def value(self, seed: int, key: str, t: float) -> Value:
        """Signal value at ``t``."""
        step = math.floor(t / self.noise_step)
        return self.smooth(seed, key, t) + self.noise * unit_noise(seed, key, step)


@dataclass(frozen=True, slots=True)
class Counter:
    """An energy counter (kWh): a seeded start reading plus the integral of a power source.

    ``source`` is the key of an :class:`Analog` signal of the same device, ``model``
    the device model whose signal table holds it (see :data:`SIGNAL_TABLES`).
    """

    source: str
    start: float
    start_spread: float
    model: str = "heat_pump"

    def value(self, seed: int, key: str, t: float) -> Value:
        """Counter reading at ``t``; never below 0, non-decreasing in ``t``."""
        source = SIGNAL_TABLES[self.model][self.source]
        assert isinstance(source, Analog | Derived)
        offset = self.start + self.start_spread * unit_hash(seed, key, "start", 0)
        integral = source.integral(seed, hash_key(self.model, self.source), t)
        return max(0.0, offset + integral / JOULES_PER_KWH)


@dataclass(frozen=True, slots=True)
class Window:
    """A flag that is on from ``on`` to ``off`` each cycle.

    Each end is ``(phase, fraction of that phase)``; ``on`` comes before ``off``.
    """

    on: tuple[Phase, float]
    off: tuple[Phase, float]

    def value(self, seed: int, key: str, t: float) -> Value:
        """Whether the flag is on at ``t``."""
        position = cycle_position(t)
        return _window_point(self.on) <= position < _window_point(self.off)


def _window_point(point: tuple[Phase, float]) -> float:
    phase, fraction = point
    return phase_start(phase) + fraction * phase_length(phase)


@dataclass(frozen=True, slots=True)
class Periodic:
    """A flag on for ``duration`` seconds every ``period`` seconds (seeded offset)."""

    period: float
    duration: float

    def value(self, seed: int, key: str, t: float) -> Value:
        """Whether the flag is on at ``t``."""
        offset = self.period * unit_hash(seed, key, "offset", 0)
        return (t - offset) % self.period < self.duration


@dataclass(frozen=True, slots=True)
class Constant:
    """A value that never changes (the device default of a setpoint, a firmware version)."""

    constant: Value

    def value(self, seed: int, key: str, t: float) -> Value:
        """Return the constant."""
        return self.constant


@dataclass(frozen=True, slots=True)
class Uptime:
    """Whole seconds since boot; the device booted a seeded time before ``t = 0``."""

    spread: float

    def value(self, seed: int, key: str, t: float) -> Value:
        """Uptime in seconds at ``t`` (never below 0)."""
        booted = self.spread * unit_hash(seed, key, "boot", 0)
        return max(0, math.floor(booted + t))


@dataclass(frozen=True, slots=True)
class SerialNumber:
    """A serial number derived from the seed."""

    prefix: str

    def value(self, seed: int, key: str, t: float) -> Value:
        """Return the serial number (at most 16 characters)."""
        return f"{self.prefix}{seed % 10**8:08d}"


Signal = (
    Analog | Derived | Counter | Window | Periodic | Constant | Uptime | SerialNumber
)

SIGNALS: Final[Mapping[str, Signal]] = {
    # slow temperatures (°C)
    "outdoor_temperature": Analog(
        4.0, (Wave(3.0, 86_400.0), Wave(0.4, 5_400.0)), noise=0.03, noise_step=10.0
    ),
    "supply_temperature": Analog(
        35.0, (Wave(0.5, 2_400.0), Wave(0.2, 900.0)), 12.0, 0.03, 0.1, 10.0
    ),
    "return_temperature": Analog(
        30.0, (Wave(0.4, 2_400.0), Wave(0.2, 1_100.0)), 7.0, 0.03, 0.1, 10.0
    ),
    # fast, noisy power (W): stable noise well below the 50 W tolerance
    "active_power": Analog(
        1_800.0, (Wave(200.0, 1_800.0), Wave(60.0, 600.0)), 4_200.0, 15.0, 300.0
    ),
    "compressor_power": Analog(
        900.0, (Wave(80.0, 1_300.0), Wave(30.0, 500.0)), 1_600.0, 8.0, 120.0
    ),
    "grid_voltage": Analog(230.0, (Wave(1.5, 3_000.0),), -4.0, 0.3, 1.0, 2.0),
    # deliberately noisier than its 0.02 Hz tolerance: the engine should flag it as noisy
    "grid_frequency": Analog(50.0, (Wave(0.01, 900.0),), -0.05, 0.03, 0.06, 1.0),
    "flow_rate": Analog(18.0, (Wave(0.6, 2_000.0),), 6.0, 0.05, 0.3, 5.0),
    # monotonic energy counters (kWh)
    "energy_import": Counter("active_power", 10_000.0, 5_000.0),
    "compressor_energy": Counter("compressor_power", 3_000.0, 2_000.0),
    # status bits and alarms
    "status_running": Constant(True),
    "status_defrost": Periodic(1_200.0, 120.0),
    "status_warning": Window((Phase.ESCALATION, 0.0), (Phase.RECOVERY, 0.0)),
    "status_fault": Window((Phase.PEAK, 0.0), (Phase.RECOVERY, 0.0)),
    "alarm_overtemperature": Window((Phase.PEAK, 0.0), (Phase.RECOVERY, 0.5)),
    "alarm_overload": Window((Phase.ESCALATION, 0.5), (Phase.RECOVERY, 0.0)),
    "alarm_low_pressure": Constant(False),
    # diagnostics
    "uptime": Uptime(30 * 86_400.0),
    "firmware_version": Constant(2.13),
    "serial_number": SerialNumber("AMS-"),
    # device defaults of writable registers: they change only when written
    "room_setpoint": Constant(21.0),
    "power_limit": Constant(8_000),
    "pump_enable": Constant(True),
    "boost_mode": Constant(False),
}
"""Signal of every key of the demo profile (the heat pump, the fleet's problem child)."""

# The healthy devices of the demo fleet: no incident gain, no incident noise, no
# phase-bound flags. Their values drift and jitter the same way in every phase.
GRID_METER_SIGNALS: Final[Mapping[str, Signal]] = {
    "l1_voltage": Analog(231.0, (Wave(1.2, 3_000.0), Wave(0.3, 420.0)), noise=0.2),
    "l2_voltage": Analog(230.0, (Wave(1.2, 3_100.0), Wave(0.3, 380.0)), noise=0.2),
    "l3_voltage": Analog(232.0, (Wave(1.2, 2_900.0), Wave(0.3, 450.0)), noise=0.2),
    "l1_current": Derived("grid_meter", ("l1_power",), 1 / 231.0, noise=0.02),
    "l2_current": Derived("grid_meter", ("l2_power",), 1 / 230.0, noise=0.02),
    "l3_current": Derived("grid_meter", ("l3_power",), 1 / 232.0, noise=0.02),
    "l1_power": Analog(920.0, (Wave(230.0, 1_500.0), Wave(70.0, 240.0)), noise=4.0),
    "l2_power": Analog(575.0, (Wave(140.0, 1_700.0), Wave(45.0, 300.0)), noise=4.0),
    "l3_power": Analog(740.0, (Wave(185.0, 1_300.0), Wave(45.0, 200.0)), noise=4.0),
    "total_power": Derived(
        "grid_meter", ("l1_power", "l2_power", "l3_power"), noise=6.0
    ),
    "frequency": Analog(50.0, (Wave(0.02, 900.0),), noise=0.005),
    "import_active_energy": Counter("total_power", 24_000.0, 6_000.0, "grid_meter"),
    "export_active_energy": Constant(1_532.25),
}
"""Signals of the demo grid meter (unit 2): a three-phase household meter."""

PV_INVERTER_SIGNALS: Final[Mapping[str, Signal]] = {
    "dc_power": Analog(3_400.0, (Wave(700.0, 2_700.0), Wave(250.0, 420.0)), noise=10.0),
    "dc_voltage": Analog(385.0, (Wave(8.0, 2_700.0),), noise=0.5, noise_step=5.0),
    "dc_current": Derived("pv_inverter", ("dc_power",), 1 / 385.0, noise=0.03),
    "active_power": Derived("pv_inverter", ("dc_power",), 0.96, noise=10.0),
    "grid_voltage": Analog(231.0, (Wave(1.2, 3_000.0),), noise=0.2, noise_step=2.0),
    "grid_frequency": Analog(50.0, (Wave(0.02, 900.0),), noise=0.005),
    "inverter_temperature": Analog(
        41.0, (Wave(2.5, 3_600.0),), noise=0.05, noise_step=10.0
    ),
    "export_active_energy": Counter("active_power", 8_000.0, 4_000.0, "pv_inverter"),
    "status_running": Constant(True),
}
"""Signals of the demo PV inverter (unit 3): production under passing clouds."""

SIGNAL_TABLES: Final[Mapping[str, Mapping[str, Signal]]] = {
    "heat_pump": SIGNALS,
    "grid_meter": GRID_METER_SIGNALS,
    "pv_inverter": PV_INVERTER_SIGNALS,
}
"""Signal table of each device model of the demo fleet."""


HEAT_PUMP: Final = "heat_pump"


def hash_key(model: str, key: str) -> str:
    """Name under which ``key`` of ``model`` draws its seeded randomness.

    The heat pump keeps the bare key (its values predate the fleet); the other
    models prefix theirs, so two devices' ``grid_voltage`` do not share their noise.
    """
    return key if model == HEAT_PUMP else f"{model}.{key}"


def value(seed: int, key: str, t: float, model: str = HEAT_PUMP) -> Value:
    """Value of signal ``key`` of device ``model`` at scenario time ``t`` for ``seed``.

    Raises ``KeyError`` for an unknown model or key.
    """
    return SIGNAL_TABLES[model][key].value(seed, hash_key(model, key), t)


def smooth(seed: int, key: str, t: float) -> float:
    """Noise-free part of an analog signal (``TypeError`` for other kinds)."""
    signal = SIGNALS[key]
    if not isinstance(signal, Analog):
        raise TypeError(f"{key} is not an analog signal")
    return signal.smooth(seed, key, t)


@dataclass(frozen=True, slots=True)
class Scenario:
    """The demo scenario for one seed: ``Scenario(42).value("active_power", 10.0)``."""

    seed: int = 42

    def value(self, key: str, t: float) -> Value:
        """Value of ``key`` at scenario time ``t``."""
        return value(self.seed, key, t)

    def phase(self, t: float) -> Phase:
        """Phase at scenario time ``t``."""
        return phase_at(t)
