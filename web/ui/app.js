// SPDX-License-Identifier: MIT
// app.js - the bpftraced page: the script list (from
// bpftrace.info.scripts_json), the editor that registers scripts, and a
// live view per variable of the selected script. Everything is polled
// with one /pmapi fetch per second, holding only what is on screen (the
// list, and the views scrolled into sight); nothing polls in a hidden tab.

import { ApiError, Pmapi } from './api.js';
import { Heatmap, LineChart, drawBars, fmtNum } from './charts.js';
import { Editor } from './editor.js';

const POLL_MS = 1000;
const LOG_LINES = 1000;
const EXAMPLE = `// name: syscalls
// Latency of read(2) in microseconds, and who calls it
tracepoint:syscalls:sys_enter_read { @start[tid] = nsecs; }
tracepoint:syscalls:sys_exit_read /@start[tid]/ {
    @usecs = hist((nsecs - @start[tid]) / 1000);
    @reads[comm] = count();
    delete(@start[tid]);
}
interval:s:1 { printf("%d reads/s\\n", @n); @n = 0; }
tracepoint:syscalls:sys_exit_read { @n++; }
`;

const api = new Pmapi();
const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

function fmtDuration(s) {
  if (s === null || s === undefined || s < 0) return '';
  s = Math.floor(s);
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h' + String(Math.floor(s / 60) % 60).padStart(2, '0') + 'm';
  return Math.floor(s / 86400) + 'd' + String(Math.floor(s / 3600) % 24).padStart(2, '0') + 'h';
}

// --- messages ---

function say(text, kind = 'info') {
  const m = $('#msg');
  m.textContent = text;
  m.className = 'msg ' + kind;
  m.hidden = !text;
}

// --- state ---

const state = {
  scripts: [], // parsed scripts_json
  selected: null, // script name
  selectedListed: false, // ... and it was in the list once
  selectedAt: 0, // when it was selected (ms)
  views: new Map(), // variable -> view
  viewsKey: '', // variables of the selected script, to rebuild on change
  seenStart: new Map(), // name -> {pid, t}: uptime when the daemon has no start time
  serverTime: null, // seconds, from the last fetch
  timer: null,
  busy: false,
};

function scriptName(s) { return s.name || (s.metadata && s.metadata.name) || s.script_id; }

// --- the script list ---

async function control(action, name) {
  try {
    const ans = await api.control('bpftrace.control.' + action, name);
    if (ans && ans.success === false && ans.message) say(ans.message, 'error');
    else say(action + ' ' + name + ': done', 'info');
  } catch (e) {
    say(e.message, 'error');
  }
  poll();
}

function rowFor(name) {
  const tbody = $('#list tbody');
  let tr = tbody.querySelector(`tr[data-name="${CSS.escape(name)}"]`);
  if (tr) return tr;
  const pick = el('button', { class: 'link', title: 'show its variables', onclick: () => select(name) }, name);
  const del = el('button', { class: 'danger', 'data-act': 'deregister' }, 'Deregister');
  del.addEventListener('click', () => {
    // two steps, no modal dialog: click again within 3 s to confirm
    if (del.dataset.armed) { delete del.dataset.armed; del.textContent = 'Deregister'; control('deregister', name); return; }
    del.dataset.armed = '1';
    del.textContent = 'Sure?';
    setTimeout(() => { delete del.dataset.armed; del.textContent = 'Deregister'; }, 3000);
  });
  tr = el('tr', { 'data-name': name },
    el('td', { class: 'name' }, pick),
    el('td', {}, el('span', { class: 'badge' })),
    el('td', { class: 'num pid' }),
    el('td', { class: 'num probes' }),
    el('td', { class: 'num uptime' }),
    el('td', { class: 'err' }),
    el('td', { class: 'acts' },
      el('button', { 'data-act': 'start', onclick: () => control('start', name) }, 'Start'),
      el('button', { 'data-act': 'stop', onclick: () => control('stop', name) }, 'Stop'),
      del));
  tbody.append(tr);
  return tr;
}

