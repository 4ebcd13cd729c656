"""Build the pieces of one connection from its config entry.

A *hub* is one Modbus connection (TCP gateway, RTU-over-TCP gateway, serial line,
or the built-in demo device): its transport, its register definitions per unit id,
the poll engine that drives them and, for the demo, the simulator server that
HA talks to over real Modbus TCP on loopback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
import contextlib
import dataclasses
from dataclasses import dataclass, field
from functools import partial
import logging
import time
from typing import Any

from homeassistant.util import dt as dt_util

from .const import (
    CONF_ADAPTIVE,
    CONF_BAUDRATE,
    CONF_BYTESIZE,
    CONF_CLOSE_AFTER_CYCLE,
    CONF_CONNECTION,
    CONF_DEFAULT_TOLERANCE,
    CONF_DEVICES,
    CONF_FIXED_INTERVAL,
    CONF_HOST,
    CONF_MAX_INTERVAL,
    CONF_MAX_REGISTERS,
    CONF_MIN_INTERVAL,
    CONF_NAME,
    CONF_PARITY,
    CONF_PAUSE,
    CONF_PORT,
    CONF_PROFILE,
    CONF_REGISTER_MAP,
    CONF_SEED,
    CONF_SERIAL_PORT,
    CONF_STOPBITS,
    CONF_SUBENTRY_ID,
    CONF_TIMEOUT,
    CONF_UNIT_ID,
    CONF_VIEWED_FACTOR,
    CONNECTION_DEMO,
    CONNECTION_RTU_OVER_TCP,
    CONNECTION_SERIAL,
    DEFAULT_BAUDRATE,
    DEFAULT_FIXED_INTERVAL,
    DEFAULT_MAX_INTERVAL,
    DEFAULT_MAX_REGISTERS,
    DEFAULT_MIN_INTERVAL,
    DEFAULT_PAUSE,
    DEFAULT_PORT,
    DEFAULT_SEED,
    DEFAULT_TIMEOUT,
    DEFAULT_TOLERANCE,
    DEFAULT_UNIT_ID,
    DEFAULT_VIEWED_FACTOR,
    NAME,
    PROFILE_CUSTOM,
    PROFILE_DEMO,
    SUBENTRY_DEVICE,
)
from .engine.planner import DeviceLimits
from .engine.register_map import (
    Profile,
    RegisterDefinition,
    RegisterMapError,
    load_profile,
    parse_profile,
)
from .engine.scheduler import EngineConfig, PollEngine
from .engine.transport import PymodbusTransport, TransportConfig, TransportKind

_LOGGER = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def wall_clock() -> float:
    """Return wall time, the engine's clock (looked up on each call: tests freeze it)."""
    return time.time()


def monotonic_clock() -> float:
    """Return the transport's backoff clock (looked up on each call: tests freeze it)."""
    return time.monotonic()


@dataclass(frozen=True, slots=True)
class UnitInfo:
    """One Modbus unit (an HA device) on the connection."""

    unit_id: int
    name: str
    manufacturer: str | None
    model: str | None
    max_registers: int | None
    definitions: tuple[RegisterDefinition, ...]
    # the device's config subentry (None before migration)
    subentry_id: str | None = None


@dataclass(frozen=True, slots=True)
class HubSettings:
    """Everything the hub needs, read from entry data and options (pure)."""

    connection: str
    transport: TransportConfig
    engine: EngineConfig
    seed: int
    devices: tuple[Mapping[str, Any], ...]

    @property
    def timeout(self) -> float:
        """Request / connect timeout in seconds."""
        return self.transport.timeout


