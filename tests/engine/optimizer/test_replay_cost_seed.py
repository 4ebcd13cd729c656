"""The shadow replay plans with the live engine's fitted cost model from its first cycle."""

from __future__ import annotations

import dataclasses

from adaptive_modbus_engine.config import EngineConfig
from adaptive_modbus_engine.optimizer import Change
from adaptive_modbus_engine.optimizer.changes import apply_all
from adaptive_modbus_engine.optimizer.loop import predict

from .rig import Rig
from .test_loop import FLAT, flat_device


async def test_predicted_bus_time_matches_what_the_live_engine_then_measures() -> None:
    """Free riders at 2: resting ten flat registers longer, predicted and then measured.

    Unseeded, the replay's engine plans its first cycles with the default cost
    model (a request worth 50 registers), grows reads over the 91-address gap to
    the ramp and predicts about twice the bus time; seeded with the live samples it
    predicts what the live engine then spends.
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
    bus0 = counters.bus_time
    await rig.run_for(3600, tick=False)
    measured = counters.bus_time - bus0

    assert abs(seeded.bus_time / measured - 1) < 0.2, (seeded.bus_time, measured)
    assert unseeded.bus_time > 1.5 * measured, (unseeded.bus_time, measured)