function uptime(s, name) {
  const st = s.state || {};
  if (st.status !== 'started' && st.status !== 'starting') {
    state.seenStart.delete(name);
    return '';
  }
  const now = state.serverTime || Date.now() / 1000;
  if (typeof st.started_at === 'number') return fmtDuration(now - st.started_at);
  let seen = state.seenStart.get(name);
  if (!seen || seen.pid !== st.pid) state.seenStart.set(name, (seen = { pid: st.pid, t: now }));
  return '≥' + fmtDuration(now - seen.t);
}

function renderList() {
  const names = new Set();
  for (const s of state.scripts) {
    const name = scriptName(s);
    const st = s.state || {};
    names.add(name);
    const tr = rowFor(name);
    tr.classList.toggle('sel', name === state.selected);
    const badge = $('.badge', tr);
    badge.textContent = st.status || '?';
    badge.className = 'badge st-' + (st.status || 'unknown');
    $('.pid', tr).textContent = st.pid > 0 ? st.pid : '';
    $('.probes', tr).textContent = st.probes || '';
    $('.uptime', tr).textContent = uptime(s, name);
    const err = $('.err', tr);
    err.textContent = st.error || '';
    err.title = st.error || '';
    const running = st.status === 'started' || st.status === 'starting';
    $('[data-act=start]', tr).disabled = running;
    $('[data-act=stop]', tr).disabled = !running;
  }
  for (const tr of [...$('#list tbody').rows]) if (!names.has(tr.dataset.name)) tr.remove();
  $('#empty').hidden = state.scripts.length > 0;
  // a script just registered may not be listed yet: drop the selection
  // once the selected script was listed and is gone, or never came
  if (state.selected && names.has(state.selected)) state.selectedListed = true;
  else if (state.selected && (state.selectedListed || Date.now() - state.selectedAt > 5000)) select(null);
}

// --- views of one variable ---

function metricOf(script, v) {
  const short = v === '@' ? 'root' : v.slice(1);
  return 'bpftrace.scripts.' + script + '.data.' + short;
}

// "[key:]lo-hi" -> {key, lo, label}; lo of "-inf" is -Infinity.
function parseBucket(name) {
  const m = /^(?:(.*):)?(-inf|-?\d+)-(inf|-?\d+)$/.exec(name);
  if (!m) return null;
  const lo = m[2] === '-inf' ? -Infinity : Number(m[2]);
  const range = m[2] + '-' + m[3];
  const hi = m[3] === 'inf' ? Infinity : Number(m[3]);
  const k = (x) => fmtNum(x, 1024);
  const short = lo === -Infinity ? '<' + k(hi + 1) : hi === Infinity ? '≥' + k(lo) : k(lo);
  const text = lo === -Infinity || hi === Infinity || lo === hi ? short : k(lo) + '–' + k(hi);
  return { key: m[1] === undefined ? null : m[1], lo, label: range, short, text };
}

function card(title, info, ...controls) {
  const body = el('div', { class: 'body' });
  const root = el('section', { class: 'view', tabindex: '-1' },
    el('header', {}, el('h3', {}, title), el('span', { class: 'info' }, info), el('span', { class: 'ctl' }, ...controls)),
    body);
  return { root, body };
}

function segmented(options, value, onchange, label) {
  const g = el('span', { class: 'seg', role: 'group', 'aria-label': label });
  for (const [v, text] of options) {
    const b = el('button', { 'aria-pressed': String(v === value), 'data-v': v }, text);
    b.addEventListener('click', () => {
      for (const x of g.children) x.setAttribute('aria-pressed', String(x === b));
      onchange(v);
    });
    g.append(b);
  }
  return g;
}

// bpftrace prints its maps every --print-interval (1 s), as often as we
// poll: a fetch often sees no new print. A counter that has not moved for
// less than this is "no news", not a rate of zero.
const STALE_S = 2.5;

// Counter -> per-second rate between two fetches.
function rate(cur, prev, dt) {
  if (prev === undefined || prev === null || !(dt > 0) || typeof cur !== 'number') return null;
  const d = cur - prev;
  return d < 0 ? null : d / dt;
}

