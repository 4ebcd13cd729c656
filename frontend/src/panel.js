// The admin panel "Adaptive Modbus" (sidebar, admins only): system, devices, clusters,
// the optimization loop, learned faults and the export.
import { LitElement, html, css, nothing } from "lit";
import { callService, errorText, fetchTargets, fetchView, hasService } from "./api.js";
import { auditText, formatDuration, formatNumber, formatPercent, pinText, proposalText } from "./format.js";
import {
  renderClusters, renderDonut, renderHealth, renderIntervalBar, renderStat, sharedStyles,
} from "./render.js";

const TABS = [
  ["system", "System"], ["devices", "Devices"], ["clusters", "Clusters"],
  ["optimization", "Optimization"], ["faults", "Holes, quarantine, pins"], ["export", "Export"],
];
const OPT_SERVICES = ["run_optimization", "get_optimization_statistics", "rollback_optimization", "set_strategy_parameters"];

export class AdaptiveModbusPanel extends LitElement {
  static properties = {
    hass: { attribute: false },
    narrow: { type: Boolean },
    panel: { attribute: false },
    _tab: { state: true },
    _targets: { state: true },
    _entryId: { state: true },
    _deviceId: { state: true },
    _views: { state: true },
    _stats: { state: true },
    _error: { state: true },
    _message: { state: true },
    _lastRun: { state: true },
  };

  constructor() {
    super();
    this._tab = "system";
    this._views = {};
  }

  connectedCallback() {
    super.connectedCallback();
    this._timer = setInterval(() => this._load(), 15000);
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    clearInterval(this._timer);
  }

  updated(changed) {
    if (changed.has("hass") && this.hass && !changed.get("hass")) this._load();
  }

  get _conn() {
    return this._targets?.find((c) => c.config_entry_id === this._entryId) ?? this._targets?.[0];
  }

  async _load() {
    if (!this.hass || this._loading) return;
    this._loading = true;
    try {
      this._targets = await fetchTargets(this.hass);
      const conn = this._conn;
      if (!conn) throw new Error("No Adaptive Modbus connection is loaded");
      this._entryId = conn.config_entry_id;
      const entry = { config_entry_id: conn.config_entry_id };
      const views = { system: await fetchView(this.hass, "system", entry), cluster: await fetchView(this.hass, "cluster", entry), devices: {} };
      for (const d of conn.devices) views.devices[d.device_id] = await fetchView(this.hass, "device", { device_id: d.device_id });
      this._views = views;
      if (!this._deviceId || !views.devices[this._deviceId]) this._deviceId = conn.devices[0]?.device_id;
      if (this._tab === "optimization" || this._tab === "faults") await this._loadStats();
      this._error = undefined;
    } catch (err) {
      this._error = errorText(err);
    } finally {
      this._loading = false;
    }
  }

  async _loadStats() {
    if (!hasService(this.hass, "get_optimization_statistics")) return;
    this._stats = await callService(this.hass, "get_optimization_statistics", { config_entry_id: this._entryId }, true);
  }

  async _action(label, fn) {
    this._message = undefined;
    try {
      const result = await fn();
      this._message = `${label}: done${result !== undefined && result !== null ? ` – ${JSON.stringify(result)}` : ""}`;
      await this._load();
    } catch (err) {
      this._message = `${label} failed: ${errorText(err)}`;
    }
  }

