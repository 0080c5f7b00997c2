#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""check-layers.py - keep the layers of src/ in shape, from the objects.

    check-layers.py [--layers FILE] [BUILDDIR]

Reads every object under BUILDDIR/src (default: the current directory)
with nm: what each object defines and what it leaves undefined. An object
that uses a symbol defined by another object depends on it. Fails (exit 1)
when an object depends on an object of a layer above its own (an up-call:
an extern call or a function pointer's address taken both show as an
undefined symbol), or when files depend on each other in a cycle outside
the folders that allow it, or when an object other than the one named by
"parsers" calls the C library's number parsers (strto*, ato*, *scanf:
numbers go through util.c's strtonum family). The layer order, the
folders that may cycle, the parsers and the allowed exceptions are
declared once, in tests/layers/layers.txt.
An object's layer is its folder under src/ ("top" for src/ itself).
Exceptions that no longer match anything also fail, so the list shrinks.
Standard library only; nm from binutils (or $NM).
"""
import functools
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


class Layers:
    """What layers.txt declares."""

    def __init__(self):
        self.order, self.cycles, self.allow = [], set(), {}
        self.parser_owner, self.parsers, self.allow_parser = None, set(), {}


def load_layers(path):
    lay = Layers()
    order, cycles, allow = lay.order, lay.cycles, lay.allow
    with open(path) as f:
        for n, line in enumerate(f, 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if words[0] == "layer" and len(words) == 2:
                order.append(words[1])
            elif words[0] == "cycles" and len(words) >= 2:
                cycles.update(words[1:])
            elif words[0] == "allow" and len(words) >= 4:
                allow[(words[1], words[2])] = " ".join(words[3:])
            elif words[0] == "parsers" and len(words) >= 3:
                lay.parser_owner = words[1]
                lay.parsers.update(words[2:])
            elif words[0] == "allow-parser" and len(words) >= 4:
                lay.allow_parser[(words[1], words[2])] = " ".join(words[3:])
            else:
                raise SystemExit("%s:%d: cannot read %r (layer NAME | cycles "
                                 "FOLDER... | allow USER DEFINER REASON | "
                                 "parsers OBJECT SYMBOL... | allow-parser "
                                 "USER SYMBOL REASON)"
                                 % (path, n, line.strip()))
    if "top" not in order:
        raise SystemExit("%s: no 'layer top'" % path)
    return lay


def objects(builddir):
    root = os.path.join(builddir, "src")
    out = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            if f.endswith(".o"):
                p = os.path.join(d, f)
                out.append(os.path.relpath(p, builddir))
    return out


def layer_of(obj):
    parts = obj.split(os.sep)
    return parts[1] if len(parts) > 2 else "top"


@functools.lru_cache(maxsize=None)
def symbols(builddir, obj):
    nm = os.environ.get("NM", "nm")
    r = subprocess.run([nm, "-P", os.path.join(builddir, obj)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("%s: %s" % (obj, r.stderr.strip()))
    defined, used = set(), set()
    for line in r.stdout.splitlines():
        w = line.split()
        if len(w) < 2:
            continue
        name, kind = w[0], w[1]
        if kind == "U":
            used.add(name)
        elif kind.isupper() or kind in ("V", "W"):
            defined.add(name)
    return frozenset(defined), frozenset(used)


def libc_name(sym):
    """glibc's name for a C function as the function: __isoc99_sscanf and
    __isoc23_strtol (C99/C2x variants) are sscanf and strtol."""
    return re.sub(r"^__isoc\d\d_", "", sym)


def parser_calls(builddir, objs, lay):
    """Objects calling number parsers besides the parsers' owner, and the
    exceptions used: ([(object, symbol)], set of used exceptions)."""
    bad, used_allow = [], set()
    if lay.parser_owner is None:
        return bad, used_allow
    for o in objs:
        if o == lay.parser_owner:
            continue
        for s in sorted(symbols(builddir, o)[1]):
            name = libc_name(s)
            if name not in lay.parsers:
                continue
            if (o, name) in lay.allow_parser:
                used_allow.add((o, name))
            else:
                bad.append((o, name))
    return bad, used_allow


def graph(builddir, objs):
    """{user: {definer: [symbols]}} between the given objects."""
    where, uses = {}, {}
    for o in objs:
        d, u = symbols(builddir, o)
        uses[o] = u
        for s in d:
            where.setdefault(s, o)
    g = {o: {} for o in objs}
    for o in objs:
        for s in uses[o]:
            t = where.get(s)
            if t and t != o:
                g[o].setdefault(t, []).append(s)
    return g


def sccs(g):
    """Strongly connected components (Tarjan), iterative."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for root in sorted(g):
        if root in index:
            continue
        work = [(root, iter(sorted(g[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(g[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def short(syms, most=4):
    syms = sorted(syms)
    more = len(syms) - most
    return ", ".join(syms[:most]) + (" and %d more" % more if more > 0 else "")


def check(builddir, layers_file):
    lay = load_layers(layers_file)
    order, cycles, allow = lay.order, lay.cycles, lay.allow
    rank = {name: i for i, name in enumerate(order)}
    objs = objects(builddir)
    if not objs:
        return ["no objects under %s/src: build first" % builddir], []
    errors, used_allow = [], set()
    for o in objs:
        if layer_of(o) not in rank:
            errors.append("%s: folder %s is not a layer in %s"
                          % (o, layer_of(o), layers_file))
    if errors:
        return errors, []
    g = graph(builddir, objs)
    for o in sorted(g):
        for t, syms in sorted(g[o].items()):
            if rank[layer_of(t)] <= rank[layer_of(o)]:
                continue
            if (o, t) in allow:
                used_allow.add((o, t))
                continue
            errors.append("up-call: %s (%s) uses %s from %s (%s)"
                          % (o, layer_of(o), short(syms), t,
                             layer_of(t)))
    # cycles among the edges that stay in one layer (an up-call, already
    # reported above, is not counted again as a cycle)
    flat = {o: {t: 1 for t in g[o] if layer_of(t) == layer_of(o)}
            for o in g}
    for comp in sccs(flat):
        if layer_of(comp[0]) in cycles:
            continue
        inner = [(a, b) for a in comp for b in flat[a] if b in comp]
        rest = {a: {b: 1 for b in flat[a] if b in comp and (a, b) not in allow}
                for a in comp}
        excused = [e for e in inner if e in allow]
        if excused and not sccs(rest):
            used_allow.update(excused)
            continue
        errors.append("cycle: %s\n%s" % (" <-> ".join(comp), "\n".join(
            "  %s uses %s from %s" % (a, short(g[a][b]), b)
            for a, b in sorted(inner))))
    stale = sorted(set(allow) - used_allow)
    for a, b in stale:
        errors.append("stale exception: allow %s %s (no longer needed: "
                      "remove it from %s)" % (a, b, layers_file))
    bad, used_parsers = parser_calls(builddir, objs, lay)
    for o, name in bad:
        errors.append("number parser: %s calls %s (read numbers with the "
                      "strtonum family of %s)" % (o, name, lay.parser_owner))
    for o, name in sorted(set(lay.allow_parser) - used_parsers):
        errors.append("stale exception: allow-parser %s %s (no longer "
                      "needed: remove it from %s)" % (o, name, layers_file))
    return errors, sorted(used_allow) + [
        (o, "libc:" + name) for o, name in sorted(used_parsers)]


def main(argv):
    layers_file = os.path.join(HERE, "layers.txt")
    args = list(argv)
    if len(args) >= 2 and args[0] == "--layers":
        layers_file = args[1]
        args = args[2:]
    builddir = args[0] if args else "."
    errors, allowed = check(builddir, layers_file)
    lay = load_layers(layers_file)
    order = lay.order
    for a, b in allowed:
        why = lay.allow_parser.get((a, b[5:])) if b.startswith("libc:") \
            else lay.allow[(a, b)]
        print("allowed: %s -> %s: %s" % (a, b, why))
    for e in errors:
        print(e)
    if errors:
        print("check-layers: %d problem(s); layers bottom first: %s"
              % (len(errors), " ".join(order)))
        return 1
    print("check-layers: ok (%d objects; layers bottom first: %s)"
          % (len(objects(builddir)), " ".join(order)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