class ScalarView {
  constructor(metric, v, info) {
    this.metric = metric;
    this.counter = info.semantics === 1;
    this.mode = this.counter ? 'rate' : 'value';
    const opts = this.counter
      ? [segmented([['rate', 'rate/s'], ['value', 'total']], this.mode, (m) => { this.mode = m; this.chart.points = []; this.draw(); }, 'show as')]
      : [];
    const c = card(v, this.counter ? 'counter' : 'value', ...opts);
    this.root = c.root;
    this.now = el('div', { class: 'big' }, '–');
    this.canvas = el('canvas', { class: 'line', role: 'img', 'aria-label': v + ' over time' });
    c.body.append(this.now, this.canvas);
    this.chart = new LineChart(this.canvas);
  }

  update(inst, t) {
    const v = inst && inst.length ? inst[0].value : null;
    if (typeof v === 'string') { this.now.textContent = v; this.canvas.hidden = true; return; }
    if (this.counter && v === this.prev && t - this.prevT < STALE_S) return;
    const r = rate(v, this.prev, t - this.prevT);
    this.prev = v;
    this.prevT = t;
    const shown = this.mode === 'rate' ? r : v;
    if (shown !== null) this.chart.push(t, shown);
    this.now.textContent = this.mode === 'rate' ? (r === null ? '–' : fmtNum(r) + '/s') : fmtNum(v);
    this.now.title = 'total ' + v;
    this.draw();
  }

  draw() { this.chart.draw(); }
}

class MapView {
  constructor(metric, v, info, stacks) {
    this.metric = metric;
    this.counter = info.semantics === 1;
    this.mode = stacks ? 'table' : 'bars';
    this.top = 10;
    this.prev = new Map();
    const c = card(v, stacks ? 'stacks' : this.counter ? 'map, counter' : 'map',
      segmented([['bars', 'bars'], ['table', 'table']], this.mode, (m) => { this.mode = m; this.draw(); }, 'show as'),
      segmented([[10, 'top 10'], [25, '25'], [100, '100']], this.top, (n) => { this.top = Number(n); this.draw(); }, 'rows'));
    this.root = c.root;
    this.canvas = el('canvas', { class: 'bars', role: 'img', 'aria-label': v + ' top values' });
    this.table = el('table', { class: 'data' });
    c.body.append(this.canvas, this.table);
    this.rows = [];
  }

  async update(inst, t) {
    inst = inst || [];
    const names = await api.instanceNames(this.metric, inst.map((i) => i.instance));
    const dt = t - this.prevT;
    const rows = inst.map((i) => {
      const label = names.get(i.instance) ?? String(i.instance);
      const r = this.counter ? rate(i.value, this.prev.get(i.instance), dt) : null;
      return { label, value: i.value, rate: r };
    });
    this.prev = new Map(inst.map((i) => [i.instance, i.value]));
    this.prevT = t;
    const key = (r) => (typeof r.value === 'number' ? r.value : -Infinity);
    rows.sort((a, b) => key(b) - key(a) || String(a.label).localeCompare(String(b.label)));
    this.rows = rows;
    this.draw();
  }

  draw() {
    const top = this.rows.slice(0, this.top);
    const numeric = top.every((r) => typeof r.value === 'number');
    const bars = this.mode === 'bars' && numeric;
    this.canvas.hidden = !bars;
    this.table.hidden = bars;
    if (bars) {
      drawBars(this.canvas, top.map((r) => ({ label: r.label.replace(/\s+/g, ' '), value: r.value })));
      return;
    }
    const head = el('tr', {}, el('th', {}, 'key'), el('th', {}, 'value'), this.counter ? el('th', {}, 'rate/s') : null);
    const body = top.map((r) => el('tr', {},
      el('td', {}, el('pre', {}, r.label)),
      el('td', { class: 'num' }, typeof r.value === 'number' ? fmtNum(r.value) : String(r.value)),
      this.counter ? el('td', { class: 'num' }, r.rate === null ? '' : fmtNum(r.rate)) : null));
    this.table.replaceChildren(el('thead', {}, head), el('tbody', {}, ...body));
    if (this.rows.length > top.length) this.table.append(el('caption', {}, top.length + ' of ' + this.rows.length));
  }
}

