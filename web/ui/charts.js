// SPDX-License-Identifier: MIT
// charts.js - the page's charts, drawn on <canvas> with no library: a
// time-series line chart, horizontal bars (sorted maps, histogram
// buckets) and a heat map of histogram buckets over time. Colours come
// from the CSS variables of app.css, so light and dark themes both work.

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

// Size the canvas backing store to its CSS box times devicePixelRatio.
function prepare(canvas, cssHeight) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(50, canvas.clientWidth || canvas.parentNode.clientWidth || 300);
  const h = cssHeight;
  if (canvas.style.height !== h + 'px') canvas.style.height = h + 'px';
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  g.font = '11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';
  g.textBaseline = 'middle';
  return { g, w, h };
}

// 1234567 -> "1.23M"; base 1024 for sizes such as histogram bounds.
export function fmtNum(v, base = 1000) {
  if (v === null || v === undefined || Number.isNaN(v)) return '-';
  if (typeof v === 'string') return v;
  const a = Math.abs(v);
  if (a < base) return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(3)));
  const units = ['K', 'M', 'G', 'T', 'P', 'E'];
  let u = -1;
  let x = v;
  while (Math.abs(x) >= base && u < units.length - 1) { x /= base; u++; }
  const t = Math.abs(x) < 10 ? x.toFixed(2) : Math.abs(x) < 100 ? x.toFixed(1) : x.toFixed(0);
  return (t.includes('.') ? t.replace(/\.?0+$/, '') : t) + units[u];
}

function ticks(min, max, n) {
  if (min === max) return [min];
  const span = max - min;
  const step0 = span / n;
  const mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= step0) || step0;
  const out = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(v);
  return out;
}

// A line chart of [t (seconds), value] points over the last `span` seconds.
export class LineChart {
  constructor(canvas, span = 300) {
    this.canvas = canvas;
    this.span = span;
    this.points = [];
  }

  push(t, v) {
    this.points.push([t, v]);
    while (this.points.length && this.points[0][0] < t - this.span) this.points.shift();
  }

  draw() {
    const { g, w, h } = prepare(this.canvas, 140);
    const pts = this.points.filter((p) => p[1] !== null && Number.isFinite(p[1]));
    const padL = 52;
    const padB = 16;
    const padT = 8;
    g.strokeStyle = css('--grid');
    g.fillStyle = css('--muted');
    if (!pts.length) {
      g.fillText('waiting for data…', padL, h / 2);
      return;
    }
    const tmax = pts[pts.length - 1][0];
    const tmin = tmax - this.span;
    let vmin = Math.min(0, ...pts.map((p) => p[1]));
    let vmax = Math.max(...pts.map((p) => p[1]));
    if (vmax === vmin) vmax = vmin + 1;
    const x = (t) => padL + ((t - tmin) / (tmax - tmin)) * (w - padL - 6);
    const y = (v) => padT + (1 - (v - vmin) / (vmax - vmin)) * (h - padT - padB);
    g.lineWidth = 1;
    for (const v of ticks(vmin, vmax, 3)) {
      g.beginPath();
      g.moveTo(padL, Math.round(y(v)) + 0.5);
      g.lineTo(w - 6, Math.round(y(v)) + 0.5);
      g.stroke();
      g.textAlign = 'right';
      g.fillText(fmtNum(v), padL - 4, y(v));
    }
    g.textAlign = 'left';
    g.fillText('-' + Math.round(this.span / 60) + ' min', padL, h - 7);
    g.textAlign = 'right';
    g.fillText('now', w - 6, h - 7);
    g.strokeStyle = css('--accent');
    g.lineWidth = 1.5;
    g.beginPath();
    pts.forEach((p, i) => (i ? g.lineTo(x(p[0]), y(p[1])) : g.moveTo(x(p[0]), y(p[1]))));
    g.stroke();
    const last = pts[pts.length - 1];
    g.fillStyle = css('--accent');
    g.beginPath();
    g.arc(x(last[0]), y(last[1]), 2.5, 0, 2 * Math.PI);
    g.fill();
  }
}

