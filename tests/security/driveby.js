// SPDX-License-Identifier: MIT
// driveby.js - visits pages in headless Chromium (playwright-core) for
// tests/security/test_driveby.py. Each visit loads one page that makes
// one request (an <img>, an auto-submitted form POST, a fetch) and sets
// window.__done when the request has finished, whatever its answer. Before
// and after each visit the daemon's bpftrace.daemon.refused and
// bpftrace.info.scripts_total are read (from node, not the page), so the
// Python side can tell that the request reached the daemon and how it was
// answered. Prints one JSON object per visit:
//   {"visit": id, "ok": bool, "detail": "...", "before": {...},
//    "after": {...}, "page": "<what the page saw>"}
//
// Environment: PLAYWRIGHT_CORE (module dir), CHROMIUM (binary), BTD_URL
// (the daemon's base URL, for the counters), VISITS (JSON list of
// {"id", "url"[, "eval"]}: with "eval", that expression's value, run in
// the page once loaded, is what the page saw), RESOLVER_RULES (--host-resolver-rules), USER_DATA_DIR.
'use strict';

const { chromium } = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');

const T = Number(process.env.STEP_TIMEOUT_MS || 15000);
const base = process.env.BTD_URL;
const visits = JSON.parse(process.env.VISITS || '[]');

async function counters() {
  const q = '/pmapi/fetch?names=bpftrace.daemon.refused,bpftrace.info.scripts_total';
  const r = await fetch(base + q);
  const j = await r.json();
  const out = { refused: {}, scripts: null };
  for (const v of j.values || []) {
    if (v.name === 'bpftrace.daemon.refused')
      for (const i of v.instances) out.refused[i.instance] = i.value;
    else
      out.scripts = v.instances[0].value;
  }
  return out;
}

async function main() {
  const args = ['--no-sandbox', '--disable-dev-shm-usage'];
  if (process.env.RESOLVER_RULES)
    args.push('--host-resolver-rules=' + process.env.RESOLVER_RULES);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM, headless: true, args,
  });
  try {
    const ctx = await browser.newContext();
    for (const v of visits) {
      const page = await ctx.newPage();
      let before = null, after = null, ok = false, detail = '', seen = '';
      try {
        before = await counters();
        await page.goto(v.url, { timeout: T });
        if (v.eval) { // a request made by a page that is not ours (the built-in one)
          seen = String(await page.evaluate(v.eval));
        } else {
          await page.waitForFunction(() => window.__done === true, null, { timeout: T });
          seen = await page.evaluate(() => String(window.__seen || ''));
        }
        ok = true;
      } catch (e) {
        detail = String(e && e.message || e).slice(0, 500);
      }
      try {
        after = await counters();
      } catch (e) {
        detail += ' counters: ' + e;
      }
      process.stdout.write(JSON.stringify({
        visit: v.id, ok, detail, before, after, page: seen,
      }) + '\n');
      await page.close();
    }
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ visit: 'main', ok: false, detail: String(e) }) + '\n');
  process.exit(1);
});
