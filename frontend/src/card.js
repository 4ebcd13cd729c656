// The Lovelace card custom:adaptive-modbus-card and its visual editor.
import { LitElement, html, css, nothing } from "lit";
import {
  errorText, fetchTargets, fetchView, callService, hasService, navigate, refreshNow, resolveTarget,
  subscribeView, PANEL_PATH,
} from "./api.js";
import {
  DEFAULT_SHOW, SHOW_OPTIONS, VIEWS, cardSize, formatDuration, formatNumber, formatPercent,
  proposalText, validateConfig,
} from "./format.js";
import {
  renderClusters, renderDonut, renderHealth, renderIntervalBar, renderStat, sharedStyles,
} from "./render.js";

const REFRESH_MS = 10000;
const VIEW_LABELS = { overview: "Overview", registers: "Registers", clusters: "Clusters", charts: "Charts" };

export class AdaptiveModbusCard extends LitElement {
  static properties = {
    hass: { attribute: false },
    _config: { state: true },
    _targets: { state: true },
    _data: { state: true },
    _error: { state: true },
    _busy: { state: true },
    _proposals: { state: true },
    _message: { state: true },
  };

  static getConfigElement() {
    return document.createElement("adaptive-modbus-card-editor");
  }

  static getStubConfig() {
    return { view: "overview" };
  }

  setConfig(config) {
    this._config = validateConfig(config); // throws: HA shows the message in an error card
    this._data = undefined;
    this._proposals = undefined;
    if (this.isConnected && this.hass) this._load();
  }

  getCardSize() {
    return cardSize(this._config?.view, this._data?.device?.registers?.length ?? 0);
  }

  getGridOptions() {
    const view = this._config?.view;
    return { columns: 12, min_columns: 6, rows: view === "registers" || view === "clusters" ? "auto" : 5, min_rows: 3 };
  }

  connectedCallback() {
    super.connectedCallback();
    this._timer = setInterval(() => this._load(), REFRESH_MS);
    if (this.hass && this._config) this._load();
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    clearInterval(this._timer);
    this._unsubscribe();
  }

  _unsubscribe() {
    const unsub = this._subscription;
    this._subscription = undefined;
    this._subscribedTo = undefined;
    if (unsub) unsub.then((off) => off()).catch(() => {});
  }

  /** Registers view: live pushes of the device view (its unit is polled closer meanwhile). */
  _subscribe(device) {
    if (this._subscribedTo === device.device_id) return;
    this._unsubscribe();
    this._subscribedTo = device.device_id;
    this._subscription = subscribeView(this.hass, "device", { device_id: device.device_id }, (view) => {
      if (this._data && this._subscribedTo === device.device_id) {
        this._data = { ...this._data, device: view, fetchedAt: Date.now() };
      }
    });
    this._subscription.catch((err) => { this._error = errorText(err); this._subscribedTo = undefined; });
  }

  updated(changed) {
    if (changed.has("hass") && !changed.get("hass") && this._config) this._load();
  }

  async _load() {
    if (!this.hass || !this._config || this._loading) return;
    this._loading = true;
    try {
      this._targets = await fetchTargets(this.hass);
      const { conn, device, missing } = resolveTarget(this._config, this._targets);
      if (missing) throw new Error(`Not found: ${missing} (removed, or not loaded)`);
      if (!conn) throw new Error("No Adaptive Modbus connection is loaded");
      const entry = { config_entry_id: conn.config_entry_id };
      const view = this._config.view;
      const data = { conn, device, fetchedAt: Date.now() };
      if (view === "overview") {
        data.system = await fetchView(this.hass, "system", entry);
        if (this._config.device_id && device) {
          data.device = await fetchView(this.hass, "device", { device_id: device.device_id });
        }
      } else if (view === "registers") {
        if (!device) throw new Error(`${conn.title} has no device`);
        data.device = await fetchView(this.hass, "device", { device_id: device.device_id });
        this._subscribe(device);
      } else if (view === "clusters") {
        data.cluster = await fetchView(this.hass, "cluster", entry);
        const devices = this._config.device_id ? [device] : conn.devices;
        data.holes = {};
        for (const d of devices) {
          const dv = await fetchView(this.hass, "device", { device_id: d.device_id, period: 0.1 });
          for (const [table, addrs] of Object.entries(dv.holes || {})) data.holes[`${d.unit_id}.${table}`] = addrs;
        }
      }
      this._data = data;
      this._error = undefined;
    } catch (err) {
      this._error = errorText(err);
    } finally {
      this._loading = false;
    }
  }

