"""Serve the demo fleet, or replay a recorded trace, as a real Modbus server until Ctrl-C.

adaptive-modbus-simulator --port 5020 --seed 42     (console script of the package)
python -m adaptive_modbus_engine.simulator --port 5020 --seed 42
adaptive-modbus-simulator --replay log.csv --map map.yaml --speed 60 --port 5020
adaptive-modbus-simulator --timeline                (the fleet's scenario as JSON)

Without ``--replay`` it serves the demo fleet (heat pump on unit 1, grid meter on 2,
PV inverter on 3); ``--unit-id N`` serves the heat pump alone on unit N.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
import contextlib
import json
import logging
from pathlib import Path
import signal
import sys
from typing import Any

from ..register_map import RegisterMapError
from ..registers import Table
from .device import SimulatedDevice
from .fleet import Fleet
from .replay import TraceReplay, load_replay
from .server import ServerFramer, SimulatorServer
from .trace import TraceError

_LOGGER = logging.getLogger("adaptive_modbus.simulator")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(
        prog="adaptive-modbus-simulator",
        description=(
            "Serve the Adaptive Modbus demo fleet, or replay a recorded CSV trace,"
            " as a Modbus TCP server."
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=5020, help="TCP port, 0 = any free port"
    )
    parser.add_argument(
        "--seed", type=int, default=42, help="scenario seed (default 42)"
    )
    parser.add_argument(
        "--unit-id",
        type=int,
        default=None,
        help="serve the demo heat pump alone on this unit id (default: the whole "
        "fleet on units 1-3); with --replay the replayed unit's id (default 1)",
    )
    parser.add_argument(
        "--replay",
        type=Path,
        metavar="LOG.CSV",
        help="serve this trace (timestamp,key,value rows) instead of the demo",
    )
    parser.add_argument(
        "--map",
        type=Path,
        metavar="MAP.YAML",
        help="register map of the replayed keys (required with --replay)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="replay speed: trace seconds per real second (default 1)",
    )
    parser.add_argument(
        "--progress",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="show the replay's progress every SECONDS (default 10, 0 = never)",
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="print the demo fleet's devices and timeline as JSON and exit",
    )
    parser.add_argument(
        "--framer",
        choices=[framer.value for framer in ServerFramer],
        default=ServerFramer.SOCKET.value,
        help="socket = Modbus TCP, rtu = RTU over TCP",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if args.replay is not None and args.map is None:
        parser.error("--replay needs --map (the register map of the trace's keys)")
    if args.map is not None and args.replay is None:
        parser.error("--map only goes with --replay")
    if not args.speed > 0:
        parser.error(f"--speed must be above 0, got {args.speed:g}")
    return args


def register_summary(device: SimulatedDevice) -> list[str]:
    """Human-readable lines describing the device's register map."""
    per_table = Counter(spec.table for spec in device.registers)
    lines = []
    for table in Table:
        specs = [spec for spec in device.registers if spec.table is table]
        if not specs:
            continue
        space = device.address_space(table)
        holes = sorted(device.holes(table))
        writable = sum(1 for spec in specs if spec.writable)
        line = (
            f"{table.value:>8}: {per_table[table]:2d} registers at {space.start}-{space.stop - 1}"
            f", {writable} writable"
        )
        if holes:
            line += f", illegal address(es) {', '.join(map(str, holes))}"
        lines.append(line)
    return lines


def _describe(device: SimulatedDevice, what: str) -> None:
    _LOGGER.info(
        "%s '%s' (unit %s): %d registers",
        what,
        device.profile.name,
        device.unit_id,
        len(device.registers),
    )
    for line in register_summary(device):
        _LOGGER.info("  %s", line)


def _served(args: argparse.Namespace) -> tuple[Any, list[int], TraceReplay | None]:
    """Return the device to serve, its unit ids and the replay (if any); blocking."""
    if args.replay is not None:
        unit_id = 1 if args.unit_id is None else args.unit_id
        replay = load_replay(args.replay, args.map, unit_id=unit_id, speed=args.speed)
        _describe(replay.device, f"Replay of {args.replay} with {args.map}:")
        _LOGGER.info(
            "  %.0f s of trace at speed %g: %.0f s to the end",
            replay.duration,
            args.speed,
            replay.duration / args.speed,
        )
        return replay.device, [unit_id], replay
    if args.unit_id is not None:
        device = SimulatedDevice(seed=args.seed, unit_id=args.unit_id)
        _describe(device, f"Demo device (seed {args.seed})")
        return device, [args.unit_id], None
    fleet = Fleet(seed=args.seed)
    _LOGGER.info("Demo fleet (seed %s), units %s:", args.seed, fleet.unit_ids)
    for unit_id in fleet.unit_ids:
        member = fleet.device(unit_id)
        role = "problem child" if member.model.incident else "healthy"
        if member.model.read_limit is not None:
            role += f", at most {member.model.read_limit} registers per read"
        _describe(member, f"  ({role})")
    return fleet, fleet.unit_ids, None


async def _show_progress(
    replay: TraceReplay, server: SimulatorServer, every: float
) -> None:
    while True:
        progress = replay.progress()
        _LOGGER.info(
            "replay %s; %d requests served",
            progress.describe(),
            len(server.requests),
        )
        if progress.finished:
            return
        await asyncio.sleep(every)


async def serve(
    args: argparse.Namespace,
    served: tuple[Any, list[int], TraceReplay | None] | None = None,
) -> None:
    """Run the server until SIGINT or SIGTERM (``served``: from ``_served(args)``)."""
    device, unit_ids, replay = served if served is not None else _served(args)
    server = SimulatorServer(
        device, host=args.host, port=args.port, framer=args.framer, unit_ids=unit_ids
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        _LOGGER.info(
            "Modbus simulator listening on %s (%s framer); Ctrl-C to stop",
            server.address,
            server.framer.value,
        )
        progress = None
        if replay is not None:
            replay.restart()  # the trace's first second is now
        if replay is not None and args.progress > 0:
            progress = asyncio.create_task(
                _show_progress(replay, server, args.progress)
            )
        await stop.wait()
        if progress is not None:
            progress.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await progress
    _LOGGER.info("Modbus simulator stopped")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("pymodbus").setLevel(logging.WARNING)
    if args.timeline:
        json.dump(Fleet(seed=args.seed).describe(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    try:
        served = _served(args)  # files are read before the event loop starts
        asyncio.run(serve(args, served))
    except (TraceError, RegisterMapError) as err:
        where = args.map if isinstance(err, RegisterMapError) else args.replay
        _LOGGER.error("%s: %s", where, err)
        return 2
    except OSError as err:
        _LOGGER.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
