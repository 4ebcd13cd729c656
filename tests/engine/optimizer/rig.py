"""A simulated device in virtual time with an engine and its optimizer, for the loop tests.

The device serves each register from a function of time (:class:`FunctionUnit`, the
engine's sample-and-hold unit with ``value`` computed), behind the in-process
transport whose bus time moves the virtual clock; the driver is the engine
library's replay loop, ticking the optimizer after every cycle as the coordinator
does. Shadow replays run inline (virtual time stands still while they compute).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from adaptive_modbus_engine.audit import Actor, AuditEntry, AuditLog
from adaptive_modbus_engine.config import EngineConfig
from adaptive_modbus_engine.optimizer import Optimizer, Proposal
from adaptive_modbus_engine.registers import RegisterSpec, Table, Value
from adaptive_modbus_engine.replay import SampleHoldUnit, VirtualClock, drive
from adaptive_modbus_engine.scheduler import CycleResult, PollEngine
from adaptive_modbus_engine.simulator.inprocess import InProcessTransport

# Monday 2026-11-23 06:00 UTC
START = 1_795_413_600.0
USER = Actor.user("u-admin", "Admin")


class FunctionUnit(SampleHoldUnit):
    """A unit whose registers hold ``functions[key](t)``."""

    def __init__(
        self,
        specs: Sequence[RegisterSpec],
        functions: Mapping[str, Callable[[float], float]],
        *,
        clock: Callable[[], float],
        timeout_above: int | None = None,
    ) -> None:
        """Serve ``specs`` (unit 1) from ``functions`` by key."""
        super().__init__(1, specs, clock=clock, timeout_above=timeout_above)
        self.functions = dict(functions)

    def value(self, key: str, t: float) -> Value:
        """Return the function's value at ``t``."""
        return self.functions[key](t)


async def inline(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn`` at once: the executor in virtual time."""
    return fn(*args)


def input_specs(keys: Sequence[str], tolerance: float = 1.0) -> list[RegisterSpec]:
    """Return contiguous uint16 input registers of unit 1 with ``tolerance``."""
    return [
        RegisterSpec(key, 1, Table.INPUT, address, tolerance=tolerance)
        for address, key in enumerate(keys)
    ]


class Rig:
    """Device, transport, engine, audit log and optimizer on one virtual clock."""

    def __init__(
        self,
        specs: Sequence[RegisterSpec],
        functions: Mapping[str, Callable[[float], float]],
        *,
        timeout_above: int | None = None,
        config: EngineConfig | None = None,
        start: float = START,
        enabled: bool = True,
    ) -> None:
        """Build everything at ``start``."""
        self.clock = VirtualClock(start)
        self.unit = FunctionUnit(
            specs, functions, clock=self.clock.now, timeout_above=timeout_above
        )
        self.transport = InProcessTransport(
            cast("Any", [self.unit]),
            latency=lambda kind, unit, count: 0.02 + 0.002 * count,
            clock_advance=self.clock.advance,
            timeout=1.0,
        )
        self.engine = PollEngine(list(specs), self.transport, self.clock.now, config)
        self.audit = AuditLog(wall_clock=self.clock.now)
        self.optimizer = Optimizer(
            self.engine,
            audit=self.audit,
            clock=self.clock.now,
            wall_clock=self.clock.now,
            enabled=enabled,
        )
        # registers quiet for 20 minutes may rest longer (a day by default): the
        # tests run hours, not days
        self.optimizer.set_parameters_quietly("interval", {"quiet_for": 1200.0})
        self.results: list[Any] = []

    @property
    def now(self) -> float:
        """Virtual time now."""
        return self.clock.now()

    async def run_for(self, seconds: float, *, tick: bool = True) -> None:
        """Poll (and tick the optimizer) for ``seconds`` of virtual time."""

        async def on_cycle(result: CycleResult, shown_at: float) -> None:
            if tick:
                # the cycle reaches the loop through the engine's cycle listener
                ran = await self.optimizer.tick(shown_at, run_in_executor=inline)
                if ran is not None:
                    self.results.append(ran)

        end = self.now + seconds
        await drive(self.engine, self.clock, end, on_cycle=on_cycle)
        self.clock.advance_to(end)

    async def until_evaluated(self, limit: float = 4 * 3600.0) -> None:
        """Run until no evaluation is pending (at most ``limit`` seconds)."""
        end = self.now + limit
        while self.optimizer.evaluation is not None and self.now < end:
            await self.run_for(60.0)

    async def apply_proposed(
        self, kind: str, strategy: str, pick: Callable[[Proposal], bool]
    ) -> tuple[Proposal, int]:
        """Apply the first proposal of a dry run that ``pick`` accepts, as the loop does.

        The measurement, not the shadow replay's prediction, decides what happens
        next: the proposal goes out whatever it was predicted to do. Returns it
        and its audit id.
        """
        result = await self.optimizer.run(
            kind, strategy=strategy, dry_run=True, actor=USER, run_in_executor=inline
        )
        proposal = next(p for p in result.proposals if pick(p))
        return proposal, self.optimizer._apply(proposal, USER, self.now)  # noqa: SLF001

    def entry(self, audit_id: int) -> AuditEntry:
        """Return an audit entry that must exist."""
        entry = self.audit.get(audit_id)
        assert entry is not None
        return entry
