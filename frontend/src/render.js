// Lit templates shared by the card and the panel.
import { html, svg, css, nothing } from "lit";
import {
  addressStrip, contrastText, donutSegments, formatDuration, intervalBarPercent,
} from "./format.js";

export const sharedStyles = css`
  :host {
    --am-muted: var(--secondary-text-color, #727272);
    --am-line: var(--divider-color, rgba(0, 0, 0, 0.12));
  }
  .muted { color: var(--am-muted); }
  .error { color: var(--error-color, #db4437); }
  .stats { display: flex; flex-wrap: wrap; gap: 8px 24px; }
  .stat .big { font-size: 1.6em; font-weight: 500; line-height: 1.2; }
  .stat .label { color: var(--am-muted); font-size: 0.85em; }
  .donut { display: flex; align-items: center; gap: 16px; flex-wrap: wrap; }
  .donut svg { width: 96px; height: 96px; flex: none; }
  .legend { display: grid; grid-template-columns: auto 1fr auto; gap: 2px 8px; font-size: 0.9em; }
  .swatch { width: 12px; height: 12px; border-radius: 3px; display: inline-block; margin-top: 3px; }
  .chip { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.85em; font-weight: 500; }
  .chip.ok { background: var(--success-color, #43a047); color: #fff; }
  .chip.degraded { background: var(--warning-color, #ffa600); color: #000; }
  .chip.down { background: var(--error-color, #db4437); color: #fff; }
  table { width: 100%; border-collapse: collapse; font-size: 0.9em; }
  th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--am-line); vertical-align: top; }
  th { color: var(--am-muted); font-weight: 500; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  .table-wrap { overflow-x: auto; }
  .bar { height: 8px; background: var(--am-line); border-radius: 4px; min-width: 40px; }
  .bar > div { height: 100%; border-radius: 4px; }
  .strip { display: flex; flex-wrap: wrap; gap: 1px; margin: 4px 0 8px; }
  .cell { width: 10px; height: 14px; border-radius: 2px; }
  .cell.block { background: var(--primary-color, #03a9f4); }
  .cell.gap { background: var(--am-line); }
  .cell.hole { background: var(--error-color, #db4437); }
  .hole-tag { display: inline-block; padding: 0 6px; border-radius: 8px; background: var(--error-color, #db4437); color: #fff; margin: 1px; }
  button.am {
    font: inherit; font-size: 0.9em; cursor: pointer; border-radius: 4px; padding: 6px 12px;
    border: 1px solid var(--primary-color, #03a9f4); background: transparent; color: var(--primary-color, #03a9f4);
  }
  button.am.primary { background: var(--primary-color, #03a9f4); color: var(--text-primary-color, #fff); }
  button.am[disabled] { opacity: 0.5; cursor: default; }
  select, input { font: inherit; color: var(--primary-text-color); background: var(--card-background-color, #fff);
    border: 1px solid var(--am-line); border-radius: 4px; padding: 4px 6px; }
  pre { white-space: pre-wrap; word-break: break-word; font-size: 0.85em; }
`;

export function renderStat(label, value, id) {
  return html`<div class="stat" data-stat=${id}><div class="big">${value}</div><div class="label">${label}</div></div>`;
}

export function renderHealth(health) {
  if (!health) return nothing;
  return html`<div class="health" data-health=${health.status}>
    <span class="chip ${health.status}">${health.status}</span>
    ${health.problems?.length
      ? html`<ul class="problems">${health.problems.map((p) => html`<li>${p}</li>`)}</ul>`
      : html`<span class="muted">no problems</span>`}
  </div>`;
}

