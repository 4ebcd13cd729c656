"""Learned engine state, kept across restarts with HA's Store.

The engine exports its learned state (intervals, patterns, holes, cost model) as a
JSON-able dict. We save it debounced after poll cycles, at once on unload and on HA
stop, and import it on start. A corrupt or incompatible state is set aside with a
warning and the engine starts fresh: learning is a cache, never a reason to fail.

Store version 1.2 adds, beside the engine's state, the optimization control: the
audit log (``audit``) and the optimization loop's state (``optimizer``). A 1.1 store
is migrated by adding both, empty; each is restored on its own, so a corrupt one is
set aside with a warning and the rest restored.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
import logging
from typing import Any

from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.storage import Store

from .const import DOMAIN, STORAGE_SAVE_DELAY, STORAGE_VERSION
from .engine.analytics import Analytics
from .engine.audit import AuditLog
from .engine.errors import AdaptiveModbusError
from .engine.history import History
from .engine.scheduler import PollEngine

_LOGGER = logging.getLogger(__name__)

type StateDict = dict[str, Any]

# 1.2: the audit log and the optimization loop's state are kept alongside
STORAGE_MINOR_VERSION = 2
KEY_AUDIT = "audit"
KEY_OPTIMIZER = "optimizer"


class _ControlStore(Store[StateDict]):
    """HA's Store with the 1.1 -> 1.2 migration (adds the optimization control)."""

    async def _async_migrate_func(
        self, old_major_version: int, old_minor_version: int, old_data: Any
    ) -> StateDict:
        if old_major_version != STORAGE_VERSION:
            raise NotImplementedError(
                f"stored version {old_major_version} cannot be migrated"
            )
        if not isinstance(old_data, dict):
            return old_data  # type: ignore[no-any-return]  # set aside on restore
        data = dict(old_data)
        if old_minor_version < 2:
            data.setdefault(KEY_AUDIT, None)
            data.setdefault(KEY_OPTIMIZER, None)
        return data


def storage_key(entry_id: str) -> str:
    """Store key of one config entry's learned state."""
    return f"{DOMAIN}.{entry_id}"


