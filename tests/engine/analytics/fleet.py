"""The demo device polled in virtual time, feeding an :class:`Analytics`."""

from __future__ import annotations

from collections.abc import Callable

from adaptive_modbus_engine.analytics import Analytics, Anomaly
from adaptive_modbus_engine.config import EngineConfig
from adaptive_modbus_engine.errors import ModbusError
from adaptive_modbus_engine.registers import Table
from adaptive_modbus_engine.replay import VirtualClock
from adaptive_modbus_engine.scheduler import PollEngine
from adaptive_modbus_engine.simulator.device import SimulatedDevice
from adaptive_modbus_engine.simulator.inprocess import InProcessTransport

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC, a Thursday
LATENCY = 0.002  # s per request, plus 0.1 ms per register


class FaultyTransport(InProcessTransport):
    """The in-process bus, with a switchable fault per request (None: answer)."""

    fault: Callable[[int, Table, int, int], ModbusError | None] | None = None

    async def read(
        self, unit_id: int, table: Table, address: int, count: int
    ) -> list[int]:
        """Fail the read when ``fault`` says so (costing the bus time a timeout takes)."""
        if self.fault is not None:
            error = self.fault(unit_id, table, address, count)
            if error is not None:
                self.counters.requests += 1
                if self.clock_advance is not None:
                    self.clock_advance(
                        self.timeout if "timeout" in str(error) else LATENCY
                    )
                raise error
        return await super().read(unit_id, table, address, count)


class Run:
    """The demo device (seed 42) polled in virtual time with analytics after each cycle."""

    def __init__(
        self,
        analytics: Analytics | None = None,
        *,
        max_read_words: int | None = None,
        config: EngineConfig | None = None,
        latency: Callable[[int], float] | None = None,
    ) -> None:
        """Poll the demo from ``T0`` (the start of a stable phase)."""
        self.clock = VirtualClock(T0)
        self.device = SimulatedDevice(seed=42, clock=self.clock.now, start=T0)
        if max_read_words is not None:
            self.device.max_read_words = max_read_words
        self.extra_latency = latency or (lambda _count: 0.0)
        self.transport = FaultyTransport(
            self.device,
            latency=lambda _kind, _unit, count: (
                LATENCY + 0.0001 * count + self.extra_latency(count)
            ),
            clock_advance=self._advance,
            timeout=1.0,
        )
        self.engine = PollEngine(
            self.device.registers,
            self.transport,
            self.clock.now,
            config or EngineConfig(min_interval=5, max_interval=300, fixed_interval=15),
        )
        self.analytics = analytics or Analytics()
        self.anomalies: list[Anomaly] = []

    def _advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    async def run_until(self, until: float) -> None:
        """Run every cycle due up to ``until`` (wall time), feeding the analytics."""
        while (due := self.engine.next_due()) <= until:
            self.clock.advance_to(due)
            result = await self.engine.poll_due()
            self.anomalies += self.analytics.observe(result, self.engine.snapshot())
        self.clock.advance_to(until)

    def uid(self, key: str) -> str:
        """Engine uid of a demo key."""
        return self.device.spec(key).uid
