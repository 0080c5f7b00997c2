// SPDX-License-Identifier: MIT
// ui.js - drives the built-in web page in headless Chromium with
// playwright-core, for tests/integration/test_ui.py (which installs
// playwright-core outside the tree and passes everything in the
// environment). Prints one JSON object per step on stdout:
//   {"step": "...", "ok": true|false, "detail": "..."}
// and a final {"step": "console", "errors": [...]}. Never throws out:
// a failed step is reported and the browser is closed.
//
// Environment: PLAYWRIGHT_CORE (module dir), CHROMIUM (binary), BTD_URL
// (the daemon's base URL), OUT_DIR (screenshots), USER_DATA_DIR (fresh),
// SCRIPT_NAME and SCRIPT_CODE (a script with a hist() and a printf()),
// LOG_TEXT (a text its printf prints).
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');

const env = (k) => {
  if (!process.env[k]) throw new Error('ui.js: ' + k + ' is not set');
  return process.env[k];
};
const url = env('BTD_URL');
const outDir = env('OUT_DIR');
const name = env('SCRIPT_NAME');
const code = env('SCRIPT_CODE');
const logText = env('LOG_TEXT');
const T = Number(process.env.STEP_TIMEOUT_MS || 30000);

function report(step, ok, detail) {
  process.stdout.write(JSON.stringify({ step, ok: !!ok, detail: detail || '' }) + '\n');
  return ok;
}

// Pixels of a canvas that differ from transparent: > 0 once drawn on.
async function inkedPixels(page, selector) {
  return page.$eval(selector, (c) => {
    const g = c.getContext('2d');
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
}

// Pixels in a canvas drawn in the given CSS colour variable (bars, cells).
async function colouredPixels(page, selector, cssVar) {
  return page.$eval(selector, (c, v) => {
    const probe = document.createElement('canvas').getContext('2d');
    probe.fillStyle = getComputedStyle(document.documentElement).getPropertyValue(v).trim();
    probe.fillRect(0, 0, 1, 1);
    const [r, g, b] = probe.getImageData(0, 0, 1, 1).data;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] > 0 && Math.abs(d[i] - r) < 40 && Math.abs(d[i + 1] - g) < 40 && Math.abs(d[i + 2] - b) < 40) n++;
    }
    return n;
  }, cssVar);
}