  render() {
    if (!this.hass) return nothing;
    if (!this.hass.user?.is_admin) return html`<p class="error">The Adaptive Modbus panel is for administrators.</p>`;
    const conn = this._conn;
    return html`
      <div class="toolbar">
        <ha-menu-button .hass=${this.hass} .narrow=${this.narrow}></ha-menu-button>
        <div class="title">Adaptive Modbus</div>
        ${this._targets?.length > 1 ? html`<select @change=${(e) => { this._entryId = e.target.value; this._load(); }}>
          ${this._targets.map((c) => html`<option value=${c.config_entry_id} ?selected=${c === conn}>${c.title}</option>`)}</select>` : nothing}
      </div>
      <nav class="tabs">${TABS.map(([id, label]) => html`<button class="tab ${this._tab === id ? "active" : ""}" data-tab=${id}
        @click=${() => { this._tab = id; if (id === "optimization" || id === "faults") this._loadStats().catch((e) => { this._error = errorText(e); }); }}>${label}</button>`)}</nav>
      <main>
        ${this._error ? html`<p class="error" data-error>${this._error}</p>` : nothing}
        ${this._message ? html`<p class="message" data-message>${this._message}</p>` : nothing}
        ${this._views.system ? this._renderTab(conn) : html`<p class="muted">Loading…</p>`}
      </main>`;
  }

  _renderTab(conn) {
    switch (this._tab) {
      case "devices": return this._renderDevices(conn);
      case "clusters": return this._renderClusters(conn);
      case "optimization": return this._renderOptimization();
      case "faults": return this._renderFaults(conn);
      case "export": return this._renderExport();
      default: return this._renderSystem(conn);
    }
  }

  _renderSystem(conn) {
    const s = this._views.system;
    return html`<section class="card" data-section="system">
      <h2>${conn.title}</h2>
      <div class="stats">
        ${renderStat("requests / min", formatNumber(s.now.requests_per_minute, 1), "requests_per_minute")}
        ${renderStat("fixed polling would need", formatNumber(s.now.fixed_requests_per_minute, 1), "fixed")}
        ${renderStat("saving vs fixed", formatPercent(s.now.saving_vs_fixed_percent), "saving_vs_fixed")}
        ${renderStat("saving vs static blocks", formatPercent(s.now.saving_vs_static_blocks_percent), "saving_vs_static")}
        ${renderStat("registers / request", formatNumber(s.now.registers_per_request, 1), "rpr")}
        ${renderStat("error rate", formatPercent(s.now.error_rate_percent, 1), "errors")}
        ${renderStat("mean latency", `${formatNumber(s.now.mean_latency_ms, 1)} ms`, "latency")}
        ${renderStat("registers", `${s.registers.enabled} / ${s.registers.total}`, "registers")}
      </div>
      <h3>Health</h3>${renderHealth(s.health)}
      <h3>Interval classes</h3>${renderDonut(s.interval_classes)}
      <h3>Recent errors</h3>
      ${s.errors.length ? html`<div class="table-wrap"><table><tr><th>When</th><th>Kind</th><th>Unit</th><th>Address</th><th>Message</th></tr>
        ${s.errors.slice(-20).reverse().map((e) => html`<tr><td>${new Date(e.at * 1000).toLocaleTimeString()}</td><td>${e.kind}</td>
          <td>${e.unit_id ?? "–"}</td><td>${e.table ?? ""} ${e.address ?? ""}</td><td>${e.message}</td></tr>`)}</table></div>`
        : html`<p class="muted">None in the period.</p>`}
    </section>`;
  }

