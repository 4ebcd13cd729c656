"""A fault-injecting Modbus TCP proxy for the reliability suite (loopback only).

It sits between a real client (the engine's pymodbus transport) and a real server
(the simulator) and, switchable at run time from the test, drops the connection,
black-holes requests (accepts, never answers), delays answers, rewrites the unit id or
transaction id of an answer, truncates it, answers garbage, answers any Modbus
exception code on chosen addresses, accepts one client only, or goes offline
(connection refused). It counts connects, requests and open sockets.

Frames are Modbus TCP (MBAP): transaction id (2), protocol id (2), length (2), unit id
(1), PDU. Each client gets its own upstream connection, opened lazily.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
import contextlib
from dataclasses import dataclass, field
from enum import StrEnum
import random
import struct

LOOPBACK = "127.0.0.1"
MBAP = 7


class Fault(StrEnum):
    """What the proxy does to a request."""

    PASS = "pass"  # forward, answer as the server did
    DROP = "drop"  # close the client's connection instead of answering
    BLACKHOLE = "blackhole"  # swallow the request, never answer
    DELAY = "delay"  # answer after ``Proxy.delay`` seconds
    WRONG_UNIT = "wrong_unit"  # the server's answer with another unit id
    WRONG_TID = "wrong_tid"  # the server's answer with another transaction id
    TRUNCATE = "truncate"  # the first half of the server's answer, then silence
    GARBAGE = "garbage"  # random bytes instead of the answer


@dataclass(frozen=True, slots=True)
class Request:
    """One request frame the proxy saw."""

    tid: int
    unit_id: int
    function: int
    address: int | None  # None for functions without one
    count: int | None


def parse_request(frame: bytes) -> Request:
    """Decode the fields the proxy decides on from one MBAP frame."""
    tid, _proto, _length, unit_id = struct.unpack(">HHHB", frame[:MBAP])
    pdu = frame[MBAP:]
    function = pdu[0] if pdu else 0
    address = count = None
    if function in (1, 2, 3, 4, 15, 16) and len(pdu) >= 5:
        address, count = struct.unpack(">HH", pdu[1:5])
    elif function in (5, 6) and len(pdu) >= 5:
        address, count = struct.unpack(">H", pdu[1:3])[0], 1
    return Request(tid, unit_id, function, address, count)


def exception_frame(request: Request, code: int) -> bytes:
    """Return an MBAP exception answer to ``request`` with ``code``."""
    pdu = bytes([(request.function | 0x80) & 0xFF, code & 0xFF])
    return struct.pack(">HHHB", request.tid, 0, len(pdu) + 1, request.unit_id) + pdu


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """One whole MBAP frame (raises IncompleteReadError at EOF)."""
    header = await reader.readexactly(MBAP)
    length = struct.unpack(">H", header[4:6])[0]
    return header + await reader.readexactly(max(0, length - 1))


@dataclass
class Counters:
    """What the proxy counted since start (or the last ``reset``)."""

    connects: int = 0  # client connections accepted (refused ones included)
    refused: int = 0  # closed at once (one-client gateway busy)
    requests: int = 0  # request frames received from clients
    answered: int = 0  # answers sent (faulty ones included)
    faults: dict[str, int] = field(default_factory=dict)


class Proxy:
    """The fault-injecting proxy; ``await start()`` then point a client at ``port``."""

    def __init__(self, upstream_port: int, *, seed: int = 0) -> None:
        """Prepare a proxy to ``upstream_port`` that passes everything through."""
        self.upstream_port = upstream_port
        self.port = 0
        self.fault = Fault.PASS
        self.delay = 0.0
        # address -> Modbus exception code answered for any request touching it
        self.exception_codes: dict[int, int] = {}
        self.exception_units: frozenset[int] | None = None  # None: every unit
        # answers left before they stop (None: all)
        self.exception_budget: int | None = None
        self.one_client = False
        # optional per-request decision; overrides ``fault`` when it returns a Fault
        self.policy: Callable[[Request], Fault | None] | None = None
        self.counters = Counters()
        self.log: list[Request] = []
        self.random = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> int:
        """Listen on loopback (the same port again after ``offline``)."""
        self._server = await asyncio.start_server(self._handle, LOOPBACK, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def offline(self) -> None:
        """Stop listening and cut every client: connects are refused until ``online``."""
        if self._server is not None:
            self._server.close()
            self._server = None
        await self.disconnect_all()

    async def online(self) -> None:
        """Listen again on the same port."""
        if self._server is None:
            await self.start()

    async def disconnect_all(self) -> None:
        """Close every client connection now (a gateway reboot)."""
        for writer in list(self._clients):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)

    async def stop(self) -> None:
        """Close everything."""
        await self.offline()

    @property
    def listening(self) -> bool:
        """Whether connects are accepted."""
        return self._server is not None

    @property
    def open_sockets(self) -> int:
        """Client connections open now."""
        return sum(1 for w in self._clients if not w.is_closing())

    def reset(self) -> None:
        """Zero the counters and the request log."""
        self.counters = Counters()
        self.log.clear()

    def set_exceptions(
        self,
        codes: dict[int, int] | Iterable[tuple[int, int]],
        units: Iterable[int] | None = None,
        times: int | None = None,
    ) -> None:
        """Answer ``code`` for requests touching ``address`` (``{address: code}``).

        On ``units`` only (None: all), the first ``times`` such requests only (None:
        all).
        """
        self.exception_codes = dict(codes)
        self.exception_units = None if units is None else frozenset(units)
        self.exception_budget = times

    # ------------------------------------------------------------------ serving
    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.counters.connects += 1
        if self.one_client and self.open_sockets >= 1:
            self.counters.refused += 1
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._clients.add(writer)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                frame = await read_frame(reader)
                request = parse_request(frame)
                self.counters.requests += 1
                self.log.append(request)
                answer, upstream, keep = await self._answer(frame, request, upstream)
                if not keep:
                    break
                if answer is not None:
                    writer.write(answer)
                    await writer.drain()
                    self.counters.answered += 1
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._clients.discard(writer)
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()
            if upstream is not None:
                upstream[1].close()

    def _decide(self, request: Request) -> Fault:
        if self.policy is not None:
            chosen = self.policy(request)
            if chosen is not None:
                return chosen
        return self.fault

    def _exception_for(self, request: Request) -> int | None:
        if not self.exception_codes or request.address is None:
            return None
        if (
            self.exception_units is not None
            and request.unit_id not in self.exception_units
        ):
            return None
        span = range(request.address, request.address + max(1, request.count or 1))
        for address, code in self.exception_codes.items():
            if address in span:
                if self.exception_budget is not None:
                    if self.exception_budget <= 0:
                        return None
                    self.exception_budget -= 1
                return code
        return None

    async def _answer(
        self,
        frame: bytes,
        request: Request,
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
    ) -> tuple[
        bytes | None, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None, bool
    ]:
        """(answer or None for none, the upstream connection, keep the client open)."""
        fault = self._decide(request)
        self.counters.faults[fault.value] = self.counters.faults.get(fault.value, 0) + 1
        if fault is Fault.DROP:
            return None, upstream, False
        if fault is Fault.BLACKHOLE:
            return None, upstream, True
        code = self._exception_for(request)
        if code is not None:
            answer = exception_frame(request, code)
        else:
            if upstream is None:
                upstream = await asyncio.open_connection(LOOPBACK, self.upstream_port)
            upstream[1].write(frame)
            await upstream[1].drain()
            answer = await read_frame(upstream[0])
        if fault is Fault.DELAY:
            await asyncio.sleep(self.delay)
        elif fault is Fault.WRONG_UNIT:
            answer = answer[:6] + bytes([(answer[6] + 1) & 0xFF]) + answer[7:]
        elif fault is Fault.WRONG_TID:
            tid = (struct.unpack(">H", answer[:2])[0] + 1) & 0xFFFF
            answer = struct.pack(">H", tid) + answer[2:]
        elif fault is Fault.TRUNCATE:
            answer = answer[: max(1, len(answer) // 2)]
        elif fault is Fault.GARBAGE:
            answer = bytes(self.random.randrange(256) for _ in range(len(answer)))
        return answer, upstream, True


def random_policy(
    rate: float, faults: Iterable[Fault], seed: int
) -> tuple[Callable[[Request], Fault | None], dict[str, int]]:
    """Return a seeded policy injecting ``faults`` into a share ``rate`` of requests."""
    rng = random.Random(seed)
    choices = list(faults)
    injected: dict[str, int] = {}

    def policy(_request: Request) -> Fault | None:
        if rng.random() >= rate:
            return Fault.PASS
        fault = rng.choice(choices)
        injected[fault.value] = injected.get(fault.value, 0) + 1
        return fault

    return policy, injected
