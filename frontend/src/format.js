// Pure helpers of the card and the panel: formatting, colours, geometry, config checks.
// No DOM, no Home Assistant: unit-tested with node's test runner (frontend/test/).

export const VIEWS = ["overview", "registers", "clusters", "charts"];
export const SHOW_OPTIONS = ["health", "donut", "buttons", "age", "reason"];
export const DEFAULT_SHOW = ["health", "donut", "buttons", "age", "reason"];

/** Check a card config; throw an Error that says what is wrong (HA shows it in the card). */
export function validateConfig(config) {
  if (!config || typeof config !== "object" || Array.isArray(config)) {
    throw new Error("Invalid configuration: expected a mapping");
  }
  const view = config.view ?? "overview";
  if (!VIEWS.includes(view)) {
    throw new Error(`Unknown view "${view}": use one of ${VIEWS.join(", ")}`);
  }
  if (config.device_id && config.config_entry_id) {
    throw new Error("Give either device_id or config_entry_id, not both");
  }
  for (const key of ["device_id", "config_entry_id", "title"]) {
    if (config[key] !== undefined && typeof config[key] !== "string") {
      throw new Error(`${key} must be a string`);
    }
  }
  const show = config.show ?? DEFAULT_SHOW;
  if (!Array.isArray(show)) throw new Error("show must be a list");
  for (const item of show) {
    if (!SHOW_OPTIONS.includes(item)) {
      throw new Error(`Unknown show option "${item}": use ${SHOW_OPTIONS.join(", ")}`);
    }
  }
  return { ...config, view, show: [...show] };
}

/** Seconds as a short duration: 0.5 s, 12 s, 5 min, 1.5 h, 2 d. */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, seconds);
  const trim = (x) => String(Math.round(x * 10) / 10);
  if (s < 1) return `${trim(s)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${trim(s / 60)} min`;
  if (s < 86400) return `${trim(s / 3600)} h`;
  return `${trim(s / 86400)} d`;
}

/** A number with at most `digits` decimals, or a dash. */
export function formatNumber(value, digits = 1) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  const f = 10 ** digits;
  return String(Math.round(value * f) / f);
}

export function formatPercent(value, digits = 0) {
  const n = formatNumber(value, digits);
  return n === "–" ? n : `${n} %`;
}

/** The palette class an interval falls into (classes sorted by `upper`, last one open). */
export function classFor(interval, classes) {
  if (!classes || classes.length === 0) return null;
  for (const c of classes) {
    if (c.upper === null || c.upper === undefined || interval <= c.upper) return c;
  }
  return classes[classes.length - 1];
}

/** Width of an interval bar in percent: log scale between `min` and `max` seconds. */
export function intervalBarPercent(interval, min = 1, max = 3600) {
  if (!Number.isFinite(interval) || interval <= 0) return 0;
  const lo = Math.log(min);
  const hi = Math.log(max);
  const x = (Math.log(Math.min(Math.max(interval, min), max)) - lo) / (hi - lo);
  return Math.round(Math.max(0.04, x) * 1000) / 10;
}

/** SVG arc paths of a donut: one per class with a count, in palette order. */
export function donutSegments(classes, radius = 40, inner = 26) {
  const total = (classes || []).reduce((sum, c) => sum + (c.count || 0), 0);
  if (total === 0) return [];
  const out = [];
  let start = -Math.PI / 2;
  const pt = (r, a) => `${round3(r * Math.cos(a))} ${round3(r * Math.sin(a))}`;
  for (const c of classes) {
    if (!c.count) continue;
    const share = c.count / total;
    if (share >= 0.9999) {
      // a full ring: two half arcs (one arc cannot start and end at the same point)
      const mid = start + Math.PI;
      const end = start + 2 * Math.PI;
      out.push({
        name: c.name,
        colour: c.colour,
        count: c.count,
        d:
          `M ${pt(radius, start)} A ${radius} ${radius} 0 1 1 ${pt(radius, mid)} ` +
          `A ${radius} ${radius} 0 1 1 ${pt(radius, end)} L ${pt(inner, end)} ` +
          `A ${inner} ${inner} 0 1 0 ${pt(inner, mid)} A ${inner} ${inner} 0 1 0 ${pt(inner, start)} Z`,
      });
      break;
    }
    const end = start + share * 2 * Math.PI;
    const large = share > 0.5 ? 1 : 0;
    out.push({
      name: c.name,
      colour: c.colour,
      count: c.count,
      d:
        `M ${pt(radius, start)} A ${radius} ${radius} 0 ${large} 1 ${pt(radius, end)} ` +
        `L ${pt(inner, end)} A ${inner} ${inner} 0 ${large} 0 ${pt(inner, start)} Z`,
    });
    start = end;
  }
  return out;
}

