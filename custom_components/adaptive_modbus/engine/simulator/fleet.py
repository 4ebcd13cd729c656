"""The demo fleet: three simulated devices on one connection, and what happens when.

========= ================= ========================================================
unit id   device            behaviour
========= ================= ========================================================
1         demo heat pump    the **problem child**: goes through the incident every
                            cycle (stable -> escalation -> peak -> recovery); input
                            register 10 is an illegal-address hole
2         demo grid meter   healthy; answers at most **20 registers per read** and
                            refuses larger reads with exception 3 (its map does not
                            say so: the engine has to learn it)
3         demo PV inverter  healthy
========= ================= ========================================================

All three share one seed (42 by default) and one scenario start, so the fleet is
reproducible: same seed and scenario time, same values. :meth:`Fleet.timeline`
is the machine-readable account of the scenario (phase names, start and end in
scenario seconds, which device); :meth:`Fleet.describe` adds the devices.

    fleet = Fleet(seed=42)
    async with SimulatorServer(fleet, unit_ids=fleet.unit_ids) as server: ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
import time
from typing import Any, Final

from ..errors import EngineUsageError, ModbusTimeout
from ..registers import RegisterSpec, Table
from . import signals
from .device import GRID_METER, HEAT_PUMP, PV_INVERTER, DeviceModel, SimulatedDevice


@dataclass(frozen=True, slots=True)
class FleetMember:
    """One device of the fleet: its unit id, model and display name."""

    unit_id: int
    model: DeviceModel
    name: str


FLEET: Final[tuple[FleetMember, ...]] = (
    FleetMember(1, HEAT_PUMP, "Demo heat pump"),
    FleetMember(2, GRID_METER, "Demo grid meter"),
    FleetMember(3, PV_INVERTER, "Demo PV inverter"),
)
"""The demo fleet, by unit id."""


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One phase of one device: ``[start, end)`` in scenario seconds."""

    unit_id: int
    device: str
    phase: str
    start: float
    end: float
    cycle: int


class Fleet:
    """The demo fleet as one served device: requests are routed by unit id.

    Implements the server's ``ServedDevice`` protocol (read, write_registers,
    write_coil); a unit id no member answers to gets no answer. ``devices`` are
    the members' :class:`SimulatedDevice` objects (e.g. for ``InProcessTransport``).
    """

    def __init__(
        self,
        seed: int = 42,
        clock: Callable[[], float] = time.time,
        start: float | None = None,
        members: Sequence[FleetMember] = FLEET,
    ) -> None:
        """Build every member with ``seed``, one ``clock`` and one scenario ``start``."""
        self.seed = seed
        self.start = clock() if start is None else start
        self.members: tuple[FleetMember, ...] = tuple(members)
        self.devices: dict[int, SimulatedDevice] = {}
        for member in self.members:
            if member.unit_id in self.devices:
                raise EngineUsageError(
                    f"two fleet members answer to unit {member.unit_id}"
                )
            self.devices[member.unit_id] = SimulatedDevice(
                seed, clock, member.unit_id, self.start, member.model
            )

    @property
    def unit_ids(self) -> list[int]:
        """Unit ids of the members, ascending."""
        return sorted(self.devices)

    @property
    def problem_child(self) -> SimulatedDevice:
        """The member that goes through the incident."""
        return next(d for d in self.devices.values() if d.model.incident)

    def device(self, unit_id: int) -> SimulatedDevice:
        """Return the member at ``unit_id`` (``KeyError`` if none)."""
        return self.devices[unit_id]

    def registers_for(self, unit_id: int) -> tuple[RegisterSpec, ...]:
        """Register specs of the member at ``unit_id`` (none for an unknown unit)."""
        device = self.devices.get(unit_id)
        return () if device is None else device.registers

    # -- requests (ServedDevice) ---------------------------------------------------

    def _route(self, unit_id: int) -> SimulatedDevice:
        device = self.devices.get(unit_id)
        if device is None:
            raise ModbusTimeout(f"no answer from unit {unit_id}", unit_id=unit_id)
        return device

    def read(self, unit_id: int, table: Table, address: int, count: int) -> list[int]:
        """Read from the member at ``unit_id``."""
        return self._route(unit_id).read(unit_id, table, address, count)

    def write_registers(
        self, unit_id: int, address: int, values: Sequence[int]
    ) -> None:
        """Write holding registers of the member at ``unit_id``."""
        self._route(unit_id).write_registers(unit_id, address, values)

    def write_coil(self, unit_id: int, address: int, value: bool) -> None:
        """Switch a coil of the member at ``unit_id``."""
        self._route(unit_id).write_coil(unit_id, address, value)

    # -- metadata ----------------------------------------------------------------------

    def timeline(self, cycles: int = 1) -> list[TimelineEntry]:
        """Return what happens when, for ``cycles`` scenario cycles from scenario time 0.

        The problem child has the four phases of each cycle; a healthy member one
        ``stable`` entry per cycle. Sorted by start, then unit id.
        """
        entries: list[TimelineEntry] = []
        for cycle in range(cycles):
            for member in self.members:
                if member.model.incident:
                    for phase in signals.Phase:
                        start = signals.phase_start(phase, cycle)
                        entries.append(
                            TimelineEntry(
                                member.unit_id,
                                member.name,
                                phase.value,
                                start,
                                start + signals.phase_length(phase),
                                cycle,
                            )
                        )
                else:
                    start = cycle * signals.CYCLE_SECONDS
                    entries.append(
                        TimelineEntry(
                            member.unit_id,
                            member.name,
                            signals.Phase.STABLE.value,
                            start,
                            start + signals.CYCLE_SECONDS,
                            cycle,
                        )
                    )
        return sorted(entries, key=lambda entry: (entry.start, entry.unit_id))

    def describe(self, cycles: int = 1) -> dict[str, Any]:
        """Fleet metadata as plain JSON-able data: seed, devices, timeline."""
        return {
            "seed": self.seed,
            "cycle_seconds": signals.CYCLE_SECONDS,
            "devices": [
                _describe_member(member, self.devices[member.unit_id])
                for member in self.members
            ],
            "timeline": [asdict(entry) for entry in self.timeline(cycles)],
        }


def _describe_member(member: FleetMember, device: SimulatedDevice) -> dict[str, Any]:
    holes: Mapping[Table, Iterable[int]] = member.model.holes
    return {
        "unit_id": member.unit_id,
        "name": member.name,
        "model": member.model.model_id,
        "profile": member.model.profile_id,
        "problem_child": member.model.incident,
        "read_limit": member.model.read_limit,
        "over_limit": member.model.over_limit.value
        if member.model.read_limit is not None
        else None,
        "holes": {
            table.value: sorted(addresses)
            for table, addresses in holes.items()
            if addresses
        },
        "registers": len(device.registers),
    }
