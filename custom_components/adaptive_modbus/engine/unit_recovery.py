"""Units that stop answering: parked, probed on a short bounded backoff, brought back.

A unit whose reads in a cycle all fail with timeouts or connection errors is down.
Its registers are parked (not retried one by one) and a single probe, its smallest
read, runs ``UNIT_PROBE_FIRST`` s later, then at doubling intervals up to
``UNIT_PROBE_MAX`` s. The moment a probe answers (even with a Modbus exception),
every register of the unit is due at once: values return at most
``UNIT_PROBE_MAX`` s (plus one cycle) after the device does, and a 10 min outage
costs about 25 requests per unit. Each transition is reported once, so a caller
can log "down" and "back" once.

A unit parked because the connection failed (connect refused, link lost: its reads
failed with connection errors only) is parked the same way, but it is not logged as
"not answering": the transport logs the connection once, and a connection blip must
not log every unit again. Such a unit is logged when a probe finds it silent on a
working connection (a timeout), and its return only if its silence was logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import logging
import math

from .bus import CycleState
from .core import EngineCore
from .errors import ErrorKind, ModbusError
from .registry import RegisterState, single_read
from .schedule import BATCH_WINDOW

_LOGGER = logging.getLogger(__name__)

UNIT_PROBE_FIRST = 5.0
UNIT_PROBE_MAX = 30.0
SILENT_KINDS = frozenset({ErrorKind.TIMEOUT, ErrorKind.CONNECTION})


@dataclass
class UnitDown:
    """A unit that stopped answering (engine time)."""

    since: float
    next_probe: float
    backoff: float = UNIT_PROBE_FIRST
    probes: int = 0
    logged: bool = False  # "not answering" was logged (not only the connection failed)


class UnitRecovery:
    """The units that are down (``down``), their probes and their return."""

    def __init__(self, core: EngineCore) -> None:
        """Start with every unit up."""
        self._core = core
        self._regs = core.registry.regs
        self.down: dict[int, UnitDown] = {}

    def next_probe(self) -> float:
        """Engine time of the earliest probe (inf when no unit is down)."""
        due = math.inf
        for down in self.down.values():
            due = min(due, down.next_probe)
        return due

    def probe_soon(self, unit: int, now: float) -> None:
        """Make a down unit's probe due by ``now`` (a read of its register was asked)."""
        down = self.down.get(unit)
        if down is not None:
            down.next_probe = min(down.next_probe, now)

    def note_silent(
        self, now: float, cycle: CycleState, answered_before: Mapping[int, int]
    ) -> set[int]:
        """Take down the units that were silent this cycle; return them.

        Units that failed only with timeouts / connection errors and read nothing go
        down: their registers are parked and one probe runs on a short bounded
        backoff instead.
        """
        if not cycle.failed:
            return set()
        answered_after = self._core.stats.unit_reads()
        kinds: dict[int, set[ErrorKind]] = {}
        for error in cycle.errors:
            kinds.setdefault(error.unit_id, set()).add(error.kind)
        failed_units = {self._regs[uid].spec.unit_id for uid in cycle.failed}
        went_down: set[int] = set()
        for unit in failed_units:
            if unit in self.down:
                continue
            if answered_after.get(unit, 0) > answered_before.get(unit, 0):
                continue
            unit_kinds = kinds.get(unit)
            silent = (
                cycle.connection_lost
                if unit_kinds is None
                else unit_kinds <= SILENT_KINDS
            )
            if not silent:
                continue
            down = UnitDown(since=now, next_probe=now + UNIT_PROBE_FIRST)
            self.down[unit] = down
            went_down.add(unit)
            if unit_kinds is not None and ErrorKind.TIMEOUT in unit_kinds:
                _log_silent(unit, down, unit_kinds)
        return went_down

    def _probe_register(self, unit: int) -> RegisterState | None:
        """Return a unit's cheapest read: its smallest enabled, unquarantined register."""
        enabled = [
            self._regs[uid] for uid in self._core.registry.unit_uids.get(unit, ())
        ]
        enabled = [reg for reg in enabled if reg.enabled]
        # only quarantined registers left: probe one of them (else they stay parked)
        candidates = [
            reg for reg in enabled if reg.quarantined_until is None
        ] or enabled
        if not candidates:
            return None
        return min(
            candidates, key=lambda r: (r.spec.size, r.spec.table.value, r.spec.address)
        )

    async def probe_due(self, now: float, cycle: CycleState) -> set[int]:
        """Probe the down units whose probe is due; return the units back up.

        A unit that answers (even with a Modbus exception) is back: all its registers
        are due at once.
        """
        back: set[int] = set()
        for unit, down in list(self.down.items()):
            if down.next_probe > now + BATCH_WINDOW:
                continue
            reg = self._probe_register(unit)
            if cycle.connection_lost or reg is None:
                if reg is None:  # nothing left to read there
                    del self.down[unit]
                else:
                    down.next_probe = now + down.backoff
                continue
            down.probes += 1
            await self._core.bus.connect_for_probe()
            result = await self._core.bus.read(single_read(reg.spec), cycle)
            t = self._core.clock.now()
            if isinstance(result, ModbusError) and result.kind in SILENT_KINDS:
                if result.kind is ErrorKind.CONNECTION:
                    cycle.connection_lost = True
                elif not down.logged:  # the connection works, the unit is silent
                    _log_silent(unit, down, {result.kind})
                down.backoff = min(down.backoff * 2, UNIT_PROBE_MAX)
                down.next_probe = t + down.backoff
                for uid in self._core.registry.unit_uids[unit]:
                    parked = self._regs[uid]
                    if parked.enabled:
                        parked.failure_streak += 1
                        cycle.failed.add(uid)
                continue
            del self.down[unit]
            back.add(unit)
            _LOGGER.log(
                logging.WARNING if down.logged else logging.DEBUG,
                "Modbus unit %s answers again after %.0f s; reading all its registers",
                unit,
                t - down.since,
            )
            for uid in self._core.registry.unit_uids[unit]:
                parked = self._regs[uid]
                # the first read after an outage is news for entities, not a rate sample
                parked.model.forget_baseline()
                if parked.enabled:
                    until = parked.quarantined_until
                    self._core.schedule.due_at(
                        parked, until if until is not None and until > t else now
                    )
        return back


def _log_silent(unit: int, down: UnitDown, kinds: set[ErrorKind]) -> None:
    """Log once that a unit is not answering (and why)."""
    down.logged = True
    _LOGGER.warning(
        "Modbus unit %s is not answering (%s); probing it every %.0f-%.0f s",
        unit,
        ", ".join(sorted(kinds)),
        UNIT_PROBE_FIRST,
        UNIT_PROBE_MAX,
    )
