import { test } from "node:test";
import assert from "node:assert/strict";
import {
  addressStrip, cardSize, classFor, contrastText, donutSegments, formatDuration,
  formatPercent, intervalBarPercent, pinText, validateConfig,
} from "../src/format.js";

const CLASSES = [
  { name: "fast", colour: "#d62728", upper: 10, count: 2 },
  { name: "medium", colour: "#ff7f0e", upper: 60, count: 1 },
  { name: "slow", colour: "#1f77b4", upper: null, count: 0 },
];

test("validateConfig fills defaults and refuses bad input with the key named", () => {
  assert.deepEqual(validateConfig({ type: "x" }).view, "overview");
  assert.throws(() => validateConfig({ view: "pie" }), /Unknown view "pie"/);
  assert.throws(() => validateConfig({ device_id: "a", config_entry_id: "b" }), /either/);
  assert.throws(() => validateConfig({ show: ["health", "nope"] }), /"nope"/);
  assert.throws(() => validateConfig({ show: "health" }), /show must be a list/);
  assert.throws(() => validateConfig({ device_id: 5 }), /device_id must be a string/);
  assert.throws(() => validateConfig(null), /mapping/);
});

test("formatDuration picks the unit", () => {
  assert.equal(formatDuration(0.25), "0.3 s");
  assert.equal(formatDuration(12.4), "12 s");
  assert.equal(formatDuration(300), "5 min");
  assert.equal(formatDuration(5400), "1.5 h");
  assert.equal(formatDuration(2 * 86400), "2 d");
  assert.equal(formatDuration(null), "–");
  assert.equal(formatPercent(42.46, 1), "42.5 %");
  assert.equal(formatPercent(null), "–");
});

test("classFor follows the palette's upper bounds, the last class is open", () => {
  assert.equal(classFor(5, CLASSES).name, "fast");
  assert.equal(classFor(10, CLASSES).name, "fast");
  assert.equal(classFor(11, CLASSES).name, "medium");
  assert.equal(classFor(9999, CLASSES).name, "slow");
  assert.equal(classFor(5, []), null);
});

test("intervalBarPercent is logarithmic and clamped", () => {
  assert.equal(intervalBarPercent(3600), 100);
  assert.equal(intervalBarPercent(60), 50);
  assert.equal(intervalBarPercent(1), 4);
  assert.equal(intervalBarPercent(0), 0);
  assert.ok(intervalBarPercent(10) < intervalBarPercent(20));
});

test("donutSegments: one path per non-empty class, a full ring for a single class", () => {
  const segs = donutSegments(CLASSES);
  assert.deepEqual(segs.map((s) => s.name), ["fast", "medium"]);
  assert.equal(segs[0].colour, "#d62728");
  assert.match(segs[0].d, /A 40 40 0 1 1/); // 2 of 3: the large arc
  assert.match(segs[1].d, /A 40 40 0 0 1/);
  const ring = donutSegments([{ name: "slow", colour: "#000", upper: null, count: 4 }]);
  assert.equal(ring.length, 1);
  assert.equal((ring[0].d.match(/ A /g) || []).length, 4);
  assert.deepEqual(donutSegments([]), []);
});

test("addressStrip marks holes, blocks and gaps", () => {
  const cells = addressStrip([
    { address: 0, end: 2, holes: [] },
    { address: 5, end: 11, holes: [10] },
  ]);
  assert.equal(cells.length, 12);
  assert.equal(cells[3].kind, "gap");
  assert.equal(cells[10].kind, "hole");
  assert.equal(cells[11].kind, "block");
  assert.deepEqual(addressStrip([]), []);
  // a learned hole the planner now reads around: outside every block, still shown
  const around = addressStrip([{ address: 0, end: 9, holes: [] }, { address: 11, end: 12, holes: [] }], [10]);
  assert.deepEqual(around.map((c) => c.kind).slice(9, 12), ["block", "hole", "block"]);
  assert.equal(addressStrip([], [7]).length, 1);
});

test("contrastText picks readable text", () => {
  assert.equal(contrastText("#ffffff"), "#000");
  assert.equal(contrastText("#000000"), "#fff");
  assert.equal(contrastText("#1f77b4"), "#fff");
  assert.equal(contrastText("bogus"), "#000");
});

test("cardSize grows with registers", () => {
  assert.equal(cardSize("overview"), 5);
  assert.equal(cardSize("registers", 10), 7);
});

test("proposalText and auditText say what changes", async () => {
  const { proposalText, auditText } = await import("../src/format.js");
  assert.equal(
    proposalText({ strategy: "interval", parameter: "max_interval", target: "1.power", before: 300, after: 150, predicted_gain: 0.125, reason: "stale" }),
    "interval: max_interval of 1.power 300 → 150, predicted gain 12.5 % (stale)",
  );
  assert.equal(proposalText("x"), "x");
  assert.equal(
    auditText({ action: "rollback", target: "connection", before: { a: 1 }, after: null, outcome: "applied", actor: { kind: "user", name: "Owner" } }),
    'rollback connection: {"a":1} → – [applied] by Owner',
  );
});

test("pinText says what a pin holds and the interval in force", () => {
  assert.equal(pinText({ interval: 10, min_interval: null, max_interval: null, effective_interval: 10 }), "fixed at 10 s (now 10 s)");
  assert.equal(pinText({ min_interval: 5, max_interval: 600 }), "between 5 s and 10 min");
  assert.equal(pinText({ min_interval: 5, effective_interval: 40 }), "at least 5 s (now 40 s)");
  assert.equal(pinText({ max_interval: 30 }), "at most 30 s");
});