async function main() {
  const errors = [];
  const ctx = await chromium.launchPersistentContext(env('USER_DATA_DIR'), {
    executablePath: env('CHROMIUM'),
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    viewport: { width: 1400, height: 1000 },
  });
  const page = ctx.pages()[0] || await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push('page error: ' + e.message));
  page.on('requestfailed', (r) => errors.push('request failed: ' + r.url() + ' ' + (r.failure() || {}).errorText));
  const row = `#list tr[data-name="${name}"]`;
  try {
    await page.goto(url + '/', { waitUntil: 'load' });
    await page.waitForSelector('#conn.ok', { timeout: T });
    report('page loads and polls', true, await page.textContent('#ver'));

    // completion: a builtin function, then a tracepoint from the daemon
    await page.click('#code');
    await page.keyboard.type('@x = hi');
    await page.waitForSelector('#complete:not([hidden]) li', { timeout: T });
    const first = await page.textContent('#complete li.sel b');
    await page.keyboard.press('Tab');
    const v1 = await page.inputValue('#code');
    report('completion offers and Tab accepts hist(', first === 'hist' && v1 === '@x = hist(', first + ' -> ' + v1);
    await page.fill('#code', '');
    await page.keyboard.type('tracepoint:sched:sched_process_ex');
    await page.waitForSelector('#complete:not([hidden]) li', { timeout: T });
    const tps = await page.$$eval('#complete li b', (bs) => bs.map((b) => b.textContent));
    await page.keyboard.press('Enter');
    const v2 = await page.inputValue('#code');
    report('tracepoints complete from bpftrace.info.tracepoints (Enter accepts)',
      tps.includes('tracepoint:sched:sched_process_exec') && v2 === 'tracepoint:sched:sched_process_exec' && !v2.includes('\n'),
      tps.slice(0, 5).join(' ') + ' -> ' + v2);
    const hl = await page.$$eval('#editor pre code span.tk-probe', (s) => s.length);
    report('the editor highlights probes', hl > 0, hl + ' probe spans');

    // register with Ctrl+Enter
    await page.fill('#name', name);
    await page.fill('#code', code);
    await page.focus('#code');
    await page.keyboard.press('Control+Enter');
    await page.waitForFunction((sel) => {
      const b = document.querySelector(sel + ' .badge');
      return b && b.textContent === 'started';
    }, row, { timeout: T });
    report('registered from the page with Ctrl+Enter; status started', true,
      await page.textContent(row));
    const pid = Number(await page.textContent(row + ' .pid'));
    const probes = Number(await page.textContent(row + ' .probes'));
    report('the list shows pid and probes', pid > 0 && probes > 0, 'pid ' + pid + ', probes ' + probes);

    // the histogram: bars, then the heat map once two samples differ
    let bars = 0;
    for (let i = 0; i < T / 500 && bars <= 50; i++) {
      await page.waitForTimeout(500);
      bars = await colouredPixels(page, '#views canvas.hist', '--bar').catch(() => 0);
    }
    report('the histogram renders as bars (pixel check)', bars > 50, bars + ' bar pixels');
    let heat = 0;
    for (let i = 0; i < 20 && heat < 20; i++) {
      await page.waitForTimeout(1000);
      heat = await colouredPixels(page, '#views canvas.heat', '--heat');
    }
    report('the heat map fills in over time (pixel check)', heat >= 20, heat + ' heat pixels');
    // views poll only while on screen: bring the log into sight
    await page.locator('#views pre.log').scrollIntoViewIfNeeded();
    await page.waitForFunction((t) => {
      const l = document.querySelector('#views pre.log');
      return l && l.textContent.includes(t);
    }, logText, { timeout: T });
    const lines = await page.$eval('#views pre.log', (l) => l.textContent.split('\n').filter(Boolean).length);
    report('printf output scrolls in the log', lines >= 1, lines + ' lines');
    const line = await inkedPixels(page, '#views canvas.line').catch(() => 0);
    report('a scalar variable draws a line chart', line > 0, line + ' pixels');
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.waitForTimeout(Number(process.env.SCREENSHOT_AFTER_MS || 8000)); // a few heat map columns
    await page.screenshot({ path: path.join(outDir, 'ui-running.png'), fullPage: true });

    // a narrow window still works (one column, no horizontal page scroll)
    await page.setViewportSize({ width: 420, height: 900 });
    await page.waitForTimeout(1200);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    report('a narrow window has no horizontal page scroll', overflow <= 1, 'overflow ' + overflow + 'px');
    await page.screenshot({ path: path.join(outDir, 'ui-narrow.png'), fullPage: false });
    await page.setViewportSize({ width: 1400, height: 1000 });

    // stop, then deregister (two clicks: no modal dialog)
    await page.click(row + ' button[data-act=stop]');
    await page.waitForFunction((sel) => {
      const b = document.querySelector(sel + ' .badge');
      return b && b.textContent === 'stopped';
    }, row, { timeout: T });
    report('Stop: status stopped', true, await page.textContent(row));
    await page.screenshot({ path: path.join(outDir, 'ui-stopped.png'), fullPage: false });
    await page.click(row + ' button[data-act=deregister]');
    await page.click(row + ' button[data-act=deregister]');
    await page.waitForSelector(row, { state: 'detached', timeout: T });
    report('Deregister: the script leaves the list', true, '');
  } catch (e) {
    report('exception', false, String(e && e.stack || e));
    try { await page.screenshot({ path: path.join(outDir, 'ui-failure.png') }); } catch (e2) { /* gone */ }
  }
  process.stdout.write(JSON.stringify({ step: 'console', errors }) + '\n');
  await ctx.close();
}

main().catch((e) => {
  report('exception', false, String(e && e.stack || e));
  process.exitCode = 1;
});