class HistView {
  constructor(metric, v, info) {
    this.metric = metric;
    this.key = '';
    this.prev = new Map();
    this.keys = el('select', { 'aria-label': 'key', hidden: '' });
    this.keys.addEventListener('change', () => { this.key = this.keys.value; this.heat.samples = []; this.draw(); });
    const c = card(v, 'histogram', this.keys);
    this.root = c.root;
    this.bars = el('canvas', { class: 'hist', role: 'img', 'aria-label': v + ' histogram' });
    this.heatCanvas = el('canvas', { class: 'heat', role: 'img', 'aria-label': v + ' heat map' });
    c.body.append(el('div', { class: 'sub' }, 'buckets (total count)'), this.bars,
      el('div', { class: 'sub' }, 'heat map (count per second)'), this.heatCanvas);
    this.heat = new Heatmap(this.heatCanvas);
    this.buckets = [];
  }

  async update(inst, t) {
    inst = inst || [];
    const names = await api.instanceNames(this.metric, inst.map((i) => i.instance));
    const all = [];
    const keys = new Set();
    for (const i of inst) {
      const b = parseBucket(names.get(i.instance) || '');
      if (!b) continue;
      all.push({ ...b, id: i.instance, value: i.value });
      if (b.key !== null) keys.add(b.key);
    }
    this.syncKeys([...keys].sort());
    // one key, or every key summed by bucket range
    const sum = new Map();
    for (const b of all) {
      if (this.key && b.key !== this.key) continue;
      const cur = sum.get(b.label) || { label: b.label, lo: b.lo, short: b.short, text: b.text, value: 0 };
      cur.value += b.value;
      sum.set(b.label, cur);
    }
    this.buckets = [...sum.values()].sort((a, b) => a.lo - b.lo);
    const dt = t - this.prevT;
    const moved = this.buckets.some((b) => b.value !== this.prev.get(b.label));
    if (!moved && dt < STALE_S) { this.draw(); return; }
    if (dt > 0) {
      const counts = new Map();
      for (const b of this.buckets) {
        const r = rate(b.value, this.prev.get(b.label), dt);
        if (r) counts.set(b.label, r);
      }
      this.heat.push(t, counts, this.buckets);
    }
    this.prev = new Map(this.buckets.map((b) => [b.label, b.value]));
    this.prevT = t;
    this.draw();
  }

  syncKeys(keys) {
    if (keys.join('\n') === this.keyList) return;
    this.keyList = keys.join('\n');
    this.keys.hidden = !keys.length;
    this.keys.replaceChildren(el('option', { value: '' }, 'all keys'), ...keys.map((k) => el('option', { value: k }, k)));
    this.keys.value = keys.includes(this.key) ? this.key : '';
  }

  draw() {
    // empty leading/trailing buckets are not worth a row
    let rows = this.buckets;
    const first = rows.findIndex((b) => b.value);
    if (first === -1) rows = [];
    else rows = rows.slice(first, rows.length - [...rows].reverse().findIndex((b) => b.value));
    drawBars(this.bars, rows.map((b) => ({ label: b.text, value: b.value })), { color: '--bar' });
    this.heat.draw();
  }
}

// CSV output: a header line, then rows with as many fields.
function csvRows(lines) {
  const split = (l) => l.split(',').map((f) => f.trim());
  if (lines.length < 2) return null;
  const n = split(lines[0]).length;
  if (n < 2) return null;
  const rows = lines.map(split);
  const good = rows.filter((r) => r.length === n).length;
  return good >= rows.length * 0.8 ? rows.filter((r) => r.length === n) : null;
}

class OutputView {
  constructor(metric, v, script) {
    this.metric = metric;
    const table = script.metadata && script.metadata.table_retain_lines !== null && script.metadata.table_retain_lines !== undefined;
    this.mode = table ? 'table' : 'log';
    const c = card('printf output', 'text',
      segmented([['log', 'log'], ['table', 'CSV table']], this.mode, (m) => { this.mode = m; this.draw(); }, 'show as'));
    this.root = c.root;
    this.log = el('pre', { class: 'log', tabindex: '0', 'aria-label': 'output log', 'aria-live': 'off' });
    this.table = el('table', { class: 'data csv' });
    this.note = el('div', { class: 'sub' });
    c.body.append(this.log, this.table, this.note);
    this.text = '';
  }

  update(inst) {
    const text = inst && inst.length ? String(inst[0].value) : '';
    if (text === this.text) return;
    this.text = text;
    this.draw();
  }

