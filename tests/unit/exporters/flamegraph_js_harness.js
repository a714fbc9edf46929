// Runs the flame graph's embedded script against a minimal fake DOM built
// from the SVG text, and checks hover, zoom, unzoom and search behaviour.
// Usage: node flamegraph_js_harness.js graph.svg   (exit 0 and "OK" on success)
"use strict";
const fs = require("fs");
const vm = require("vm");

const svgText = fs.readFileSync(process.argv[2], "utf8");
const failures = [];
function check(cond, what) { if (!cond) failures.push(what); }
function unescapeXml(s) {
  return s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&apos;/g, "'")
      .replace(/&amp;/g, "&");
}
function parseAttrs(s) {
  const out = {};
  for (const m of s.matchAll(/([\w:-]+)="([^"]*)"/g)) out[m[1]] = unescapeXml(m[2]);
  return out;
}

class Node {
  constructor(name, attrs, text) {
    this.nodeName = name;
    this.attrs = attrs || {};
    this.children = [];
    this.parentNode = null;
    this._text = text || "";
    const self = this;
    const cls = new Set((this.attrs["class"] || "").split(/\s+/).filter(Boolean));
    this.classList = {
      add: (c) => cls.add(c), remove: (c) => cls.delete(c), contains: (c) => cls.has(c), _set: cls,
    };
    this.firstChild = { get nodeValue() { return self._text; }, set nodeValue(v) { self._text = v; } };
    this.listeners = {};
  }
  get textContent() { return this._text; }
  set textContent(v) { this._text = v; }
  getAttribute(n) { return n in this.attrs ? this.attrs[n] : null; }
  setAttribute(n, v) { this.attrs[n] = String(v); }
  append(child) { child.parentNode = this; this.children.push(child); return child; }
  getElementsByTagName(n) {
    const out = [];
    const walk = (node) => { for (const c of node.children) { if (c.nodeName === n) out.push(c); walk(c); } };
    walk(this);
    return out;
  }
  addEventListener(type, fn) { this.listeners[type] = fn; }
}

const rootAttrs = parseAttrs(svgText.match(/<svg ([^>]*)>/)[1]);
const svg = new Node("svg", rootAttrs);
const byId = {};
for (const m of svgText.matchAll(/<text ([^>]*)>([^<]*)<\/text>/g)) {
  const a = parseAttrs(m[1]);
  if (a.id) byId[a.id] = svg.append(new Node("text", a, unescapeXml(m[2])));
}
const frames = svg.append(new Node("g", { id: "frames" }));
byId.frames = frames;
const groups = [];
const frameRe = /<g class="f" ([^>]*)><title>([^<]*)<\/title><rect ([^>]*)\/><text ([^>]*)>([^<]*)<\/text><\/g>/g;
for (const m of svgText.matchAll(frameRe)) {
  const g = frames.append(new Node("g", Object.assign(parseAttrs(m[1]), { "class": "f" })));
  g.append(new Node("title", {}, unescapeXml(m[2])));
  g.append(new Node("rect", parseAttrs(m[3])));
  g.append(new Node("text", parseAttrs(m[4]), unescapeXml(m[5])));
  groups.push(g);
}
check(groups.length > 5, "frames parsed: " + groups.length);

const windowListeners = {};
let promptAnswer = null;
const context = {
  document: { documentElement: svg, getElementById: (id) => byId[id] || null },
  window: { addEventListener: (t, fn) => { windowListeners[t] = fn; } },
  prompt: () => promptAnswer,
};
context.globalThis = context;
vm.createContext(context);
vm.runInContext(svgText.match(/<script[^>]*><!\[CDATA\[([\s\S]*?)\]\]><\/script>/)[1], context);
context.init({});

const frame = (title) => groups.find((g) => g.getElementsByTagName("title")[0].textContent.startsWith(title + " ("));
const rect = (g) => g.getElementsByTagName("rect")[0];
const num = (g, a) => +rect(g).getAttribute(a);
const hidden = (g) => g.classList.contains("hide");
const width = +rootAttrs.width, xpad = +rootAttrs["fg:xpad"], inner = width - 2 * xpad;
const initial = groups.map((g) => [rect(g).getAttribute("x"), rect(g).getAttribute("width")]);

// Hover shows the tooltip text in the details line.
const tickLoop = frame("tick_loop");
frames.listeners.mouseover({ target: rect(tickLoop) });
check(byId.details.textContent === tickLoop.getElementsByTagName("title")[0].textContent,
      "hover details: " + byId.details.textContent);
frames.listeners.mouseout({});

// Click tick_loop: it fills the width, ancestors fade, unrelated frames hide,
// descendants scale by total/zoomed.
frames.listeners.click({ target: tickLoop.getElementsByTagName("text")[0] });
check(Math.abs(num(tickLoop, "x") - xpad) < 0.11 && Math.abs(num(tickLoop, "width") - inner) < 0.11,
      "zoomed frame spans the width: " + num(tickLoop, "x") + " " + num(tickLoop, "width"));
check(frame("main").classList.contains("parent") && !hidden(frame("main")), "ancestor faded, visible");
check(hidden(frame("net_flush")), "sibling subtree hidden");
const physics = groups.find((g) => g.getAttribute("fg:d") === "3" &&
                                   g.getElementsByTagName("title")[0].textContent.startsWith("tick_physics ("));
const zw = +tickLoop.getAttribute("fg:w");
check(Math.abs(num(physics, "width") - (+physics.getAttribute("fg:w")) * inner / zw) < 0.11,
      "child rescaled: " + num(physics, "width"));
check(!byId.unzoom.classList.contains("hide"), "Reset Zoom shown");

// Reset Zoom restores the original layout exactly.
byId.unzoom.listeners.click({});
check(groups.every((g, i) => rect(g).getAttribute("x") === initial[i][0] &&
                             rect(g).getAttribute("width") === initial[i][1] && !hidden(g)),
      "unzoom restores layout");
check(byId.unzoom.classList.contains("hide"), "Reset Zoom hidden again");

// Search: matches turn magenta; nested matches count once.
promptAnswer = "^tick_";
byId.search.listeners.click({});
check(rect(tickLoop).getAttribute("fill") === "rgb(230,0,230)", "match highlighted");
check(rect(frame("main")).getAttribute("fill") !== "rgb(230,0,230)", "non-match untouched");
const total = +rootAttrs["fg:total"];
const expectPct = (100 * (+tickLoop.getAttribute("fg:w")) / total).toFixed(2);
check(byId.matched.textContent.startsWith("Matched: " + expectPct + "%"), "matched text: " + byId.matched.textContent);
check(!byId.matched.classList.contains("hide"), "matched shown");
byId.search.listeners.click({});  // second click resets
check(rect(tickLoop).getAttribute("fill") === tickLoop.getAttribute("fg:fill"), "search reset restores fill");
check(byId.matched.classList.contains("hide"), "matched hidden after reset");

// An invalid regular expression is searched literally instead of throwing.
promptAnswer = "operator<<(";
byId.search.listeners.click({});
check(rect(frame("operator<<(std::ostream&, Vec3 const&)")).getAttribute("fill") === "rgb(230,0,230)",
      "literal fallback for invalid regexp");

if (failures.length) {
  console.log("FAILED:\n" + failures.join("\n"));
  process.exit(1);
}
console.log("OK");
