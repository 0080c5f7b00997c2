// SPDX-License-Identifier: MIT
// editor.js - the script editor: a <textarea> over a highlighted <pre>
// (the textarea keeps native editing, undo and accessibility), and a
// completion list of probes, tracepoints, builtins, functions and the
// script's own @maps. Tab or Enter accepts, Up/Down choose, Escape closes;
// Ctrl+Enter (Cmd+Enter) submits.

import { BUILTINS, FUNCTIONS, PROBES, highlight, scriptVars } from './lang.js';

const MAX_ITEMS = 40;

export class Editor {
  constructor(root, { onSubmit }) {
    this.root = root;
    this.ta = root.querySelector('textarea');
    this.pre = root.querySelector('pre code');
    this.list = root.querySelector('.complete');
    this.onSubmit = onSubmit;
    this.tracepoints = [];
    this.items = [];
    this.sel = 0;
    this.word = null;
    this.ta.addEventListener('input', () => { this.render(); this.complete(); });
    this.ta.addEventListener('scroll', () => this.syncScroll());
    this.ta.addEventListener('keydown', (e) => this.key(e));
    this.ta.addEventListener('blur', () => setTimeout(() => this.close(), 150));
    this.ta.addEventListener('click', () => this.close());
    this.list.addEventListener('mousedown', (e) => {
      const li = e.target.closest('li');
      if (!li) return;
      e.preventDefault();
      this.sel = Number(li.dataset.i);
      this.accept();
    });
    this.render();
  }

  get value() { return this.ta.value; }

  set value(v) {
    this.ta.value = v;
    this.render();
  }

  setTracepoints(list) {
    this.tracepoints = list;
    if (list.length && document.activeElement === this.ta) this.complete();
  }

  render() {
    // the trailing newline keeps the <pre> as tall as the textarea
    this.pre.innerHTML = highlight(this.ta.value) + '\n';
    this.syncScroll();
  }

  syncScroll() {
    this.pre.parentNode.scrollTop = this.ta.scrollTop;
    this.pre.parentNode.scrollLeft = this.ta.scrollLeft;
  }

  // The word before the caret that completion works on.
  currentWord() {
    const pos = this.ta.selectionStart;
    if (pos !== this.ta.selectionEnd) return null;
    const before = this.ta.value.slice(0, pos);
    const m = before.match(/[@$]?[A-Za-z_][A-Za-z0-9_:./-]*$|@$/);
    if (!m) return null;
    // no completion inside comments or strings
    const line = before.slice(before.lastIndexOf('\n') + 1);
    if (line.includes('//') || (line.split('"').length - 1) % 2 === 1) return null;
    return { start: pos - m[0].length, text: m[0] };
  }

  candidates(text) {
    const out = [];
    const add = (name, help, kind) => {
      if (name.startsWith(text) && name !== text) out.push({ name, help, kind });
    };
    if (text.startsWith('@')) {
      for (const v of scriptVars(this.ta.value)) add(v, 'map in this script', 'map');
      return out;
    }
    if (text.includes(':')) {
      for (const [n, h] of PROBES) add(n, h, 'probe');
      for (const tp of this.tracepoints) {
        if (out.length >= MAX_ITEMS) break;
        add(tp, 'tracepoint', 'tracepoint');
      }
      return out;
    }
    for (const [n, h] of PROBES) add(n, h, 'probe');
    for (const [n, h] of FUNCTIONS) add(n, h, 'function');
    for (const [n, h] of BUILTINS) add(n, h, 'builtin');
    return out;
  }

  complete() {
    const w = this.currentWord();
    if (!w || w.text.length < 1) return this.close();
    const items = this.candidates(w.text).slice(0, MAX_ITEMS);
    if (!items.length) return this.close();
    this.word = w;
    this.items = items;
    this.sel = 0;
    this.list.innerHTML = '';
    items.forEach((it, i) => {
      const li = document.createElement('li');
      li.dataset.i = i;
      li.setAttribute('role', 'option');
      li.id = 'cmp-' + i;
      const name = document.createElement('b');
      name.textContent = it.name;
      const help = document.createElement('span');
      help.textContent = it.help;
      li.append(name, help);
      this.list.append(li);
    });
    this.place();
    this.list.hidden = false;
    this.ta.setAttribute('aria-expanded', 'true');
    this.mark();
  }

  // Put the list under the caret (line and column of a monospace font).
  place() {
    const before = this.ta.value.slice(0, this.word.start);
    const lines = before.split('\n');
    const cs = getComputedStyle(this.ta);
    const lh = parseFloat(cs.lineHeight) || 18;
    const probe = document.createElement('span');
    probe.style.font = cs.font;
    probe.style.position = 'absolute';
    probe.style.visibility = 'hidden';
    probe.textContent = 'M'.repeat(10);
    document.body.append(probe);
    const cw = probe.getBoundingClientRect().width / 10;
    probe.remove();
    const top = parseFloat(cs.paddingTop) + lines.length * lh - this.ta.scrollTop + 2;
    const left = parseFloat(cs.paddingLeft) + lines[lines.length - 1].length * cw - this.ta.scrollLeft;
    this.list.style.top = Math.min(top, this.ta.clientHeight + 4) + 'px';
    this.list.style.left = Math.max(0, Math.min(left, this.ta.clientWidth - 260)) + 'px';
  }

  mark() {
    [...this.list.children].forEach((li, i) => li.classList.toggle('sel', i === this.sel));
    const cur = this.list.children[this.sel];
    if (cur) {
      cur.scrollIntoView({ block: 'nearest' });
      this.ta.setAttribute('aria-activedescendant', cur.id);
    }
  }

  close() {
    this.list.hidden = true;
    this.items = [];
    this.word = null;
    this.ta.setAttribute('aria-expanded', 'false');
    this.ta.removeAttribute('aria-activedescendant');
  }

  accept() {
    const it = this.items[this.sel];
    if (!it || !this.word) return;
    const v = this.ta.value;
    const end = this.ta.selectionStart;
    let ins = it.name;
    if (it.kind === 'function') ins += '(';
    this.ta.value = v.slice(0, this.word.start) + ins + v.slice(end);
    const pos = this.word.start + ins.length;
    this.ta.setSelectionRange(pos, pos);
    this.close();
    this.render();
    this.ta.focus();
    // "tracepoint:" goes on to the tracepoint names
    if (ins.endsWith(':')) this.complete();
  }

  key(e) {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      this.close();
      this.onSubmit();
      return;
    }
    if (!this.list.hidden && this.items.length) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        const n = this.items.length;
        this.sel = (this.sel + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
        this.mark();
        return;
      }
      if (e.key === 'Tab' || e.key === 'Enter') {
        e.preventDefault();
        this.accept();
        return;
      }
      if (e.key === 'Escape') {
        e.preventDefault();
        this.close();
        return;
      }
    }
    if (e.key === 'Tab' && !e.shiftKey && !e.ctrlKey && !e.altKey) {
      // indent; Escape then Tab leaves the editor (keyboard users)
      if (this.escaped) { this.escaped = false; return; }
      e.preventDefault();
      document.execCommand('insertText', false, '    ');
      return;
    }
    this.escaped = e.key === 'Escape';
  }
}
