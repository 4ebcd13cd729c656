"""Fix flows of the health repair issues (raised by :mod:`.health`).

- ``device_not_answering``: explains what to check (wiring, unit id, gateway) and
  then asks the device again at once; the issue goes when it answers.
- ``block_limit``: lowers the device's largest read (``max_registers`` in its
  device subentry) to what the device accepts; the entry reloads and the refused
  larger reads stop.
- ``register_refused``: disables the register's entity, so it is no longer polled.
"""

from __future__ import annotations

from typing import Any

from homeassistant import data_entry_flow
from homeassistant.components.repairs import RepairsFlow
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er, issue_registry as ir
import voluptuous as vol

from .const import CONF_MAX_REGISTERS, DOMAIN
from .coordinator import AdaptiveModbusConfigEntry
from .health import ISSUE_BLOCK_LIMIT, ISSUE_NOT_ANSWERING, ISSUE_REGISTER_REFUSED


class HealthRepairFlow(RepairsFlow):
    """A confirm step that explains the issue, then the fix of its kind."""

    def __init__(self, kind: str, data: dict[str, Any]) -> None:
        """Fix an issue of ``kind`` described by the issue's ``data``."""
        self.kind = kind
        self.issue_data = data

    def _entry(self) -> AdaptiveModbusConfigEntry | None:
        entry = self.hass.config_entries.async_get_entry(
            str(self.issue_data.get("entry_id"))
        )
        if entry is None or entry.state is not ConfigEntryState.LOADED:
            return None
        return entry

    def _placeholders(self) -> dict[str, str]:
        issue = ir.async_get(self.hass).async_get_issue(DOMAIN, self.issue_id)
        return dict(issue.translation_placeholders or {}) if issue else {}

    async def async_step_init(
        self, user_input: dict[str, str] | None = None
    ) -> data_entry_flow.FlowResult:
        """Show what is wrong and what the fix does."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, str] | None = None
    ) -> data_entry_flow.FlowResult:
        """Apply the fix once the user confirms."""
        if user_input is None:
            return self.async_show_form(
                step_id="confirm",
                data_schema=vol.Schema({}),
                description_placeholders=self._placeholders(),
            )
        entry = self._entry()
        if entry is None:
            return self.async_abort(reason="entry_not_loaded")
        unit_id = int(self.issue_data["unit_id"])
        if self.kind == ISSUE_NOT_ANSWERING:
            return await self._async_ask_again(entry, unit_id)
        if self.kind == ISSUE_BLOCK_LIMIT:
            return self._lower_block_limit(entry, unit_id)
        return self._disable_register(entry)

    async def _async_ask_again(
        self, entry: AdaptiveModbusConfigEntry, unit_id: int
    ) -> data_entry_flow.FlowResult:
        coordinator = entry.runtime_data.coordinator
        uids = [
            uid
            for uid, (unit, _definition) in coordinator.hub.definitions.items()
            if unit == unit_id
        ]
        await coordinator.async_read_now(uids)
        if unit_id in coordinator.silent_units:
            return self.async_abort(
                reason="still_not_answering",
                description_placeholders=self._placeholders(),
            )
        return self.async_create_entry(data={})

    def _lower_block_limit(
        self, entry: AdaptiveModbusConfigEntry, unit_id: int
    ) -> data_entry_flow.FlowResult:
        limit = int(self.issue_data["limit"])
        unit = next(
            (u for u in entry.runtime_data.hub.units if u.unit_id == unit_id), None
        )
        subentry = (
            entry.subentries.get(unit.subentry_id)
            if unit is not None and unit.subentry_id is not None
            else None
        )
        if subentry is None:
            return self.async_abort(reason="device_not_found")
        # the limit learned is replaced by the configured one (it may be larger: the
        # largest read seen answering), then the entry reloads with it
        entry.runtime_data.coordinator.engine.forget_block_limit(unit_id)
        self.hass.config_entries.async_update_subentry(
            entry, subentry, data={**subentry.data, CONF_MAX_REGISTERS: limit}
        )
        return self.async_create_entry(data={})

    def _disable_register(
        self, entry: AdaptiveModbusConfigEntry
    ) -> data_entry_flow.FlowResult:
        entity_id = self.issue_data.get("entity_id")
        ent_reg = er.async_get(self.hass)
        # out of the plan now (the registry listener would do it too)
        entry.runtime_data.coordinator.async_set_enabled(
            str(self.issue_data["uid"]), False
        )
        if entity_id and ent_reg.async_get(str(entity_id)) is not None:
            ent_reg.async_update_entity(
                str(entity_id), disabled_by=er.RegistryEntryDisabler.USER
            )
        if entry.runtime_data.health is not None:
            entry.runtime_data.health.async_check()
        return self.async_create_entry(data={})


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """Return the fix flow of one of our issues."""
    for kind in (ISSUE_NOT_ANSWERING, ISSUE_BLOCK_LIMIT, ISSUE_REGISTER_REFUSED):
        if issue_id.startswith(f"{kind}_"):
            return HealthRepairFlow(kind, dict(data or {}))
    raise data_entry_flow.UnknownStep(issue_id)