  _title() {
    if (this._config.title) return this._config.title;
    const d = this._data;
    const name = this._config.device_id ? d?.device && d.conn?.devices.find((x) => x.unit_id === d.device.unit_id)?.name : d?.conn?.title;
    return `${name || "Adaptive Modbus"} · ${VIEW_LABELS[this._config.view]}`;
  }

  render() {
    if (!this._config) return nothing;
    return html`<ha-card>
      <div class="card-header"><div class="name">${this._title()}</div></div>
      <div class="card-content" data-view=${this._config.view}>
        ${this._error ? html`<p class="error" data-error>${this._error}</p>` : nothing}
        ${this._data ? this._renderView() : this._error ? nothing : html`<p class="muted">Loading…</p>`}
        ${this._message ? html`<p class="message" data-message>${this._message}</p>` : nothing}
        ${this._renderProposals()}
      </div>
      ${this._renderButtons()}
    </ha-card>`;
  }

  _renderView() {
    switch (this._config.view) {
      case "registers": return this._renderRegisters();
      case "clusters": return renderClusters(this._data.cluster, this._data.holes,
        this._config.device_id ? this._data.device?.unit_id ?? this._data.conn.devices.find((d) => d.device_id === this._config.device_id)?.unit_id ?? null : null);
      case "charts": return this._renderCharts();
      default: return this._renderOverview();
    }
  }

  _show(item) {
    return this._config.show.includes(item);
  }

  _renderOverview() {
    const sys = this._data.system;
    const classes = this._data.device?.interval_classes ?? sys.interval_classes;
    return html`
      <div class="stats">
        ${renderStat("requests / min", formatNumber(sys.now.requests_per_minute, 1), "requests_per_minute")}
        ${renderStat("saving vs fixed polling", formatPercent(sys.now.saving_vs_fixed_percent), "saving_vs_fixed")}
        ${renderStat("registers / request", formatNumber(sys.now.registers_per_request, 1), "registers_per_request")}
        ${renderStat("bus busy", formatPercent(sys.now.bus_utilisation_percent, 1), "bus")}
      </div>
      ${this._show("health") ? html`<h4>Health</h4>${renderHealth(sys.health)}` : nothing}
      ${this._show("donut") ? html`<h4>Interval classes</h4>${renderDonut(classes)}` : nothing}`;
  }

  _renderRegisters() {
    const dev = this._data.device;
    const entities = this._data.conn.entities;
    const elapsed = (Date.now() - this._data.fetchedAt) / 1000;
    return html`<div class="table-wrap"><table class="registers">
      <thead><tr><th>Register</th><th class="num">Value</th><th>Interval</th>
        ${this._show("age") ? html`<th class="num">Age</th>` : nothing}</tr></thead>
      <tbody>${dev.registers.map((reg) => {
        const entityId = entities[reg.uid];
        const stateObj = entityId ? this.hass.states[entityId] : undefined;
        const name = stateObj?.attributes.friendly_name ?? reg.key;
        const value = stateObj
          ? (this.hass.formatEntityState ? this.hass.formatEntityState(stateObj) : stateObj.state)
          : reg.value === null ? "–" : String(reg.value);
        return html`<tr class="register ${reg.enabled ? "" : "muted"}" data-uid=${reg.uid}
            data-entity=${entityId ?? ""} data-state=${stateObj ? stateObj.state : ""}>
          <td class="name" title=${`${reg.table} ${reg.address}`}>${name}</td>
          <td class="num value">${value}</td>
          <td class="interval" title=${this._show("reason") ? `${reg.reason}${reg.detail ? `: ${reg.detail}` : ""}` : ""}>
            ${renderIntervalBar(reg)}<span class="muted">${formatDuration(reg.effective_interval)}</span></td>
          ${this._show("age") ? html`<td class="num age">${reg.age === null ? "–" : formatDuration(reg.age + elapsed)}</td>` : nothing}
        </tr>`;
      })}</tbody></table></div>`;
  }

