// One module for the card and the panel: HA loads it on every page (extra module) and
// as the panel's module; the elements are defined once.
import { AdaptiveModbusCard, AdaptiveModbusCardEditor } from "./card.js";
import { AdaptiveModbusPanel } from "./panel.js";

const define = (name, cls) => {
  if (!window.customElements.get(name)) window.customElements.define(name, cls);
};
const defineAll = () => {
  define("adaptive-modbus-card", AdaptiveModbusCard);
  define("adaptive-modbus-card-editor", AdaptiveModbusCardEditor);
  define("adaptive-modbus-panel", AdaptiveModbusPanel);
};
// As an extra module this file can run before HA's app has installed its scoped
// custom element registry polyfill, which replaces window.customElements and does not
// see elements defined before it: define ours once HA's root element exists.
if (window.customElements.get("home-assistant")) defineAll();
else window.customElements.whenDefined("home-assistant").then(defineAll);

window.customCards = window.customCards || [];
if (!window.customCards.some((c) => c.type === "adaptive-modbus-card")) {
  window.customCards.push({
    type: "adaptive-modbus-card",
    name: "Adaptive Modbus",
    description: "Polling overview, registers with their intervals, clusters and charts of Adaptive Modbus",
    preview: false,
    documentationURL: "https://github.com/adaptive-modbus/adaptive-modbus#the-card-and-the-panel",
  });
}
