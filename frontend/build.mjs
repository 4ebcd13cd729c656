// Build the one module of the card and the panel into the integration's frontend/ folder.
// Reproducible: pinned versions (package-lock.json), no timestamps, no source maps.
import { build } from "esbuild";
import { statSync } from "node:fs";

const out = "../custom_components/adaptive_modbus/frontend/adaptive-modbus.js";
const BUDGET = 150 * 1024; // card + panel together, bytes

await build({
  entryPoints: ["src/index.js"],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  legalComments: "eof",
  outfile: out,
  logLevel: "warning",
});
const size = statSync(out).size;
if (size > BUDGET) {
  console.error(`adaptive-modbus.js is ${size} bytes: over the budget of ${BUDGET}`);
  process.exit(1);
}
console.log(`${out}: ${size} bytes (budget ${BUDGET})`);
