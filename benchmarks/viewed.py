"""What demand-driven polling costs: requests per minute on the demo device, viewed or not.

Drives the real engine on the demo device in virtual time (in-process transport):
a warm-up so the intervals are learned, then the same length of time three ways in a
row: nobody watching, one live view on the unit, nobody again (relaxed). Run with
``python -m benchmarks.viewed`` (prints the figures the README quotes).
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass

from adaptive_modbus_engine.replay import VirtualClock
from adaptive_modbus_engine.scheduler import EngineConfig, PollEngine
from adaptive_modbus_engine.simulator.device import SimulatedDevice
from adaptive_modbus_engine.simulator.inprocess import InProcessTransport


@dataclass(frozen=True, slots=True)
class ViewedCost:
    """Requests per minute of each phase, and the registers' longest interval in each."""

    unviewed: float
    viewed: float
    relaxed: float
    longest_unviewed: float
    longest_viewed: float
    longest_relaxed: float

    @property
    def extra(self) -> float:
        """Extra requests per minute while viewed."""
        return self.viewed - self.unviewed


async def measure(
    *,
    seed: int = 42,
    warmup: float = 3 * 3600.0,
    phase: float = 3600.0,
    factor: float = 0.25,
    config: EngineConfig | None = None,
) -> ViewedCost:
    """Run warm-up, then ``phase`` seconds unviewed, viewed and relaxed."""
    clock = VirtualClock()
    device = SimulatedDevice(seed=seed, clock=clock.now, start=0.0)
    transport = InProcessTransport(device)
    engine = PollEngine(
        device.registers,
        transport,
        clock.now,
        config or EngineConfig(viewed_factor=factor),
    )

    async def run(until: float) -> tuple[float, float]:
        start, requests, longest = clock.now(), transport.counters.requests, 0.0
        while (due := engine.next_due()) <= until:
            clock.advance_to(due)
            await engine.poll_due()
            longest = max(
                longest,
                *(r.effective_interval for r in engine.snapshot().registers.values()),
            )
        clock.advance_to(until)
        minutes = (clock.now() - start) / 60.0
        return (transport.counters.requests - requests) / minutes, longest

    await run(warmup)
    unviewed, longest_unviewed = await run(warmup + phase)
    with engine.viewing(device.unit_id):
        viewed, longest_viewed = await run(warmup + 2 * phase)
    relaxed, longest_relaxed = await run(warmup + 3 * phase)
    return ViewedCost(
        unviewed,
        viewed,
        relaxed,
        longest_unviewed,
        longest_viewed,
        longest_relaxed,
    )


def main() -> None:
    """Print the cost for a few seeds."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--factor", type=float, default=0.25)
    args = parser.parse_args()
    for seed in range(42, 42 + args.seeds):
        cost = asyncio.run(measure(seed=seed, factor=args.factor))
        print(  # noqa: T201 - a command-line report
            f"seed {seed}: {cost.unviewed:.2f} req/min unviewed,"
            f" {cost.viewed:.2f} viewed (+{cost.extra:.2f}),"
            f" {cost.relaxed:.2f} relaxed; longest interval"
            f" {cost.longest_unviewed:g} / {cost.longest_viewed:g}"
            f" / {cost.longest_relaxed:g} s"
        )


if __name__ == "__main__":
    main()