def _float(options: Mapping[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    return float(value) if value is not None else default


def transport_from_entry(
    data: Mapping[str, Any], options: Mapping[str, Any]
) -> TransportConfig:
    """Return the connection settings of an entry (the config flow validates with them)."""
    connection = str(data.get(CONF_CONNECTION, CONNECTION_DEMO))
    timeout = _float(options, CONF_TIMEOUT, DEFAULT_TIMEOUT)
    common: dict[str, Any] = {
        "timeout": timeout,
        "pause": _float(options, CONF_PAUSE, DEFAULT_PAUSE),
        "close_after_cycle": bool(options.get(CONF_CLOSE_AFTER_CYCLE, False)),
        # reconnect quickly relative to the request timeout, never slower than a minute
        "reconnect_min": min(1.0, max(timeout, 0.1)),
    }
    if connection == CONNECTION_SERIAL:
        transport = TransportConfig(
            kind=TransportKind.SERIAL,
            serial_port=str(data.get(CONF_SERIAL_PORT, "")),
            baudrate=int(data.get(CONF_BAUDRATE, DEFAULT_BAUDRATE)),
            bytesize=int(data.get(CONF_BYTESIZE, 8)),
            parity=str(data.get(CONF_PARITY, "N")),
            stopbits=int(data.get(CONF_STOPBITS, 1)),
            **common,
        )
    elif connection == CONNECTION_DEMO:
        # the port is only known once the simulator server listens
        transport = TransportConfig(
            kind=TransportKind.TCP, host=LOOPBACK, port=0, **common
        )
    else:
        kind = (
            TransportKind.RTU_OVER_TCP
            if connection == CONNECTION_RTU_OVER_TCP
            else TransportKind.TCP
        )
        transport = TransportConfig(
            kind=kind,
            host=str(data.get(CONF_HOST, LOOPBACK)),
            port=int(data.get(CONF_PORT, DEFAULT_PORT)),
            **common,
        )
    return transport


def entry_devices(entry: Any) -> tuple[dict[str, Any], ...]:
    """Return the devices of a config entry: one per device subentry, by unit id.

    ``entry`` is a ConfigEntry (duck-typed: ``subentries`` and ``data``). Each device
    dict is the subentry's data plus its ``subentry_id``. An entry without device
    subentries (stored before they existed) falls back to ``data[devices]``.
    """
    devices = [
        {**subentry.data, CONF_SUBENTRY_ID: subentry.subentry_id}
        for subentry in getattr(entry, "subentries", {}).values()
        if subentry.subentry_type == SUBENTRY_DEVICE
    ]
    if not devices:
        devices = [dict(device) for device in entry.data.get(CONF_DEVICES) or ()]
    return tuple(sorted(devices, key=lambda device: int(device.get(CONF_UNIT_ID, 0))))


def settings_from_entry(
    data: Mapping[str, Any],
    options: Mapping[str, Any],
    devices: tuple[Mapping[str, Any], ...] | None = None,
) -> HubSettings:
    """Turn config entry data/options into hub settings (defaults from const.py).

    ``devices`` comes from :func:`entry_devices`; without it, ``data[devices]``.
    """
    connection = str(data.get(CONF_CONNECTION, CONNECTION_DEMO))
    transport = transport_from_entry(data, options)
    if devices is None:
        devices = tuple(data.get(CONF_DEVICES) or ())
    if not devices and connection == CONNECTION_DEMO:
        devices = ({CONF_UNIT_ID: DEFAULT_UNIT_ID, CONF_PROFILE: PROFILE_DEMO},)
    max_registers = int(options.get(CONF_MAX_REGISTERS, DEFAULT_MAX_REGISTERS))
    min_interval = _float(options, CONF_MIN_INTERVAL, DEFAULT_MIN_INTERVAL)
    max_interval = max(
        min_interval, _float(options, CONF_MAX_INTERVAL, DEFAULT_MAX_INTERVAL)
    )
    engine = EngineConfig(
        min_interval=min_interval,
        max_interval=max_interval,
        default_tolerance=_float(options, CONF_DEFAULT_TOLERANCE, DEFAULT_TOLERANCE),
        adaptive=bool(options.get(CONF_ADAPTIVE, True)),
        fixed_interval=_float(options, CONF_FIXED_INTERVAL, DEFAULT_FIXED_INTERVAL),
        viewed_factor=min(
            1.0,
            max(0.01, _float(options, CONF_VIEWED_FACTOR, DEFAULT_VIEWED_FACTOR)),
        ),
        limits={
            int(dev.get(CONF_UNIT_ID, DEFAULT_UNIT_ID)): DeviceLimits(
                max_registers=max_registers
            )
            for dev in devices
        },
    )
    return HubSettings(
        connection=connection,
        transport=transport,
        engine=engine,
        seed=int(data.get(CONF_SEED, DEFAULT_SEED)),
        devices=devices,
    )


def device_profile(device: Mapping[str, Any]) -> Profile:
    """Return a device's profile: a shipped one, or its custom map.

    A custom map keeps its own ``name``, ``manufacturer``, ``model`` and
    ``max_registers``. Blocking: run it in the executor.
    """
    unit_id = int(device.get(CONF_UNIT_ID, DEFAULT_UNIT_ID))
    profile_id = str(device.get(CONF_PROFILE, PROFILE_CUSTOM))
    if profile_id == PROFILE_CUSTOM:
        text = str(device.get(CONF_REGISTER_MAP, ""))
        profile = parse_profile(PROFILE_CUSTOM, text, unit_id)
        if profile.name == PROFILE_CUSTOM:  # the map names no device
            profile = dataclasses.replace(profile, name=f"Modbus unit {unit_id}")
        return profile
    return load_profile(profile_id, unit_id)


def load_units(settings: HubSettings) -> list[UnitInfo]:
    """Read every device's register map. Blocking (profile files): run in an executor."""
    units: list[UnitInfo] = []
    for device in settings.devices:
        try:
            profile = device_profile(device)
        except RegisterMapError as err:
            name = device.get(CONF_NAME) or f"unit {device.get(CONF_UNIT_ID)}"
            where = f"device '{name}' (unit {device.get(CONF_UNIT_ID)})"
            raise RegisterMapError(
                f"{where}: {err.message}", err.field, err.line
            ) from err
        limit = profile.max_registers
        units.append(
            UnitInfo(
                unit_id=int(device.get(CONF_UNIT_ID, DEFAULT_UNIT_ID)),
                name=str(device.get(CONF_NAME) or profile.name),
                manufacturer=profile.manufacturer,
                model=profile.model,
                max_registers=limit if limit is not None and limit >= 1 else None,
                definitions=profile.registers,
                subentry_id=device.get(CONF_SUBENTRY_ID),
            )
        )
    return units


def _limits(settings: HubSettings, units: list[UnitInfo]) -> EngineConfig:
    """Device limits: the smaller of the option and the profile's (or map's) own limit.

    Applied per unit through ``EngineConfig.limits``; where the engine also has a
    per-unit ``unit_max_registers`` mapping, the same limits are passed there too.
    """
    limits = dict(settings.engine.limits)
    for unit in units:
        current = limits.get(unit.unit_id, DeviceLimits())
        if (
            unit.max_registers is not None
            and unit.max_registers < current.max_registers
        ):
            limits[unit.unit_id] = dataclasses.replace(
                current, max_registers=unit.max_registers
            )
    extra: dict[str, Any] = {}
    if "unit_max_registers" in {f.name for f in dataclasses.fields(EngineConfig)}:
        extra["unit_max_registers"] = {
            unit_id: limit.max_registers for unit_id, limit in limits.items()
        }
    return dataclasses.replace(settings.engine, limits=limits, **extra)


@dataclass
class Hub:
    """One connection: transport, engine, units and (demo only) the simulator server."""

    title: str
    settings: HubSettings
    units: list[UnitInfo]
    transport: PymodbusTransport
    engine: PollEngine
    clock: Callable[[], float]
    server: Any | None = None  # SimulatorServer for the demo connection
    # engine uid ("<unit>.<key>") -> (unit id, definition)
    definitions: dict[str, tuple[int, RegisterDefinition]] = field(default_factory=dict)

    async def async_close(self) -> None:
        """Close the connection and stop the demo server; never raises."""
        with contextlib.suppress(Exception):
            await self.transport.close()
        if self.server is not None:
            server, self.server = self.server, None
            try:
                await server.stop()
            except Exception:
                _LOGGER.exception("Stopping the demo Modbus server failed")


async def _start_demo_server(seed: int, clock: Callable[[], float]) -> Any:
    """Serve the demo fleet (heat pump, grid meter, PV inverter) on loopback."""
    # imported here: the simulator is only needed for the demo connection
    from .engine.simulator.fleet import Fleet  # noqa: PLC0415
    from .engine.simulator.server import SimulatorServer  # noqa: PLC0415

    # the devices read their profile files: not in the event loop
    loop = asyncio.get_running_loop()
    fleet = await loop.run_in_executor(None, partial(Fleet, seed=seed, clock=clock))
    server = SimulatorServer(fleet, host=LOOPBACK, port=0, unit_ids=fleet.unit_ids)
    await server.start()
    return server


def demo_fleet(hub: Hub) -> dict[str, Any] | None:
    """Return what the demo fleet does and when (None off the demo connection).

    The fleet's devices and timeline (phases in scenario seconds, see the engine's
    ``simulator.fleet``), the scenario time now and each member's phase now.
    """
    fleet = getattr(hub.server, "device", None)
    describe = getattr(fleet, "describe", None)
    if fleet is None or describe is None:
        return None
    info: dict[str, Any] = describe()
    now = hub.clock()
    info["scenario_time"] = round(now - fleet.start, 3)
    info["phase_now"] = {
        str(unit_id): fleet.device(unit_id).phase(now).value
        for unit_id in fleet.unit_ids
    }
    return info


async def async_build_hub(
    title: str,
    settings: HubSettings,
    units: list[UnitInfo],
    clock: Callable[[], float] | None = None,
) -> Hub:
    """Create transport and engine (and start the demo server); nothing is connected yet.

    ``clock`` (wall time) drives the engine and the demo device; the module-level
    ``wall_clock`` / ``monotonic_clock`` are looked up here so tests can swap them.
    """
    clock = clock or wall_clock
    server: Any | None = None
    transport_config = settings.transport
    if settings.connection == CONNECTION_DEMO:
        server = await _start_demo_server(settings.seed, clock)
        transport_config = dataclasses.replace(transport_config, port=int(server.port))
    try:
        transport = PymodbusTransport(transport_config, clock=monotonic_clock)
        engine = PollEngine(
            [d.spec for unit in units for d in unit.definitions],
            transport,
            clock,  # time-of-week patterns in HA's time zone (set and kept current by HA):
            dataclasses.replace(
                _limits(settings, units), tz=dt_util.get_default_time_zone()
            ),
            monotonic=monotonic_clock if clock is wall_clock else clock,
        )
    except BaseException:
        if server is not None:
            await asyncio.shield(server.stop())
        raise
    definitions = {
        d.spec.uid: (unit.unit_id, d) for unit in units for d in unit.definitions
    }
    return Hub(
        title=title or NAME,
        settings=settings,
        units=units,
        transport=transport,
        engine=engine,
        clock=clock,
        server=server,
        definitions=definitions,
    )