// Horizontal bars: rows of {label, value}, drawn in the given order.
export function drawBars(canvas, rows, opts = {}) {
  const rowH = 18;
  const { g, w, h } = prepare(canvas, Math.max(1, rows.length) * rowH + 6);
  g.fillStyle = css('--muted');
  if (!rows.length) {
    g.fillText(opts.empty || 'no data yet', 6, h / 2);
    return;
  }
  const labelW = Math.min(Math.max(...rows.map((r) => g.measureText(r.label).width)) + 8, w * 0.45);
  const valueW = Math.max(...rows.map((r) => g.measureText(fmtNum(r.value)).width)) + 8;
  const max = Math.max(...rows.map((r) => Math.abs(r.value) || 0), 1);
  const barMax = Math.max(10, w - labelW - valueW - 4);
  rows.forEach((r, i) => {
    const yy = 3 + i * rowH;
    g.fillStyle = css('--fg');
    g.textAlign = 'right';
    let label = r.label;
    while (label.length > 2 && g.measureText(label).width > labelW - 8) label = label.slice(0, -2);
    if (label !== r.label) label += '…';
    g.fillText(label, labelW - 6, yy + rowH / 2);
    const bw = ((Math.abs(r.value) || 0) / max) * barMax;
    g.fillStyle = css(opts.color || '--accent');
    g.fillRect(labelW, yy + 3, Math.max(bw, r.value ? 1 : 0), rowH - 6);
    g.fillStyle = css('--muted');
    g.textAlign = 'left';
    g.fillText(fmtNum(r.value), labelW + bw + 4, yy + rowH / 2);
  });
}

// A heat map: one column per sample (counts per bucket in that interval),
// one row per bucket, low buckets at the bottom; colour on a log scale.
export class Heatmap {
  constructor(canvas, columns = 120) {
    this.canvas = canvas;
    this.columns = columns;
    this.samples = []; // [{t, counts: Map(bucketLabel -> n)}]
    this.buckets = []; // [{label, lo}] sorted by lo
  }

  push(t, counts, buckets) {
    this.samples.push({ t, counts });
    if (this.samples.length > this.columns) this.samples.shift();
    const known = new Map(this.buckets.map((b) => [b.label, b]));
    for (const b of buckets) known.set(b.label, b);
    this.buckets = [...known.values()].sort((a, b) => a.lo - b.lo);
  }

  draw() {
    const { g, w, h } = prepare(this.canvas, 160);
    const padL = 70;
    const padB = 16;
    g.fillStyle = css('--muted');
    if (!this.samples.length || !this.buckets.length) {
      g.fillText('waiting for data…', padL, h / 2);
      return;
    }
    let max = 0;
    for (const s of this.samples) for (const v of s.counts.values()) max = Math.max(max, v);
    const nb = this.buckets.length;
    const cellH = (h - padB - 4) / nb;
    const cellW = (w - padL - 4) / this.columns;
    const hot = css('--heat');
    const x0 = w - 4 - this.samples.length * cellW;
    this.samples.forEach((s, ci) => {
      this.buckets.forEach((b, bi) => {
        const n = s.counts.get(b.label) || 0;
        if (!n) return;
        g.globalAlpha = 0.12 + 0.88 * (Math.log(1 + n) / Math.log(1 + Math.max(max, 1)));
        g.fillStyle = hot;
        g.fillRect(x0 + ci * cellW, 4 + (nb - 1 - bi) * cellH, Math.ceil(cellW), Math.ceil(cellH));
      });
    });
    g.globalAlpha = 1;
    g.fillStyle = css('--muted');
    g.textAlign = 'right';
    const every = Math.max(1, Math.ceil(12 / cellH));
    this.buckets.forEach((b, bi) => {
      if (bi % every) return;
      g.fillText(b.short || b.label, padL - 4, 4 + (nb - 1 - bi) * cellH + cellH / 2);
    });
    g.textAlign = 'left';
    g.fillText('-' + this.columns + ' s', padL, h - 7);
    g.textAlign = 'right';
    g.fillText('max ' + fmtNum(max) + '/interval', w - 4, h - 7);
  }
}