  _renderDevices(conn) {
    const dev = this._views.devices[this._deviceId];
    return html`<section class="card" data-section="devices">
      <select @change=${(e) => { this._deviceId = e.target.value; }}>
        ${conn.devices.map((d) => html`<option value=${d.device_id} ?selected=${d.device_id === this._deviceId}>${d.name} (unit ${d.unit_id})</option>`)}
      </select>
      ${dev ? html`<div class="stats">
          ${renderStat("requests", dev.requests, "requests")}${renderStat("registers read", dev.registers_read, "read")}
          ${renderStat("errors", dev.errors, "errors")}</div>
        ${renderDonut(dev.interval_classes)}
        <div class="table-wrap"><table>
          <tr><th>Register</th><th>Address</th><th class="num">Value</th><th>Interval</th><th>Reason</th>
            <th class="num">Reads</th><th class="num">Changes</th><th class="num">Errors</th><th class="num">Tolerance</th><th class="num">Noise</th></tr>
          ${dev.registers.map((r) => html`<tr data-uid=${r.uid}>
            <td>${this.hass.states[conn.entities[r.uid]]?.attributes.friendly_name ?? r.key}</td>
            <td>${r.table} ${r.address}</td><td class="num">${r.value ?? "–"}</td>
            <td>${renderIntervalBar(r)}${formatDuration(r.effective_interval)}</td>
            <td title=${r.detail ?? ""}>${r.reason}</td><td class="num">${r.reads}</td><td class="num">${r.changes}</td>
            <td class="num">${r.errors}</td><td class="num">${formatNumber(r.tolerance, 3)}</td><td class="num">${formatNumber(r.noise, 3)}</td></tr>`)}
        </table></div>` : html`<p class="muted">No device.</p>`}
    </section>`;
  }

  _holes(conn) {
    const holes = {};
    for (const d of conn.devices) {
      for (const [table, addrs] of Object.entries(this._views.devices[d.device_id]?.holes || {})) holes[`${d.unit_id}.${table}`] = addrs;
    }
    return holes;
  }

  _renderClusters(conn) {
    const c = this._views.cluster;
    return html`<section class="card" data-section="clusters">
      <p class="muted">Cost model: ${formatNumber(1000 * c.cost_model.request_overhead, 1)} ms per request,
        ${formatNumber(1000 * c.cost_model.per_register, 2)} ms per register; merging across a gap pays up to
        ${c.cost_model.break_even_gap_registers} registers.</p>
      ${renderClusters(c, this._holes(conn))}
    </section>`;
  }

  _renderOptimization() {
    const missing = OPT_SERVICES.filter((s) => !hasService(this.hass, s));
    if (missing.length === OPT_SERVICES.length) {
      return html`<section class="card" data-section="optimization"><p class="muted" data-no-optimizer>
        This version of the integration has no optimization services (${OPT_SERVICES.join(", ")}).</p></section>`;
    }
    // get_optimization_statistics: the loop's own figures are under "optimizer"
    const st = this._stats || {};
    const loop = st.optimizer || {};
    const entry = { config_entry_id: this._entryId };
    const audit = [...(st.audit ?? [])].reverse();
    const inForce = new Set((loop.in_force ?? []).map((i) => i.audit_id));
    const pending = [...(loop.pending_evaluations ?? []), ...(loop.awaiting_approval ?? []).map((p) => ({ proposal: p, awaiting: true }))];
    const strategies = Object.entries(loop.strategies ?? {});
    const run = (dry) => this._action(dry ? "Dry run" : "Quick optimization", async () => {
      const result = await callService(this.hass, "run_optimization", { ...entry, mode: "quick", dry_run: dry }, true);
      this._lastRun = result;
      return dry ? `${result.proposals?.length ?? 0} proposals` : `applied ${result.applied?.length ?? 0}`;
    });
    return html`<section class="card" data-section="optimization">
      <div class="actions">
        <button class="am" ?disabled=${!hasService(this.hass, "run_optimization")} @click=${() => run(true)}>Quick optimization (dry run)</button>
        <button class="am primary" ?disabled=${!hasService(this.hass, "run_optimization")} @click=${() => run(false)}>Run quick optimization</button>
      </div>
      ${this._lastRun ? html`<h3>Last run (${this._lastRun.dry_run ? "dry run" : "applied"})</h3>
        ${this._lastRun.proposals?.length ? html`<ul>${this._lastRun.proposals.map((p) => html`<li data-proposal>${proposalText(p)}</li>`)}</ul>`
          : html`<p class="muted">No proposals${this._lastRun.note ? `: ${this._lastRun.note}` : "."}</p>`}` : nothing}
      <p class="muted">Automatic loop ${(st.automatic ?? loop.enabled) === false ? "off" : "on"}${st.goal ? `, goal ${st.goal}` : ""}.</p>
      <h3>Strategies</h3>
      ${strategies.length ? html`<div class="table-wrap"><table><tr><th>Strategy</th><th>Record</th><th>Parameters</th></tr>${strategies.map(([name, rec]) => html`<tr>
        <td>${name}</td><td>${Object.entries(rec).filter(([k]) => k !== "parameters").map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ")}</td>
        <td>${this._renderParams(name, rec.parameters ?? {})}</td></tr>`)}</table></div>`
        : html`<p class="muted">None reported.</p>`}
      <h3>Pending evaluations</h3>
      ${pending.length ? html`<ul>${pending.map((p) => html`<li>${proposalText(p.proposal ?? p)}${p.awaiting ? html` <span class="chip degraded">awaiting approval</span>` : nothing}</li>`)}</ul>` : html`<p class="muted">None.</p>`}
      <h3>Audit log</h3>
      ${audit.length ? html`<div class="table-wrap"><table><tr><th>When</th><th>Change</th><th></th></tr>${audit.map((a) => html`<tr data-audit=${a.id}>
        <td>${a.at ? new Date(a.at * 1000).toLocaleString() : "–"}</td><td>${auditText(a)}</td>
        <td>${inForce.has(a.id) ? html`<button class="am" data-action="rollback" ?disabled=${!hasService(this.hass, "rollback_optimization")}
          @click=${() => this._action("Rollback", () => callService(this.hass, "rollback_optimization", { ...entry, audit_id: a.id }, true))}>Roll back</button>` : nothing}</td></tr>`)}</table></div>`
        : html`<p class="muted">No optimization applied yet.</p>`}
    </section>`;
  }

