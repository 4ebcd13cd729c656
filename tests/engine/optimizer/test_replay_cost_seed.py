"""The shadow replay behaves like the live engine: its cost model, its noisy registers."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random

from adaptive_modbus_engine.config import EngineConfig
from adaptive_modbus_engine.optimizer import Change
from adaptive_modbus_engine.optimizer.changes import apply_all
from adaptive_modbus_engine.optimizer.loop import predict
from adaptive_modbus_engine.registers import RegisterSpec, Table
from adaptive_modbus_engine.replay import TraceUnit

from .rig import START, Rig
from .test_loop import FLAT, flat_device


async def test_predicted_bus_time_matches_what_the_live_engine_then_measures() -> None:
    """Free riders at 2: resting ten flat registers longer, predicted and then measured.

    Unseeded, the replay's engine plans its first cycles with the default cost
    model (a request worth 50 registers), grows reads over the 91-address gap to
    the ramp and predicts about twice the bus time per request; seeded with the
    live samples it predicts what each request of the live engine then costs.
    """
    specs, functions = flat_device()
    rig = Rig(specs, functions, config=EngineConfig(rider_value=2.0), enabled=False)
    await rig.run_for(3600, tick=False)
    engine = rig.engine
    fitted = engine.fitted_cost_model()
    assert fitted is not None
    assert fitted.request_overhead / fitted.per_register < 20  # a request ~10 registers
    trace = rig.optimizer._trace(engine.snapshot(), 3600)  # noqa: SLF001
    assert trace is not None
    assert len(trace.cost_samples) == len(engine.cost_samples()) > 0
    changes = [
        Change("interval_bounds", f"1.{key}", None, [5.0, 600.0]) for key in FLAT
    ]
    state, tuning = engine.export_state(), engine.tuning()
    seeded = predict(trace, engine.config, state, tuning, [changes])[1]
    unseeded = predict(
        dataclasses.replace(trace, cost_samples=()),
        engine.config,
        state,
        tuning,
        [changes],
    )[1]

    apply_all(engine, changes)
    await rig.run_for(3600, tick=False)  # the registers climb to their new maximum
    counters = rig.transport.counters
    bus0, requests0 = counters.bus_time, counters.requests
    await rig.run_for(3600, tick=False)
    # per request: what the cost model decides (how far reads grow); the count of
    # requests differs by the ramp's reads, which the replay of its held samples
    # (kept every 5 minutes) cannot reproduce
    measured = (counters.bus_time - bus0) / (counters.requests - requests0)

    per_request = seeded.bus_time / seeded.requests
    assert abs(per_request / measured - 1) < 0.1, (per_request, measured)
    per_request = unseeded.bus_time / unseeded.requests
    assert per_request > 1.5 * measured, (per_request, measured)


def test_a_noisy_register_replays_as_noise_not_as_steps() -> None:
    """Held values of a noisy register come back with noise of the measured size.

    Only reads that changed a value are kept, so a noisy register's held values
    look like steps: a shadow engine reading faster than they were kept saw mostly
    repeats, found no noise and chased the "steps" at short intervals (8 s instead
    of 200-300 s, 2.4x the live engine's requests in the wrong-defaults scenario).
    """
    rng = random.Random(7)
    times = [START + 300.0 * k for k in range(13)]
    values = [50.0 + rng.gauss(0.0, 3.0 / math.sqrt(2.0)) for _ in times]
    spec = RegisterSpec("noisy", 1, Table.INPUT, 0, tolerance=1.0)
    t = {"now": START}
    plain = TraceUnit(1, [spec], {"noisy": (times, values)}, clock=lambda: t["now"])
    noisy = TraceUnit(
        1,
        [spec],
        {"noisy": (times, values)},
        clock=lambda: t["now"],
        noise={"noisy": 3.0},
    )
    reads_plain, reads_noisy = [], []
    for k in range(360):  # every 10 s for an hour
        t["now"] = START + 10.0 * k
        reads_plain.append(plain.value("noisy", t["now"]))
        reads_noisy.append(noisy.value("noisy", t["now"]))
    deltas = [b - a for a, b in itertools.pairwise(reads_noisy)]
    rms = math.sqrt(sum(d * d for d in deltas) / len(deltas))
    assert 2.4 < rms < 3.6  # the noise as measured (RMS of two reads' difference)
    repeats = sum(a == b for a, b in itertools.pairwise(reads_plain))
    assert repeats > 0.9 * len(deltas)  # without: steps every 300 s, flat between
    # the same read of the same replay gives the same value
    assert noisy.value("noisy", START + 10.0) == noisy.value("noisy", START + 10.0)
    # and around the held values' running mean, not on top of their own noise
    mean = sum(reads_noisy) / len(reads_noisy)
    assert abs(mean - sum(values) / len(values)) < 1.0