  _renderCharts() {
    const images = Object.values(this.hass.entities || {})
      .filter((e) => e.platform === "adaptive_modbus" && e.entity_id.startsWith("image."))
      .filter((e) => !this._config.device_id || e.device_id === this._config.device_id)
      .map((e) => this.hass.states[e.entity_id])
      .filter(Boolean);
    if (images.length === 0) return html`<p class="muted" data-no-charts>No charts yet: this version of the integration has no chart images.</p>`;
    return images.map((s) => html`<figure><img style="max-width:100%" alt=${s.attributes.friendly_name ?? s.entity_id}
      src=${s.attributes.entity_picture}><figcaption class="muted">${s.attributes.friendly_name}</figcaption></figure>`);
  }

  _renderProposals() {
    const p = this._proposals;
    if (!p) return nothing;
    const list = Array.isArray(p.proposals) ? p.proposals : null;
    return html`<div class="proposals" data-proposals>
      <h4>Quick optimization (dry run)</h4>
      ${list === null
        ? html`<pre>${JSON.stringify(p, null, 2)}</pre>`
        : list.length === 0
          ? html`<p class="muted" data-no-proposals>No changes proposed${p.note ? `: ${p.note}` : "."}</p>`
          : html`<ul>${list.map((item) => html`<li data-proposal=${item.id ?? ""}>${proposalText(item)}</li>`)}</ul>`}
      <button class="am primary" data-action="apply" ?disabled=${this._busy || (list !== null && list.length === 0)} @click=${this._apply}>Apply</button>
      <button class="am" @click=${() => { this._proposals = undefined; }}>Discard</button>
    </div>`;
  }

  _renderButtons() {
    if (!this.hass?.user?.is_admin || !this._show("buttons")) return nothing;
    const canOptimize = hasService(this.hass, "run_optimization");
    return html`<div class="card-actions">
      <button class="am" data-action="refresh" ?disabled=${this._busy} @click=${this._refresh}>Refresh now</button>
      <button class="am" data-action="optimize" ?disabled=${this._busy || !canOptimize}
        title=${canOptimize ? "Dry run first; apply from the result" : "This version has no run_optimization service"}
        @click=${this._dryRun}>Run quick optimization (dry run)</button>
      <button class="am" data-action="panel" @click=${() => navigate(PANEL_PATH)}>Open panel</button>
    </div>`;
  }

  _entryData() {
    return this._data?.conn ? { config_entry_id: this._data.conn.config_entry_id } : {};
  }

  async _action(fn) {
    this._busy = true;
    this._message = undefined;
    try {
      await fn();
    } catch (err) {
      this._message = `Failed: ${errorText(err)}`;
    } finally {
      this._busy = false;
    }
  }

  _refresh = () => this._action(async () => {
    const target = this._config.device_id ? { device_id: this._config.device_id } : this._entryData();
    await refreshNow(this.hass, target);
    await this._load();
    this._message = "Refreshed.";
  });

  _dryRun = () => this._action(async () => {
    this._proposals = await callService(this.hass, "run_optimization",
      { ...this._entryData(), mode: "quick", dry_run: true }, true) ?? {};
  });

