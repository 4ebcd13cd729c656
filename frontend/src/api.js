// Talking to Home Assistant: the integration's websocket command and its services.

export const DOMAIN = "adaptive_modbus";
export const PANEL_PATH = "/adaptive-modbus";

/** Connections with their unit devices and register entities (`adaptive_modbus/entries`). */
export async function fetchTargets(hass) {
  const result = await hass.callWS({ type: `${DOMAIN}/entries` });
  return entriesToTargets(result.entries || []);
}

/** The entries answer as the card uses it: devices, and entity ids by register uid. */
export function entriesToTargets(entries) {
  return entries.map((e) => {
    const entities = {};
    for (const d of e.devices) for (const r of d.registers || []) if (r.entity_id) entities[r.uid] = r.entity_id;
    return {
      config_entry_id: e.config_entry_id,
      title: e.title,
      devices: e.devices.filter((d) => d.device_id).map((d) => ({ device_id: d.device_id, unit_id: d.unit_id, name: d.name })),
      entities,
    };
  });
}

/** Live view pushes (`adaptive_modbus/subscribe`): the unit is polled closer while viewed. */
export function subscribeView(hass, view, target, callback) {
  return hass.connection.subscribeMessage(callback, { type: `${DOMAIN}/subscribe`, view, ...target });
}

export function hasService(hass, service) {
  return Boolean(hass?.services?.[DOMAIN]?.[service]);
}

/** Call a service of the integration; with `response` the service's answer is returned. */
export async function callService(hass, service, data = {}, response = false) {
  const msg = { type: "call_service", domain: DOMAIN, service, service_data: data };
  if (response) msg.return_response = true;
  const result = await hass.callWS(msg);
  return response ? result.response : result;
}

/** One view (`adaptive_modbus/views`, as `get_visualization`): system, device, register, cluster. */
export function fetchView(hass, view, target = {}) {
  return hass.callWS({ type: `${DOMAIN}/views`, view, ...target });
}

/** Read a connection's or device's registers now (admin). */
export function refreshNow(hass, target) {
  return hass.callWS({ type: `${DOMAIN}/refresh`, ...target });
}

/** The connection a card config points at (device or entry; else the first one). */
export function resolveTarget(config, targets) {
  if (config.device_id) {
    for (const conn of targets) {
      const device = conn.devices.find((d) => d.device_id === config.device_id);
      if (device) return { conn, device };
    }
    return { conn: null, device: null, missing: `device ${config.device_id}` };
  }
  if (config.config_entry_id) {
    const conn = targets.find((c) => c.config_entry_id === config.config_entry_id);
    if (!conn) return { conn: null, device: null, missing: `connection ${config.config_entry_id}` };
    return { conn, device: conn.devices[0] || null };
  }
  const conn = targets[0] || null;
  return { conn, device: conn?.devices[0] || null };
}

/** The error text of a failed websocket call or service. */
export function errorText(err) {
  if (!err) return "";
  if (typeof err === "string") return err;
  return err.message || err.error?.message || err.code || JSON.stringify(err);
}

/** Go to a frontend path without a page load (as HA's own navigate does). */
export function navigate(path) {
  history.pushState(null, "", path);
  window.dispatchEvent(new CustomEvent("location-changed", { detail: { replace: false } }));
}
