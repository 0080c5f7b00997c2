// SPDX-License-Identifier: MIT
// lang.js - what the editor knows about bpftrace (v0.17): probe types,
// builtins and functions with one line of help each, keywords, and a
// tokenizer for syntax highlighting. Tracepoint names come from the
// daemon (bpftrace.info.tracepoints) at run time.

export const PROBES = [
  ['BEGIN', 'runs once, when the script starts'],
  ['END', 'runs once, when the script ends'],
  ['tracepoint:', 'kernel static tracepoint: tracepoint:subsys:event'],
  ['rawtracepoint:', 'raw kernel tracepoint (raw arguments)'],
  ['kprobe:', 'kernel function entry: kprobe:vfs_read'],
  ['kretprobe:', 'kernel function return (retval)'],
  ['kfunc:', 'kernel function entry via BTF (typed args)'],
  ['kretfunc:', 'kernel function return via BTF'],
  ['uprobe:', 'user function entry: uprobe:/bin/bash:readline'],
  ['uretprobe:', 'user function return'],
  ['usdt:', 'user static tracepoint: usdt:/path:probe'],
  ['profile:hz:', 'sample on every CPU at a frequency: profile:hz:99'],
  ['interval:s:', 'every N seconds, on one CPU: interval:s:1'],
  ['interval:ms:', 'every N milliseconds, on one CPU'],
  ['software:', 'software event: software:page-faults:100'],
  ['hardware:', 'hardware counter: hardware:cache-misses:1000000'],
  ['watchpoint:', 'memory watchpoint: watchpoint:0x1000:8:rw'],
];

export const BUILTINS = [
  ['pid', 'process id (kernel tgid)'],
  ['tid', 'thread id (kernel pid)'],
  ['uid', 'user id'],
  ['gid', 'group id'],
  ['username', 'user name'],
  ['comm', 'process name (16 bytes)'],
  ['nsecs', 'nanosecond timestamp (monotonic)'],
  ['elapsed', 'nanoseconds since the script started'],
  ['cpu', 'processor id'],
  ['cgroup', 'cgroup id of the current process'],
  ['kstack', 'kernel stack trace'],
  ['ustack', 'user stack trace'],
  ['args', 'tracepoint/kfunc arguments: args->name'],
  ['retval', 'return value (kretprobe, uretprobe, kretfunc)'],
  ['func', 'name of the traced function'],
  ['probe', 'full name of the probe'],
  ['curtask', 'current task_struct, as a pointer'],
  ['rand', 'random unsigned 32-bit number'],
  ['arg0', 'first argument (kprobe/uprobe); arg1 ... argN'],
  ['arg1', 'second argument'],
  ['arg2', 'third argument'],
  ['sarg0', 'first stack argument'],
  ['cpid', 'pid of the child started with -c'],
  ['$1', 'first positional parameter'],
];

