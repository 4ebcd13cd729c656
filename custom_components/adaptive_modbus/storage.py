"""Learned engine state, kept across restarts with HA's Store.

The engine exports its learned state (intervals, patterns, holes, cost model) as a
JSON-able dict. We save it debounced after poll cycles, at once on unload and on HA
stop, and import it on start. A corrupt or incompatible state is set aside with a
warning and the engine starts fresh: learning is a cache, never a reason to fail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.storage import Store

from .const import DOMAIN, STORAGE_SAVE_DELAY, STORAGE_VERSION
from .engine.scheduler import PollEngine

_LOGGER = logging.getLogger(__name__)

type StateDict = dict[str, Any]


def storage_key(entry_id: str) -> str:
    """Store key of one config entry's learned state."""
    return f"{DOMAIN}.{entry_id}"


class LearnedStateStore:
    """Save and restore one entry's learned engine state."""

    def __init__(self, hass: HomeAssistant, entry_id: str, engine: PollEngine) -> None:
        self._hass = hass
        self._entry_id = entry_id
        self._engine = engine
        self._store: Store[StateDict] = Store(hass, STORAGE_VERSION, storage_key(entry_id))
        self.restored = False
        self._save_pending = False

    async def async_restore(self) -> bool:
        """Import the saved state into the engine; False (and a warning) if unusable."""
        try:
            data = await self._store.async_load()
        except Exception as err:
            self._set_aside(f"could not be read: {err}")
            return False
        if data is None:
            return False
        if not isinstance(data, dict):
            self._set_aside("is not a mapping")
            return False
        try:
            warnings = self._engine.import_state(data).warnings
        except Exception as err:
            self._set_aside(f"was rejected by the engine: {err!r}")
            return False
        for warning in warnings:
            _LOGGER.warning("Learned polling state of entry %s: %s", self._entry_id, warning)
        self.restored = not warnings or len(warnings) < len(data.get("registers") or {})
        return True

    def _set_aside(self, why: str) -> None:
        _LOGGER.warning(
            "Learned polling state of entry %s %s; starting fresh (it will be relearned)",
            self._entry_id,
            why,
        )
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            f"learned_state_reset_{self._entry_id}",
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key="learned_state_reset",
            translation_placeholders={"reason": why},
        )

    def _export(self) -> StateDict:
        self._save_pending = False
        return dict(self._engine.export_state())

    def async_schedule_save(self, delay: float = STORAGE_SAVE_DELAY) -> None:
        """Save within ``delay`` seconds: at most one write per delay while polling.

        HA's ``async_delay_save`` moves the write on with every call; called after
        every cycle it would never write before HA stops (and a crash would lose
        everything learned). So only the first call of a period schedules the write.
        HA also flushes a pending write at its final write.
        """
        if self._save_pending:
            return
        self._save_pending = True
        data_func: Callable[[], StateDict] = self._export
        self._store.async_delay_save(data_func, delay)

    async def async_save(self) -> None:
        """Save now (unload, HA stop)."""
        await self._store.async_save(self._export())

    async def async_remove(self) -> None:
        """Delete the stored state (entry removed)."""
        await self._store.async_remove()


async def async_remove_learned_state(hass: HomeAssistant, entry_id: str) -> None:
    """Delete an entry's stored state without an engine (entry removal)."""
    store: Store[StateDict] = Store(hass, STORAGE_VERSION, storage_key(entry_id))
    await store.async_remove()
