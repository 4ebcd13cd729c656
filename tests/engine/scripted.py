"""A base for the engine tests' scripted devices: always connected, read-only.

A subclass implements ``read``; connecting, closing and ending a cycle do nothing,
and writes are refused (these devices only serve reads).
"""

from __future__ import annotations

from collections.abc import Sequence


class ReadOnlyTransport:
    """A transport that is always connected and only serves reads."""

    connected = True

    async def connect(self) -> None:
        """Do nothing: always connected."""

    async def close(self) -> None:
        """Do nothing: there is no connection."""

    async def end_cycle(self) -> None:
        """Do nothing at the end of a cycle."""

    async def write_registers(
        self, unit_id: int, address: int, values: Sequence[int]
    ) -> None:
        """Refuse: read-only."""
        raise NotImplementedError("a read-only test transport")

    async def write_coil(self, unit_id: int, address: int, value: bool) -> None:
        """Refuse: read-only."""
        raise NotImplementedError("a read-only test transport")
