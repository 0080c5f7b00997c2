// SPDX-License-Identifier: MIT
// api.js - the page's pmproxy REST client, used the way grafana-pcp uses
// it: one context with a polltimeout, re-created when the daemon says
// "unknown context identifier" (it expired, or the daemon restarted);
// fetches by name; stores, with the control answer read back in the same
// context. URLs are relative, so the page also works behind a proxy path.

const POLLTIMEOUT = 60; // seconds the context lives without a request

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function readJson(resp) {
  const text = await resp.text();
  try {
    return JSON.parse(text);
  } catch (e) {
    // HTML error pages (pmproxy's "unknown servlet") and text bodies
    const plain = text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
    return { message: plain || resp.statusText, success: false };
  }
}

export class Pmapi {
  constructor(base = 'pmapi/') {
    this.base = base;
    this.ctx = null;
    this.creating = null;
    this.indoms = new Map(); // metric name -> Map(instance id -> name)
  }

  async context() {
    if (this.ctx !== null) return this.ctx;
    if (!this.creating) {
      this.creating = (async () => {
        try {
          const j = await this.raw('context?polltimeout=' + POLLTIMEOUT);
          this.ctx = j.context;
          return this.ctx;
        } finally {
          this.creating = null;
        }
      })();
    }
    return this.creating;
  }

  async raw(path, init) {
    let resp;
    try {
      resp = await fetch(this.base + path, init);
    } catch (e) {
      throw new ApiError(0, 'bpftraced is not answering (' + e.message + ')');
    }
    const j = await readJson(resp);
    if (!resp.ok) throw new ApiError(resp.status, j.message || resp.statusText);
    return j;
  }

  // A command in our context; once more in a new context if it expired.
  async call(path, init) {
    for (let attempt = 0; ; attempt++) {
      const ctx = await this.context();
      try {
        return await this.raw(ctx + '/' + path, init);
      } catch (e) {
        if (attempt === 0 && /unknown context identifier/.test(e.message)) {
          if (this.ctx === ctx) this.ctx = null;
          continue;
        }
        throw e;
      }
    }
  }

  // {timestamp, values: {name: [{instance, value}]}}; unknown names are
  // left out (the daemon drops them from the answer).
  async fetch(names) {
    const j = await this.call('fetch?names=' + names.map(encodeURIComponent).join(','));
    const values = {};
    for (const v of j.values || []) values[v.name] = v.instances;
    return { timestamp: j.timestamp, values };
  }

  async value(name) {
    const r = await this.fetch([name]);
    const inst = r.values[name];
    return inst && inst.length ? inst[0].value : null;
  }

  async metrics(prefix) {
    const j = await this.call('metric?prefix=' + encodeURIComponent(prefix));
    return j.metrics || [];
  }

  // Instance names of a metric, cached; refreshed when an id is unknown.
  async instanceNames(name, ids) {
    let m = this.indoms.get(name);
    if (m && ids.every((id) => m.has(id))) return m;
    const j = await this.call('indom?name=' + encodeURIComponent(name));
    m = new Map();
    for (const i of j.instances || []) m.set(i.instance, i.name);
    this.indoms.set(name, m);
    return m;
  }

  forgetInstances(prefix) {
    for (const k of [...this.indoms.keys()]) if (k.startsWith(prefix)) this.indoms.delete(k);
  }

  // Store, then read the control answer back (JSON text, or null).
  async control(name, value) {
    const body = new URLSearchParams();
    body.set('name', name);
    body.set('value', value);
    await this.call('store', { method: 'POST', body });
    const ans = await this.value(name);
    if (!ans) return null;
    try {
      return JSON.parse(ans);
    } catch (e) {
      return null;
    }
  }
}