function round3(x) {
  return Math.round(x * 1000) / 1000;
}

/**
 * Cells of an address strip for one unit and table: each address from the first
 * block's start (or learned hole) to the last block's end (or hole), marked "hole",
 * "block" or "gap". Learned holes outside every block (the planner reads around
 * them) are shown too.
 */
export function addressStrip(blocks, learnedHoles = [], maxCells = 400) {
  if ((!blocks || blocks.length === 0) && learnedHoles.length === 0) return [];
  const ends = [...(blocks || []).flatMap((b) => [b.address, b.end]), ...learnedHoles];
  const lo = Math.min(...ends);
  const hi = Math.max(...ends);
  const holes = new Set([...(blocks || []).flatMap((b) => b.holes || []), ...learnedHoles]);
  const cells = [];
  for (let a = lo; a <= hi && cells.length < maxCells; a++) {
    const block = blocks.find((b) => b.address <= a && a <= b.end);
    cells.push({ address: a, kind: holes.has(a) ? "hole" : block ? "block" : "gap" });
  }
  return cells;
}

/** Text colour (black or white) that reads on a background `#rrggbb`. */
export function contrastText(hex) {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex || "");
  if (!m) return "#000";
  const n = parseInt(m[1], 16);
  const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255].map((v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  const lum = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return lum > 0.179 ? "#000" : "#fff";
}

/** Rows the card takes in the masonry layout (HA's getCardSize: one row ~ 50 px). */
export function cardSize(view, registerCount = 0) {
  if (view === "registers") return 2 + Math.ceil(registerCount / 2);
  if (view === "clusters") return 6;
  if (view === "charts") return 5;
  return 5;
}

/** One line for an optimizer proposal (run_optimization's `proposals` items). */
export function proposalText(p) {
  if (typeof p === "string") return p;
  const show = (v) => (v === null || v === undefined ? "–" : typeof v === "number" ? formatNumber(v, 3) : JSON.stringify(v));
  const head = `${p.strategy ?? "?"}: ${p.parameter ?? "?"} of ${p.target ?? "?"} ${show(p.before)} → ${show(p.after)}`;
  const gain = p.predicted_gain === null || p.predicted_gain === undefined ? "" : `, predicted gain ${formatPercent(100 * p.predicted_gain, 1)}`;
  return `${head}${gain}${p.reason ? ` (${p.reason})` : ""}`;
}

/** One line for an audit entry (get_optimization_statistics' `audit` items). */
export function auditText(a) {
  const show = (v) => (v === null || v === undefined ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v));
  const who = a.actor?.name ?? a.actor?.kind ?? "";
  return `${a.action} ${a.target}: ${show(a.before)} → ${show(a.after)} [${a.outcome}]${who ? ` by ${who}` : ""}`;
}

/** One line for an interval pin (get_optimization_statistics' `pins` values). */
export function pinText(p) {
  const d = formatDuration;
  const has = (v) => v !== null && v !== undefined;
  const what = has(p.interval) ? `fixed at ${d(p.interval)}`
    : has(p.min_interval) && has(p.max_interval) ? `between ${d(p.min_interval)} and ${d(p.max_interval)}`
      : has(p.min_interval) ? `at least ${d(p.min_interval)}` : `at most ${d(p.max_interval)}`;
  return has(p.effective_interval) ? `${what} (now ${d(p.effective_interval)})` : what;
}
