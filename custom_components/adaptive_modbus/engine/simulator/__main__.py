"""Serve the simulated demo device as a real Modbus server until Ctrl-C.

adaptive-modbus-simulator --port 5020 --seed 42     (console script of the package)
python -m adaptive_modbus_engine.simulator --port 5020 --seed 42
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
import logging
import signal

from ..registers import Table
from .device import SimulatedDevice
from .server import ServerFramer, SimulatorServer

_LOGGER = logging.getLogger("adaptive_modbus.simulator")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(
        prog="adaptive-modbus-simulator",
        description="Serve the Adaptive Modbus demo device as a Modbus TCP server.",
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
        "--unit-id", type=int, default=1, help="Modbus unit id (default 1)"
    )
    parser.add_argument(
        "--framer",
        choices=[framer.value for framer in ServerFramer],
        default=ServerFramer.SOCKET.value,
        help="socket = Modbus TCP, rtu = RTU over TCP",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


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


async def serve(args: argparse.Namespace) -> None:
    """Run the server until SIGINT or SIGTERM."""
    device = SimulatedDevice(seed=args.seed, unit_id=args.unit_id)
    server = SimulatorServer(device, host=args.host, port=args.port, framer=args.framer)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _LOGGER.info(
        "Demo device '%s' (seed %s, unit %s): %d registers",
        device.profile.name,
        args.seed,
        args.unit_id,
        len(device.registers),
    )
    for line in register_summary(device):
        _LOGGER.info("  %s", line)
    async with server:
        _LOGGER.info(
            "Modbus simulator listening on %s (%s framer); Ctrl-C to stop",
            server.address,
            server.framer.value,
        )
        await stop.wait()
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
    try:
        asyncio.run(serve(args))
    except OSError as err:
        _LOGGER.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