export function renderDonut(classes) {
  const segs = donutSegments(classes);
  const total = (classes || []).reduce((s, c) => s + (c.count || 0), 0);
  return html`<div class="donut" data-donut>
    <svg viewBox="-42 -42 84 84" role="img" aria-label="interval classes">
      ${segs.map((s) => svg`<path d=${s.d} fill=${s.colour}><title>${s.name}: ${s.count}</title></path>`)}
      ${svg`<text x="0" y="5" text-anchor="middle" font-size="14" fill="currentColor">${total}</text>`}
    </svg>
    <div class="legend">
      ${(classes || []).map(
        (c) => html`<span class="swatch" style="background:${c.colour}"></span>
          <span>${c.name}${c.upper !== null && c.upper !== undefined ? html` <span class="muted">≤ ${formatDuration(c.upper)}</span>` : nothing}</span>
          <span class="num" data-class=${c.name}>${c.count}</span>`,
      )}
    </div>
  </div>`;
}

export function renderIntervalBar(reg) {
  const pct = intervalBarPercent(reg.effective_interval);
  const tip = `${formatDuration(reg.effective_interval)} (${reg.interval_class}): ${reg.reason}${reg.detail ? ` – ${reg.detail}` : ""}`;
  return html`<div class="bar" title=${tip} data-reason=${reg.reason ?? ""}>
    <div style="width:${pct}%;background:${reg.colour}"></div>
  </div>`;
}

/** Address strips and block tables of a cluster view, with learned holes per unit/table. */
export function renderClusters(cluster, holes = {}, unitFilter = null) {
  if (!cluster) return nothing;
  const tables = cluster.tables.filter((t) => unitFilter === null || t.unit_id === unitFilter);
  const keys = new Set(tables.map((t) => `${t.unit_id}.${t.table}`));
  // tables with learned holes but no block at all (every register there refused)
  for (const key of Object.keys(holes)) {
    const [unit, table] = key.split(".");
    if (!keys.has(key) && (unitFilter === null || Number(unit) === unitFilter)) {
      tables.push({ unit_id: Number(unit), table, blocks: [] });
    }
  }
  if (tables.length === 0) return html`<p class="muted">No blocks planned yet.</p>`;
  return tables.map((t) => {
    const learned = holes[`${t.unit_id}.${t.table}`] || [];
    const cells = addressStrip(t.blocks, learned);
    return html`<section class="cluster" data-unit=${t.unit_id} data-table=${t.table}>
      <h4>Unit ${t.unit_id} · ${t.table} registers</h4>
      <div class="strip" aria-label="address strip">
        ${cells.map((c) => html`<span class="cell ${c.kind}" data-address=${c.address}
            title="${t.table} ${c.address}: ${c.kind === "hole" ? "learned hole" : c.kind === "block" ? "read" : "not read"}"></span>`)}
      </div>
      ${learned.length
        ? html`<div class="holes">Learned holes: ${learned.map(
            (a) => html`<span class="hole-tag" data-hole="${t.unit_id}.${t.table}:${a}">${a}</span>`)}</div>`
        : nothing}
      <div class="table-wrap"><table>
        <thead><tr><th>Block</th><th class="num">Count</th><th class="num">Members</th>
          <th class="num">Riders</th><th>Holes</th><th class="num">Interval</th><th class="num">Reads</th></tr></thead>
        <tbody>${t.blocks.map((b) => html`<tr>
          <td>${b.address}–${b.end}</td><td class="num">${b.count}</td>
          <td class="num" title=${b.members.join(", ")}>${b.members.length}</td>
          <td class="num" title=${b.riders.join(", ")}>${b.riders.length}</td>
          <td>${b.holes.length ? b.holes.map((a) => html`<span class="hole-tag">${a}</span>`) : html`<span class="muted">–</span>`}</td>
          <td class="num">${formatDuration(b.interval_spread?.min)}${b.interval_spread?.max !== b.interval_spread?.min ? html`–${formatDuration(b.interval_spread?.max)}` : nothing}</td>
          <td class="num">${b.reads}</td></tr>`)}</tbody>
      </table></div>
    </section>`;
  });
}

export { contrastText };