export const FUNCTIONS = [
  ['printf', 'printf(fmt, ...): print formatted text (the output log)'],
  ['print', 'print(@map | value): print a map or value now'],
  ['time', 'time(fmt): print the current time'],
  ['join', 'join(char *arr[] [, sep]): print an array of strings'],
  ['str', 'str(char *s [, len]): read a string'],
  ['buf', 'buf(void *d [, len]): read a buffer, printed as hex'],
  ['ksym', 'ksym(addr): kernel symbol name'],
  ['usym', 'usym(addr): user symbol name'],
  ['kaddr', 'kaddr(name): address of a kernel symbol'],
  ['uaddr', 'uaddr(name): address of a user symbol'],
  ['ntop', 'ntop([af,] addr): IP address as text'],
  ['reg', 'reg(name): value of a register'],
  ['system', 'system(fmt, ...): run a shell command (--unsafe)'],
  ['exit', 'exit(): stop the script'],
  ['cgroupid', 'cgroupid(path): id of a cgroup'],
  ['macaddr', 'macaddr(addr): MAC address as text'],
  ['strncmp', 'strncmp(a, b, n): compare strings'],
  ['strftime', 'strftime(fmt, nsecs): format a timestamp'],
  ['path', 'path(struct path *): full path'],
  ['sizeof', 'sizeof(type or expr): size in bytes'],
  ['signal', 'signal(sig): send a signal to the current task (--unsafe)'],
  ['override', 'override(rc): override the return value (--unsafe)'],
  ['cat', 'cat(filename): print a file'],
  ['kptr', 'kptr(p): annotate as a kernel pointer'],
  ['uptr', 'uptr(p): annotate as a user pointer'],
  ['count', 'count(): count events (a counter metric)'],
  ['sum', 'sum(n): sum of values'],
  ['avg', 'avg(n): average (instances count, average, total)'],
  ['min', 'min(n): minimum'],
  ['max', 'max(n): maximum'],
  ['stats', 'stats(n): count, average and total'],
  ['hist', 'hist(n): power-of-2 histogram (heat map)'],
  ['lhist', 'lhist(n, min, max, step): linear histogram'],
  ['delete', 'delete(@map[key]): remove one element'],
  ['clear', 'clear(@map): remove every element'],
  ['zero', 'zero(@map): set every value to zero'],
];

export const KEYWORDS = ['if', 'else', 'unroll', 'while', 'return',
  'break', 'continue', 'struct', 'union', 'enum', 'config', 'let'];

const BUILTIN_SET = new Set(BUILTINS.map((b) => b[0]));
const FUNC_SET = new Set(FUNCTIONS.map((f) => f[0]));
const KEYWORD_SET = new Set(KEYWORDS);

function esc(s) {
  return s.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

// One regex, one alternative per token class, tried left to right.
const TOKEN = new RegExp([
  '(\\/\\/[^\\n]*|\\/\\*[\\s\\S]*?(?:\\*\\/|$))', // 1 comment
  '("(?:[^"\\\\\\n]|\\\\.)*"?)', // 2 string
  '([@$][A-Za-z0-9_]*)', // 3 variable
  '(\\b(?:0x[0-9a-fA-F]+|\\d+)\\b)', // 4 number
  '([A-Za-z_][A-Za-z0-9_]*(?::[A-Za-z0-9_./*+-]*)+)', // 5 probe spec
  '([A-Za-z_][A-Za-z0-9_]*)', // 6 word
].join('|'), 'g');

// Script text as highlighted HTML (spans with class names from app.css).
export function highlight(text) {
  let out = '';
  let last = 0;
  TOKEN.lastIndex = 0;
  for (let m; (m = TOKEN.exec(text)) !== null;) {
    if (m[0] === '') { TOKEN.lastIndex++; continue; }
    out += esc(text.slice(last, m.index));
    last = m.index + m[0].length;
    let cls = null;
    if (m[1]) cls = 'tk-com';
    else if (m[2]) cls = 'tk-str';
    else if (m[3]) cls = 'tk-var';
    else if (m[4]) cls = 'tk-num';
    else if (m[5]) cls = 'tk-probe';
    else if (m[6]) {
      const w = m[6];
      if (w === 'BEGIN' || w === 'END') cls = 'tk-probe';
      else if (KEYWORD_SET.has(w)) cls = 'tk-kw';
      else if (FUNC_SET.has(w) && /^\s*\(/.test(text.slice(last))) cls = 'tk-fn';
      else if (BUILTIN_SET.has(w)) cls = 'tk-bi';
    }
    out += cls ? '<span class="' + cls + '">' + esc(m[0]) + '</span>' : esc(m[0]);
  }
  return out + esc(text.slice(last));
}

// Map variables a script defines (@name), for completion.
export function scriptVars(text) {
  const seen = new Set();
  for (const m of text.matchAll(/@[A-Za-z0-9_]*/g)) if (m[0].length > 1) seen.add(m[0]);
  return [...seen];
}
