"""Seeded waveforms for generated register maps, as arrays at 1-second resolution.

Each function returns a float array of ``n`` samples, sample ``i`` holding the value
over ``[i, i + 1)`` seconds from the scenario start. Devices serve these values
sample-and-hold, so the ground truth the metrics use is exactly what a read returns.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


def constant(n: int, value: float) -> Array:
    """Return a value that never changes (configuration, identity)."""
    return np.full(n, float(value))


def smooth_walk(
    n: int,
    rng: np.random.Generator,
    *,
    sigma: float,
    knot_s: float = 60.0,
    mean: float = 0.0,
) -> Array:
    """Return a smooth random walk: Gaussian steps every ``knot_s`` s, interpolated."""
    knots = int(n / knot_s) + 2
    path = mean + np.cumsum(rng.normal(0.0, sigma, knots))
    path -= path.mean() - mean
    return np.interp(np.arange(n) / knot_s, np.arange(knots), path)


def noise(n: int, rng: np.random.Generator, sd: float) -> Array:
    """White measurement noise, one draw per second."""
    return rng.normal(0.0, sd, n) if sd > 0 else np.zeros(n)


def daylight(
    n: int, start_hour: float, *, sunrise: float = 7.0, sunset: float = 17.0
) -> Array:
    """Clear-sky production factor 0..1 by hour of day (half sine between sunrise and sunset)."""
    hours = (start_hour + np.arange(n) / 3600.0) % 24.0
    phase = (hours - sunrise) / (sunset - sunrise)
    return np.where(
        (phase > 0) & (phase < 1), np.sin(np.pi * np.clip(phase, 0, 1)), 0.0
    )


def clouds(n: int, rng: np.random.Generator, *, mean_dwell_s: float = 600.0) -> Array:
    """Cloud attenuation 0.25..1: smooth, with occasional fronts."""
    base = np.clip(smooth_walk(n, rng, sigma=0.08, knot_s=120.0, mean=0.8), 0.25, 1.0)
    shade = telegraph(n, rng, mean_on_s=mean_dwell_s / 4, mean_off_s=mean_dwell_s)
    return np.asarray(base * np.where(shade > 0, 0.5, 1.0), dtype=np.float64)


def telegraph(
    n: int,
    rng: np.random.Generator,
    *,
    mean_on_s: float,
    mean_off_s: float,
    start_on: bool = False,
) -> Array:
    """Return a random on/off signal (1.0/0.0) with exponential dwell times."""
    out = np.zeros(n)
    t, on = 0, start_on
    while t < n:
        dwell = max(1, int(rng.exponential(mean_on_s if on else mean_off_s)))
        if on:
            out[t : t + dwell] = 1.0
        t += dwell
        on = not on
    return out


def steps(n: int, initial: float, changes: list[tuple[int, float]]) -> Array:
    """Piecewise constant: ``initial``, then each ``(second, value)`` from that second on."""
    out = np.full(n, float(initial))
    for second, value in sorted(changes):
        if 0 <= second < n:
            out[second:] = value
    return out


def first_order(signal: Array, tau_s: float) -> Array:
    """Return a first-order lag (thermal mass) of ``signal``, time constant ``tau_s``."""
    alpha = 1.0 / max(tau_s, 1.0)
    length = min(len(signal), int(8 * max(tau_s, 1.0)) + 1)
    kernel = alpha * (1.0 - alpha) ** np.arange(length)
    kernel /= kernel.sum()
    padded = np.concatenate([np.full(length - 1, signal[0]), signal])
    return np.convolve(padded, kernel, mode="valid")[: len(signal)]


def energy_kwh(power_w: Array, start_kwh: float) -> Array:
    """Return a kWh counter integrating ``power_w`` (positive part) second by second."""
    return start_kwh + np.cumsum(np.clip(power_w, 0, None)) / 3.6e6