  _renderParams(strategy, params) {
    if (!Object.keys(params).length) return html`<span class="muted">–</span>`;
    return html`<form data-strategy=${strategy} @submit=${(e) => { e.preventDefault(); this._saveParams(strategy, params, e.target); }}>
      ${Object.entries(params).map(([k, v]) => typeof v === "boolean"
        ? html`<label class="param">${k} <input name=${k} type="checkbox" .checked=${v}></label>`
        : html`<label class="param">${k}
        <input name=${k} type=${typeof v === "number" ? "number" : "text"} step="any" .value=${String(v)} required></label>`)}
      <button class="am" type="submit" ?disabled=${!hasService(this.hass, "set_strategy_parameters")}>Save</button>
    </form>`;
  }

  _saveParams(strategy, current, form) {
    const parameters = {};
    for (const [k, v] of Object.entries(current)) {
      if (typeof v === "boolean") { parameters[k] = form.elements[k].checked; continue; }
      const raw = form.elements[k].value;
      if (typeof v === "number") {
        const n = Number(raw);
        if (raw.trim() === "" || !Number.isFinite(n)) { this._message = `${strategy}.${k}: "${raw}" is not a number`; return; }
        parameters[k] = n;
      } else parameters[k] = raw;
    }
    this._action(`Save ${strategy} parameters`, () => callService(this.hass, "set_strategy_parameters", { config_entry_id: this._entryId, strategy, parameters }, true));
  }

