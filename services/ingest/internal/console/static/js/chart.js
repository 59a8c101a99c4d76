// Charts drawn by hand: inline SVG built with DOM calls (no library, no
// markup strings). Colors come from the stylesheet's classes, so they
// follow the light and dark themes; every chart has a text alternative.

const NS = "http://www.w3.org/2000/svg";
const W = 640, H = 170, LEFT = 44, RIGHT = 8, TOP = 10, BOTTOM = 24;

// s builds an SVG element; children are elements or text.
function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// slots spreads a series over every bucket of the window: a bucket
// without attempts is absent from the API's answer and drawn as zero.
export function slots(series, since, until, bucketSeconds) {
  const start = Date.parse(since), step = bucketSeconds * 1000;
  const n = Math.max(1, Math.ceil((Date.parse(until) - start) / step));
  const out = Array.from({ length: n }, (_, i) => ({ start: new Date(start + i * step), b: null }));
  for (const b of series) {
    const i = Math.floor((Date.parse(b.start) - start) / step);
    if (i >= 0 && i < n) out[i].b = b;
  }
  return out;
}

// niceMax rounds a chart's top up to 1, 2 or 5 times a power of ten.
function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= v);
}

function frame(label, top, unit, buckets) {
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": label });
  svg.append(s("title", {}, label));
  const plotH = H - TOP - BOTTOM;
  for (const f of [0, 0.5, 1]) {
    const y = TOP + plotH * (1 - f);
    svg.append(s("line", { x1: LEFT, x2: W - RIGHT, y1: y, y2: y, class: "grid" }),
      s("text", { x: LEFT - 6, y: y + 4, class: "axis", "text-anchor": "end" }, Math.round(top * f) + (f === 1 ? unit : "")));
  }
  const fmt = (d) => d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  if (buckets.length) {
    const last = buckets.length - 1;
    for (const [i, anchor] of [[0, "start"], [Math.floor(last / 2), "middle"], [last, "end"]]) {
      svg.append(s("text", { x: xOf(i, buckets.length) + (anchor === "end" ? barW(buckets.length) : 0), y: H - 6, class: "axis", "text-anchor": anchor }, fmt(buckets[i].start)));
    }
  }
  return { svg, plotH };
}

function barW(n) { return (W - LEFT - RIGHT) / n; }
function xOf(i, n) { return LEFT + i * barW(n); }

// deliveriesChart: attempts per bucket, stacked by outcome.
export function deliveriesChart(buckets, label) {
  const top = niceMax(Math.max(0, ...buckets.map((x) => (x.b ? x.b.attempts : 0))));
  const { svg, plotH } = frame(label, top, "", buckets);
  const w = barW(buckets.length);
  buckets.forEach((x, i) => {
    if (!x.b) return;
    let y = TOP + plotH;
    const g = s("g", {}, s("title", {}, `${x.start.toLocaleTimeString()}: ${x.b.attempts} attempts, ${x.b.delivered} delivered, ${x.b.retrying} to retry, ${x.b.failed} given up`));
    for (const part of ["delivered", "retrying", "failed"]) {
      const hgt = (x.b[part] / top) * plotH;
      if (hgt <= 0) continue;
      y -= hgt;
      g.append(s("rect", { x: xOf(i, buckets.length) + w * 0.1, y, width: Math.max(1, w * 0.8), height: hgt, class: "bar " + part }));
    }
    svg.append(g);
  });
  return svg;
}

// latencyChart: p50 and p95 of each bucket's attempts, as two lines.
export function latencyChart(buckets, label) {
  const top = niceMax(Math.max(0, ...buckets.map((x) => (x.b ? x.b.latency_ms.p95 : 0))));
  const { svg, plotH } = frame(label, top, " ms", buckets);
  const w = barW(buckets.length);
  for (const p of ["p50", "p95"]) {
    const pts = buckets.flatMap((x, i) => x.b
      ? [`${(xOf(i, buckets.length) + w / 2).toFixed(1)},${(TOP + plotH * (1 - x.b.latency_ms[p] / top)).toFixed(1)}`]
      : []);
    if (!pts.length) continue;
    svg.append(s("polyline", { points: pts.join(" "), class: "line " + p }));
    // A dot on each minute: a lone one is a point, not an invisible line.
    for (const pt of pts) {
      const [cx, cy] = pt.split(",");
      svg.append(s("circle", { cx, cy, r: 2.5, class: "dot " + p }));
    }
  }
  return svg;
}