class LearnedStateStore:
    """Save and restore one entry's learned engine state.

    Export and import run in an executor thread: for a few hundred registers with
    full time-of-week patterns they take ~0.1 s, too long for the event loop. The
    export holds ``lock``, which the coordinator holds while a cycle runs, so the
    engine does not change under the thread (a write may, for the register it
    writes: learning is a cache, the next save has it right).
    """

    def __init__(self, hass: HomeAssistant, entry_id: str, engine: PollEngine) -> None:
        """Keep ``engine``'s learned state in the store of ``entry_id``."""
        self._hass = hass
        self._entry_id = entry_id
        self.engine = engine
        self._store: Store[StateDict] = _ControlStore(
            hass,
            STORAGE_VERSION,
            storage_key(entry_id),
            minor_version=STORAGE_MINOR_VERSION,
        )
        self.lock = asyncio.Lock()
        self.restored = False  # some learned state was imported
        self.restored_registers = 0
        self.restore_warnings: list[str] = []
        self._unsub_save: CALLBACK_TYPE | None = None
        self.history: History | None = None  # visualization history, saved alongside
        self.audit: AuditLog | None = None  # audit log of the optimization control
        self.optimizer: Any = None  # the optimization loop (export_state/import_state)
        self.analytics: Analytics | None = None  # analytics state, saved alongside

    async def async_restore(self) -> bool:
        """Import the saved state into the engine; False (and a warning) if unusable.

        Learned state is a cache the user cannot repair: what cannot be used is set
        aside with a warning in the log (no repair issue) and relearned.
        """
        # an earlier version raised a repair issue for this; nothing to act on
        ir.async_delete_issue(
            self._hass, DOMAIN, f"learned_state_reset_{self._entry_id}"
        )
        try:
            data = await self._store.async_load()
        except (HomeAssistantError, KeyError, TypeError, NotImplementedError) as err:
            # unreadable file, a store that is not HA's layout, or a newer store
            # version this code cannot migrate
            self._set_aside(f"could not be read: {err}")
            return False
        if data is None:
            return False
        if not isinstance(data, dict):
            self._set_aside("is not a mapping")
            return False
        if self.history is not None and "history" in data:
            for warning in self.history.import_state(data["history"], self.engine.uids):
                _LOGGER.warning(
                    "Learned polling state of entry %s: %s", self._entry_id, warning
                )
        self._restore_audit(data.get(KEY_AUDIT))
        self._restore_analytics(data)
        self._restore_bounds(data.get(KEY_OPTIMIZER))
        restored = await self._async_restore_engine(data)
        self._restore_optimizer(data.get(KEY_OPTIMIZER))
        return restored

    def _restore_bounds(self, stored: Any) -> None:
        """Apply the loop's tuning (interval bounds) before the learned intervals.

        The import clamps each learned interval into the bounds in force: a register
        the loop let rest beyond its configured maximum would otherwise come back at
        that maximum. The loop's own restore applies the tuning again afterwards
        (and reports what it set aside).
        """
        tuning = stored.get("tuning") if isinstance(stored, dict) else None
        if self.optimizer is not None and isinstance(tuning, dict):
            self.engine.apply_tuning(tuning)

    def _restore_audit(self, stored: Any) -> None:
        """Restore the audit log; what cannot be used is set aside with a warning."""
        if self.audit is None or stored is None:
            return
        for warning in self.audit.import_state(stored):
            _LOGGER.warning("Audit log of entry %s: %s", self._entry_id, warning)

    def _restore_analytics(self, data: StateDict) -> None:
        """Restore the analytics state; what cannot be used is set aside with a warning."""
        if self.analytics is None or "analytics" not in data:
            return
        for warning in self.analytics.import_state(data["analytics"], self.engine.uids):
            _LOGGER.warning(
                "Learned polling state of entry %s: %s", self._entry_id, warning
            )

    def _restore_optimizer(self, stored: Any) -> None:
        """Restore the loop's state after the engine's (it tunes the engine).

        A state the loop refuses is set aside with a warning: the loop starts over.
        """
        if self.optimizer is None or stored is None:
            return
        try:
            result = self.optimizer.import_state(stored)
        except (AdaptiveModbusError, TypeError, ValueError, KeyError) as err:
            _LOGGER.warning(
                "Optimization state of entry %s was set aside (%s); the loop starts over",
                self._entry_id,
                err,
            )
            return
        report = result if isinstance(result, dict) else {}
        for warning in report.get("warnings") or []:
            _LOGGER.warning(
                "Optimization state of entry %s: %s", self._entry_id, warning
            )
        if report.get("evaluation") is not None:
            _LOGGER.info(
                "Optimization of entry %s: the evaluation interrupted by the restart "
                "was %s",
                self._entry_id,
                report["evaluation"],
            )

    async def _async_restore_engine(self, data: StateDict) -> bool:
        """Import the engine's learned state; False (and a warning) when unusable."""
        try:
            # nothing polls yet: the engine is not touched by the loop meanwhile
            result = await self._hass.async_add_executor_job(
                self.engine.import_state, data
            )
        except (AdaptiveModbusError, TypeError, ValueError, KeyError) as err:
            self._set_aside(f"was rejected by the engine: {err!r}")
            return False
        restored, warnings = result.restored, list(result.warnings)
        self.restored_registers = restored
        self.restore_warnings = warnings
        self.restored = restored > 0
        if not self.restored:
            self._set_aside(
                "; ".join(warnings) or "held no register the entry still has"
            )
            return False
        for warning in warnings:
            _LOGGER.warning(
                "Learned polling state of entry %s: %s", self._entry_id, warning
            )
        return True

    def _set_aside(self, why: str) -> None:
        _LOGGER.warning(
            "Learned polling state of entry %s %s; starting fresh (it will be relearned)",
            self._entry_id,
            why,
        )

    async def _async_export(self) -> StateDict:
        async with self.lock:
            data = dict(
                await self._hass.async_add_executor_job(self.engine.export_state)
            )
            if self.history is not None:
                data["history"] = self.history.export_state()
            if self.audit is not None:
                data[KEY_AUDIT] = self.audit.export_state()
            if self.optimizer is not None:
                data[KEY_OPTIMIZER] = self.optimizer.export_state()
            if self.analytics is not None:
                data["analytics"] = self.analytics.export_state()
            return data

    def async_schedule_save(self, delay: float = STORAGE_SAVE_DELAY) -> None:
        """Save within ``delay`` seconds: at most one write per delay while polling.

        Only the first call of a period sets the timer (moving it on with every
        cycle would never write before HA stops). Unload and HA stop save at once.
        """
        if self._unsub_save is not None:
            return
        self._unsub_save = async_call_later(
            self._hass, delay, HassJob(self._async_save_later, cancel_on_shutdown=True)
        )

    async def _async_save_later(self, _now: datetime) -> None:
        self._unsub_save = None
        try:
            await self.async_save()
        except Exception:
            _LOGGER.exception("Saving the learned polling state failed")

    def async_cancel(self) -> None:
        """Drop a pending delayed save (unload saves at once instead)."""
        if self._unsub_save is not None:
            self._unsub_save()
            self._unsub_save = None

    async def async_save(self) -> None:
        """Save now (unload, HA stop, the delayed save)."""
        self.async_cancel()
        await self._store.async_save(await self._async_export())

    async def async_remove(self) -> None:
        """Delete the stored state (entry removed)."""
        await self._store.async_remove()


async def async_remove_learned_state(hass: HomeAssistant, entry_id: str) -> None:
    """Delete an entry's stored state without an engine (entry removal)."""
    store: Store[StateDict] = Store(
        hass,
        STORAGE_VERSION,
        storage_key(entry_id),
        minor_version=STORAGE_MINOR_VERSION,
    )
    await store.async_remove()