  _renderFaults(conn) {
    const s = this._views.system;
    const holes = this._holes(conn);
    // pins by register uid, with their entity (get_optimization_statistics)
    const pins = Object.entries(this._stats?.pins ?? {});
    const canReset = hasService(this.hass, "reset_learning");
    const reset = (what) => this._action(`Reset learning (${what})`, () => callService(this.hass, "reset_learning", { config_entry_id: this._entryId }, true));
    return html`<section class="card" data-section="faults">
      <h3>Learned holes</h3>
      ${Object.keys(holes).length ? html`<ul>${Object.entries(holes).map(([k, addrs]) => {
        const [unit, table] = k.split(".");
        return html`<li>Unit ${unit}, ${table}: ${addrs.map((a) => html`<span class="hole-tag" data-hole="${unit}.${table}:${a}">${a}</span>`)}</li>`;
      })}</ul>` : html`<p class="muted">None.</p>`}
      <button class="am" ?disabled=${!canReset} @click=${() => reset("holes")} title="reset_learning: forgets what the connection learned (holes, limits, intervals)">Reset learning</button>
      <h3>Quarantine</h3>
      ${s.health.quarantined.length ? html`<ul>${s.health.quarantined.map((u) => html`<li>${u}</li>`)}</ul>` : html`<p class="muted">None.</p>`}
      <h3>Pins</h3>
      ${pins.length ? html`<ul>${pins.map(([uid, p]) => html`<li data-pin=${uid}>${this.hass.states[p.entity_id]?.attributes.friendly_name ?? uid}:
        ${pinText(p)}</li>`)}</ul>` : html`<p class="muted" data-no-pins>None.</p>`}
      ${pins.length && hasService(this.hass, "set_register_interval") ? html`<button class="am" data-action="unpin" @click=${() => this._action("Unpin",
        () => callService(this.hass, "set_register_interval", { entity_id: pins.map(([uid, p]) => p.entity_id ?? conn.entities[uid]).filter(Boolean), unpin: true }, true))}>Unpin all</button>` : nothing}
      ${canReset ? nothing : html`<p class="muted">Reset actions need the reset_learning service, which this version does not have.</p>`}
    </section>`;
  }

  _renderExport() {
    return html`<section class="card" data-section="export">
      <p>Every view of this connection as one JSON file (schema version ${this._views.system ? 1 : "–"}).</p>
      <button class="am primary" data-action="download" @click=${this._download}>Download JSON</button>
      <button class="am" @click=${() => this._action("Export to file", () => callService(this.hass, "export_visualization", { config_entry_id: this._entryId }, true))}>
        Write export file on the server</button>
    </section>`;
  }

  _download = () => {
    const conn = this._conn;
    const data = { connection: conn.title, system: this._views.system, cluster: this._views.cluster, devices: Object.values(this._views.devices) };
    const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = `adaptive_modbus_${conn.title.replace(/\W+/g, "_").toLowerCase()}.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  static styles = [sharedStyles, css`
    :host { display: block; background: var(--primary-background-color); color: var(--primary-text-color); min-height: 100vh;
      font-family: var(--paper-font-body1_-_font-family, var(--ha-font-family-body, Roboto, sans-serif)); }
    .toolbar { display: flex; align-items: center; gap: 12px; height: var(--header-height, 56px); padding: 0 12px;
      background: var(--app-header-background-color, var(--primary-color)); color: var(--app-header-text-color, #fff); }
    .toolbar .title { font-size: 20px; flex: 1; }
    .tabs { display: flex; overflow-x: auto; gap: 4px; padding: 8px 12px 0; border-bottom: 1px solid var(--am-line); }
    .tab { font: inherit; background: none; border: none; padding: 8px 12px; cursor: pointer; color: var(--am-muted); border-bottom: 2px solid transparent; white-space: nowrap; }
    .tab.active { color: var(--primary-color); border-bottom-color: var(--primary-color); }
    main { padding: 16px; max-width: 1100px; margin: 0 auto; }
    .card { background: var(--card-background-color, #fff); border-radius: var(--ha-card-border-radius, 12px); padding: 16px;
      box-shadow: var(--ha-card-box-shadow, none); border: 1px solid var(--ha-card-border-color, var(--am-line)); }
    h2 { margin-top: 0; font-weight: 400; }
    h3 { font-weight: 500; margin: 16px 0 8px; }
    .actions { display: flex; gap: 8px; flex-wrap: wrap; }
    label.param { display: inline-grid; gap: 2px; margin: 0 12px 8px 0; }
  `];
}