  _apply = () => this._action(async () => {
    const result = await callService(this.hass, "run_optimization",
      { ...this._entryData(), mode: "quick", dry_run: false }, true);
    this._proposals = undefined;
    const applied = result?.applied ?? [];
    this._message = applied.length ? `Applied: ${applied.join(", ")}` : `Nothing applied${result?.note ? `: ${result.note}` : "."}`;
    await this._load();
  });

  static styles = [sharedStyles, css`
    ha-card { overflow: hidden; }
    .card-content { padding-top: 0; }
    h4 { margin: 12px 0 6px; font-weight: 500; }
    .card-actions { display: flex; flex-wrap: wrap; gap: 8px; padding: 8px 16px; border-top: 1px solid var(--am-line); }
    td.interval { min-width: 90px; }
    td.interval .bar { margin: 5px 0 2px; }
    .problems { margin: 4px 0; padding-left: 20px; }
  `];
}

export class AdaptiveModbusCardEditor extends LitElement {
  static properties = {
    hass: { attribute: false },
    _config: { state: true },
    _targets: { state: true },
  };

  setConfig(config) {
    this._config = { ...config };
  }

  updated(changed) {
    if (changed.has("hass") && this.hass && !this._targets) {
      fetchTargets(this.hass).then((t) => { this._targets = t; }, () => { this._targets = []; });
    }
  }

  _changed(patch) {
    const config = { ...this._config, ...patch };
    for (const [k, v] of Object.entries(config)) if (v === undefined || v === "") delete config[k];
    this._config = config;
    this.dispatchEvent(new CustomEvent("config-changed", { detail: { config }, bubbles: true, composed: true }));
  }

  _target(ev) {
    const [kind, id] = ev.target.value.split(":");
    this._changed({ device_id: kind === "device" ? id : undefined, config_entry_id: kind === "entry" ? id : undefined });
  }

  _toggle(item, on) {
    const show = new Set(this._config.show ?? DEFAULT_SHOW);
    if (on) show.add(item); else show.delete(item);
    this._changed({ show: SHOW_OPTIONS.filter((s) => show.has(s)) });
  }

  render() {
    if (!this._config) return nothing;
    const current = this._config.device_id ? `device:${this._config.device_id}`
      : this._config.config_entry_id ? `entry:${this._config.config_entry_id}` : "";
    const show = this._config.show ?? DEFAULT_SHOW;
    return html`<div class="editor">
      <label>Connection or device
        <select data-field="target" @change=${this._target}>
          <option value="" ?selected=${current === ""}>The only connection</option>
          ${(this._targets || []).map((c) => html`
            <option value="entry:${c.config_entry_id}" ?selected=${current === `entry:${c.config_entry_id}`}>${c.title}</option>
            ${c.devices.map((d) => html`<option value="device:${d.device_id}" ?selected=${current === `device:${d.device_id}`}>
              ${c.title} › ${d.name} (unit ${d.unit_id})</option>`)}`)}
        </select></label>
      <label>View
        <select data-field="view" @change=${(e) => this._changed({ view: e.target.value })}>
          ${VIEWS.map((v) => html`<option value=${v} ?selected=${(this._config.view ?? "overview") === v}>${VIEW_LABELS[v]}</option>`)}
        </select></label>
      <label>Title <input data-field="title" .value=${this._config.title ?? ""}
        @change=${(e) => this._changed({ title: e.target.value || undefined })}></label>
      <fieldset><legend>Show</legend>
        ${SHOW_OPTIONS.map((s) => html`<label class="check"><input type="checkbox" data-show=${s}
          .checked=${show.includes(s)} @change=${(e) => this._toggle(s, e.target.checked)}> ${s}</label>`)}
      </fieldset>
    </div>`;
  }

  static styles = [sharedStyles, css`
    .editor { display: grid; gap: 12px; }
    label { display: grid; gap: 4px; }
    label.check { display: inline-flex; gap: 4px; margin-right: 12px; align-items: center; }
    fieldset { border: 1px solid var(--am-line); border-radius: 4px; }
  `];
}