  draw() {
    const lines = this.text.split('\n').filter((l) => l.length);
    const rows = this.mode === 'table' ? csvRows(lines) : null;
    this.table.hidden = !rows;
    this.log.hidden = !!rows;
    this.note.textContent = this.mode === 'table' && !rows ? 'not CSV (a header line and rows with as many fields): shown as log' : '';
    if (rows) {
      const [head, ...body] = rows;
      this.table.replaceChildren(el('thead', {}, el('tr', {}, ...head.map((h) => el('th', {}, h)))),
        el('tbody', {}, ...body.slice(-LOG_LINES).reverse().map((r) => el('tr', {}, ...r.map((f) => el('td', {}, f))))));
      return;
    }
    const atBottom = this.log.scrollTop + this.log.clientHeight >= this.log.scrollHeight - 4;
    this.log.textContent = lines.slice(-LOG_LINES).join('\n');
    if (atBottom) this.log.scrollTop = this.log.scrollHeight;
  }
}

function makeView(script, v, info) {
  const name = scriptName(script);
  const metric = metricOf(name, v);
  if (info.metrictype === 'output') return new OutputView(metric, v, script);
  if (info.metrictype === 'histogram') return new HistView(metric, v, info);
  if (info.metrictype === 'stacks') return new MapView(metric, v, info, true);
  if (info.single) return new ScalarView(metric, v, info);
  return new MapView(metric, v, info, false);
}

const visibility = new IntersectionObserver((entries) => {
  for (const e of entries) if (e.target.view) e.target.view.visible = e.isIntersecting;
});

function buildViews(script) {
  const box = $('#views');
  const vars = script ? script.variables || {} : {};
  const key = script ? scriptName(script) + '\n' + JSON.stringify(vars) : '';
  if (key === state.viewsKey) return;
  state.viewsKey = key;
  for (const v of state.views.values()) visibility.unobserve(v.root);
  state.views.clear();
  box.replaceChildren();
  if (!script) return;
  // output last: charts first, then the log
  const names = Object.keys(vars).sort((a, b) => (vars[a].metrictype === 'output') - (vars[b].metrictype === 'output') || a.localeCompare(b));
  for (const v of names) {
    const view = makeView(script, v, vars[v] || {});
    view.visible = true;
    view.root.view = view;
    view.root.dataset.var = v;
    state.views.set(v, view);
    box.append(view.root);
    visibility.observe(view.root);
  }
  if (!names.length) box.append(el('p', { class: 'sub' }, 'This script exports no variables.'));
}

function renderDetail() {
  const s = state.scripts.find((x) => scriptName(x) === state.selected);
  $('#detail').hidden = !s;
  if (!s) { buildViews(null); return; }
  const st = s.state || {};
  $('#d-name').textContent = scriptName(s);
  const badge = $('#d-status');
  badge.textContent = st.status;
  badge.className = 'badge st-' + st.status;
  $('#d-facts').textContent = [st.pid > 0 ? 'pid ' + st.pid : null, st.probes ? st.probes + ' probes' : null,
    st.exit_code ? 'exit code ' + st.exit_code : null, st.data_bytes ? fmtNum(st.data_bytes, 1024) + 'B read' : null]
    .filter(Boolean).join(' · ');
  $('#d-error').textContent = st.error || '';
  $('#d-error').hidden = !st.error;
  $('#d-code').textContent = s.code || '';
  buildViews(s);
}

function select(name) {
  if (name !== state.selected) {
    state.selectedListed = false;
    state.selectedAt = Date.now();
  }
  state.selected = name;
  if (name) location.hash = '#' + encodeURIComponent(name);
  else if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  renderList();
  renderDetail();
  poll();
}

// --- polling ---

async function poll() {
  clearTimeout(state.timer);
  if (document.hidden) return; // visibilitychange restarts it
  if (state.busy) { state.timer = setTimeout(poll, POLL_MS); return; }
  state.busy = true;
  try {
    const names = ['bpftrace.info.scripts_json'];
    const sel = state.selected;
    if (sel) {
      names.push('bpftrace.scripts.' + sel + '.warnings');
      for (const v of state.views.values()) if (v.visible) names.push(v.metric);
    }
    const r = await api.fetch(names);
    state.serverTime = r.timestamp;
    const json = r.values['bpftrace.info.scripts_json'];
    state.scripts = json && json.length ? JSON.parse(json[0].value) : [];
    $('#conn').textContent = 'live';
    $('#conn').className = 'ok';
    renderList();
    renderDetail();
    if (sel && sel === state.selected) {
      const w = r.values['bpftrace.scripts.' + sel + '.warnings'];
      $('#d-warn').textContent = w && w.length ? w[0].value : '';
      $('#d-warn').hidden = !$('#d-warn').textContent;
      for (const v of state.views.values()) {
        if (!v.visible || !(v.metric in r.values)) continue;
        try {
          await v.update(r.values[v.metric], r.timestamp);
        } catch (e) {
          if (!(e instanceof ApiError)) throw e;
        }
      }
    }
  } catch (e) {
    $('#conn').textContent = e instanceof ApiError ? e.message : 'error: ' + e.message;
    $('#conn').className = 'bad';
  } finally {
    state.busy = false;
  }
  state.timer = setTimeout(poll, POLL_MS);
}

// --- registering ---

async function register() {
  let code = editor.value;
  const name = $('#name').value.trim();
  if (!code.trim()) { say('the script is empty', 'error'); return; }
  if (name && !/^\s*\/\/\s*name:/m.test(code)) code = '// name: ' + name + '\n' + code;
  $('#register').disabled = true;
  say('registering…');
  try {
    const ans = await api.control('bpftrace.control.register', code);
    const st = (ans && ans.state) || {};
    if (st.status === 'error') {
      say(st.error || 'refused', 'error');
    } else {
      const n = ans ? ans.name || (ans.metadata && ans.metadata.name) : name;
      say('registered ' + n + ' (' + (st.status || 'ok') + ')', 'info');
      api.forgetInstances('bpftrace.scripts.' + n + '.');
      state.viewsKey = '';
      if (n) select(n);
    }
  } catch (e) {
    say(e.message, 'error');
  } finally {
    $('#register').disabled = false;
  }
}

// Versions, and the tracepoint list for completion. The daemon lists
// tracepoints in the background after it starts: until it has, ask again
// every 3 s (a minute at most).
let infoTries = 0;
let infoTimer = null;
async function loadInfo() {
  if (infoTimer || editor.tracepoints.length) return;
  infoTimer = true;
  try {
    const r = await api.fetch(['bpftrace.info.daemon_version', 'bpftrace.info.version', 'bpftrace.info.tracepoints']);
    const v = (n) => (r.values[n] && r.values[n].length ? r.values[n][0].value : '');
    $('#ver').textContent = 'bpftraced ' + v('bpftrace.info.daemon_version') + (v('bpftrace.info.version') ? ' · bpftrace ' + v('bpftrace.info.version') : ' · bpftrace not found');
    const tp = v('bpftrace.info.tracepoints');
    editor.setTracepoints(tp ? tp.split(',').filter(Boolean).sort() : []);
  } catch (e) {
    say(e.message, 'error');
  }
  infoTimer = null;
  if (!editor.tracepoints.length && ++infoTries < 20) infoTimer = setTimeout(() => { infoTimer = null; loadInfo(); }, 3000);
}

// --- wiring ---

const editor = new Editor($('#editor'), { onSubmit: register });
$('#register').addEventListener('click', register);
$('#example').addEventListener('click', () => { editor.value = EXAMPLE; $('#name').value = ''; editor.ta.focus(); });
$('#d-close').addEventListener('click', () => select(null));
document.addEventListener('visibilitychange', () => { if (!document.hidden) poll(); });
window.addEventListener('resize', () => { for (const v of state.views.values()) v.draw(); });
document.addEventListener('keydown', (e) => {
  const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
  if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === 'n') { e.preventDefault(); editor.ta.focus(); }
  if (e.key === 'l') { e.preventDefault(); const b = $('#list tbody button'); if (b) b.focus(); }
  if (e.key === 'Escape' && state.selected) select(null);
});
$('#name').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); register(); }
});
if (location.hash.length > 1) {
  state.selected = decodeURIComponent(location.hash.slice(1));
  state.selectedAt = Date.now();
}
poll();
loadInfo();
