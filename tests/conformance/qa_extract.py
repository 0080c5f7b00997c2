#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""qa_extract.py - extract the REST requests of PCP's QA into a data file.

    tests/conformance/qa_extract.py [--testsuite /var/lib/pcp/testsuite]
                                    [--out tests/conformance/qa/pcp-qa-requests.json]

Reads the REST API tests of Debian's pcp-testsuite (the QA scripts that curl
pmproxy) and writes, for each curl request, its method, target, headers and
body, and the output filters the test pipes the answer through (the test's
own sed/grep/pmjson/sort stages, its _filter_* functions expanded to those
stages, with common.check's shared ones). qa_replay.py replays that file, so
make check needs neither the package nor the scripts; only facts about the
requests are kept, no script text.

The extraction is a small reader of the shell forms the QA scripts use (curl
on one logical line, piped into filter functions; contexts carried in shell
variables from `cat $tmp.context` or a `pmpython ... ["context"]` pipe).
A request in a form it does not read is written with "skip" and the reason.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "qa", "pcp-qa-requests.json")

# The REST API tests: `grep -l curl [0-9]* | xargs grep -l 'pmapi\|/metrics'`
# and the /series, /search and header tests next to them.
TESTS = ["1090", "1355", "1379", "1388", "1391", "1401", "1457", "1458",
         "1543", "1544", "1601", "1604", "1608", "1626", "1695", "1697",
         "1727", "1773", "1824", "1837", "1872", "1874", "780"]

# Whole tests whose requests need what this machine (or bpftraced) does not
# have; every request of them is written with this reason.
TEST_SKIP = {
    "1355": "needs a redis-server that pmproxy reconnects to (series)",
    "1388": "needs pmproxy in mandatory SASL authentication mode and the "
            "test_python QA PMDA",
    "1391": "needs pmproxy in mandatory SASL authentication mode and the "
            "test_python QA PMDA",
    "1457": "needs pmproxy with TLS certificates (https)",
    "1544": "needs the test_python QA PMDA (test_python.current_ctx)",
    "1601": "needs pmproxy series with redis and loaded QA archives",
    "1604": "needs pmproxy series with redis and loaded QA archives",
    "1626": "reads pmproxy's own metrics (pmproxy.pid, pmproxy.mem.*)",
    "1697": "needs pmproxy series with redis and loaded QA archives",
    "1727": "needs the openmetrics QA PMDA and its duplicate-label source",
    "1773": "needs pmproxy series with redis and loaded QA archives",
    "1824": "needs pmproxy series with redis (/series/query)",
    "1872": "needs pmproxy search with redis (RediSearch)",
    "1874": "needs pmproxy series with redis and loaded QA archives",
}

# Per-request reasons, by a substring of the target.
TARGET_SKIP = [
    ("https://", "needs pmproxy with TLS certificates (https)"),
    ("/series/", "needs pmproxy series with redis (not configured here; "
                 "bpftraced serves no /series)"),
    ("/search/", "needs pmproxy search with redis (not configured here; "
                 "bpftraced serves no /search)"),
]

FILTER_CMDS = {"sed", "grep", "pmjson", "sort", "col", "tr", "cat", "tee"}


def join_lines(text):
    """Join backslash continuations; drop full-line comments."""
    out, cur = [], ""
    for line in text.split("\n"):
        if cur == "" and line.lstrip().startswith("#"):
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        out.append(cur)
        cur = ""
    if cur:
        out.append(cur)
    return out


def split_pipes(line):
    """Split a command line at top-level | (not ||, not in quotes or
    backquotes)."""
    parts, cur, q, i = [], "", None, 0
    while i < len(line):
        c = line[i]
        if q:
            cur += c
            if c == "\\" and q == '"' and i + 1 < len(line):
                cur += line[i + 1]
                i += 1
            elif c == q:
                q = None
        elif c in "'\"`":
            q = c
            cur += c
        elif c == "|" and line[i + 1:i + 2] != "|" and line[i - 1:i] != "|":
            parts.append(cur.strip())
            cur = ""
        else:
            cur += c
        i += 1
    parts.append(cur.strip())
    return parts


def parse_functions(lines):
    """name -> list of body lines, for `name()` + `{` ... `}` blocks."""
    funcs, i = {}, 0
    while i < len(lines):
        m = re.match(r"^(\w+)\s*\(\)\s*(\{)?\s*$", lines[i])
        if m:
            name, body = m.group(1), []
            i += 1 if m.group(2) else 2
            while i < len(lines) and lines[i].rstrip() != "}":
                body.append(lines[i])
                i += 1
            funcs[name] = body
        i += 1
    return funcs


def expand(s, env):
    """Expand $x and ${x} from env outside single quotes, as the shell
    does; unknown ones become @x@."""
    def sub(m):
        name = m.group(1) or m.group(2)
        if name in env:
            return env[name]
        return "@%s@" % name
    parts = re.split(r"('[^']*')", s)
    return "".join(p if p.startswith("'") else
                   re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, p) for p in parts)


def stage_ops(words, funcs, common, env, depth=0):
    """Filter operations of one pipeline stage (argv list), or raise
    ValueError with the reason it is not replayable."""
    if not words:
        return []
    cmd = words[0]
    if cmd in ("tee", "cat") and not [w for w in words[1:]
                                      if not w.startswith("-")
                                      and "seq.full" not in w]:
        return []
    if cmd == "tee":
        return []
    if cmd == "pmjson":
        return [{"op": "pmjson"}]
    if cmd == "col":
        return [{"op": "col"}]
    if cmd == "sort":
        return [{"op": "sort"}]
    if cmd == "tr" and words[1:] == ["-d", "\n"]:
        return [{"op": "tr-d-nl"}]
    if cmd == "sed":
        exprs, ere, k = [], False, 1
        while k < len(words):
            w = words[k]
            if w == "-e":
                exprs.append(words[k + 1])
                k += 2
                continue
            if w in ("-E", "-r"):
                ere = True
            elif not w.startswith("-") and not exprs:
                exprs.append(w)
            k += 1
        return [{"op": "sed", "ere": ere, "exprs": exprs}]
    if cmd == "grep":
        inv, ere, pat = False, False, None
        for w in words[1:]:
            if w == "-v":
                inv = True
            elif w == "-E":
                ere = True
            elif not w.startswith("-"):
                pat = w
        return [{"op": "grep", "invert": inv, "ere": ere, "pattern": pat}]
    body = funcs.get(cmd) or common.get(cmd)
    if body is not None and depth < 4:
        return func_ops(body, funcs, common, env, depth + 1)
    raise ValueError("filter stage %r is not replayable" % cmd)


def func_ops(body, funcs, common, env, depth):
    """The filter operations of a shell function body: its pipeline
    stages in order; echo lines (titles), status/if lines, helpers writing
    to files (context/series extraction) are not part of the output."""
    ops = []
    for line in join_lines("\n".join(body)):
        s = line.strip()
        if not s or s.startswith(("echo", "status", "if ", "else", "fi",
                                  "then", "rm ", "#", "context ",
                                  "series ", "cat $tmp.unfiltered")):
            continue
        # `cat $tmp.filtered | sed ...`: the stream the function filters
        s = re.sub(r"^cat\s+\S+\s*\|", "", s).strip()
        for seg in split_pipes(s):
            try:
                words = shlex.split(expand(seg, env), comments=True)
            except ValueError:
                raise ValueError("cannot read filter line %r" % s)
            words = [w for w in words
                     if not re.match(r"^[0-9]?[<>]", w)]
            # `pmjson < in > out`, `tee -a full > file`: redirections are
            # how the stage reads and writes, the operation is the same
            words = [w for k, w in enumerate(words)
                     if not (k > 0 and words[k - 1] in ("<", ">", ">>"))]
            words = [w for w in words if w not in ("<", ">", ">>")]
            if words and words[0] in ("LC_COLLATE=POSIX",):
                words = words[1:]
            ops.extend(stage_ops(words, funcs, common, env, depth))
    return ops


def parse_curl(words):
    """curl argv -> dict(method, urls, headers, body_file/body, mode...)."""
    r = {"method": None, "urls": [], "headers": [], "data": None,
         "include": False, "head": False, "get": False, "user": None,
         "unix_socket": None, "request_target": None, "output": None}
    k = 1
    while k < len(words):
        w = words[k]
        nxt = words[k + 1] if k + 1 < len(words) else None
        if w in ("-X", "--request"):
            r["method"] = nxt
            k += 2
            continue
        if w in ("-H", "--header"):
            r["headers"].append(nxt)
            k += 2
            continue
        if w in ("-d", "--data", "--data-binary"):
            r["data"] = nxt
            k += 2
            continue
        if w in ("-u", "--user"):
            r["user"] = nxt
            k += 2
            continue
        if w == "--unix-socket":
            r["unix_socket"] = nxt
            k += 2
            continue
        if w == "--request-target":
            r["request_target"] = nxt
            k += 2
            continue
        if w in ("-o", "--output"):
            r["output"] = nxt
            k += 2
            continue
        if w in ("-m", "--max-time"):
            k += 2
            continue
        if w in ("--get",):
            r["get"] = True
        elif w.startswith("-") and not w.startswith("--"):
            flags = w[1:]
            r["include"] |= "i" in flags
            r["head"] |= "I" in flags
            r["get"] |= "G" in flags
        elif not w.startswith("-"):
            r["urls"].append(w)
        k += 1
    return r


def extract_test(num, text, common):
    lines = join_lines(text)
    funcs = parse_functions(lines)
    env = {"port": "44322", "proxyport": "44322", "pmproxyport": "44322",
           "PCP_VERSION": "@PCP_VERSION@", "hostname": "@hostname@",
           "machineid": "@machineid@", "domainname": "@domainname@",
           "seq": num}
    files, reqs = {}, []
    in_func, heredoc = False, None
    for idx, line in enumerate(lines):
        if heredoc:
            if line.strip() == heredoc[1]:
                files[heredoc[0]] = "".join(heredoc[2])
                heredoc = None
            else:
                heredoc[2].append(expand(line, env) + "\n")
            continue
        if re.match(r"^(\w+)\s*\(\)", line):
            in_func = True
            continue
        if in_func:
            if line.rstrip() == "}":
                in_func = False
            continue
        s = line.strip()
        m = re.match(r"^cat\s*>\s*(\S+)\s*<<\s*'?(\w+)'?", s)
        if m:
            heredoc = (expand(m.group(1), env), m.group(2), [])
            continue
        m = re.match(r"^echo (.*) \| tr -d '\\n' > (\S+)$", s)
        if m:
            files[expand(m.group(2), env)] = expand(shlex.split(m.group(1))[0], env)
            continue
        m = re.match(r"^(\w+)=(.*)$", s)
        if m and "curl" not in s:
            name, val = m.group(1), m.group(2)
            if "`cat $tmp.context`" in val:
                prefix = val.strip('"').split("`")[0]
                reqs.append({"action": "set", "var": name,
                             "prefix": prefix})
                env.pop(name, None)
            elif re.match(r"^`head -c ([0-9]+) < /dev/zero \| "
                          r"tr '\\0' '\\([0-7]{3})'`$", val):
                mm = re.match(r"^`head -c ([0-9]+) < /dev/zero \| "
                              r"tr '\\0' '\\([0-7]{3})'`$", val)
                env[name] = chr(int(mm.group(2), 8)) * int(mm.group(1))
            elif "`" not in val and "$(" not in val:
                try:
                    env[name] = expand(" ".join(shlex.split(
                        val, comments=True)), env)
                except ValueError:
                    pass
            continue
        if not re.search(r"(^|[\s`(;])curl\s", s) or \
                s.startswith(("which ", "echo ")) or "--help" in s:
            continue
        set_var = None
        m = re.match(r"^(\w+)=[`$]\(?(.*?)[`)]?$", s)
        if m:
            set_var, s = m.group(1), m.group(2)
        s = re.sub(r"^.*?\bdo\s+", "", s) if s.startswith("for ") else s
        s = re.sub(r"^\$sudo\s+", "", s)
        s = re.sub(r"\s*&\s*2>/dev/null eval .*$", "", s)
        s = re.sub(r";\s*done\s*$", "", s)
        segs = split_pipes(s)
        rec = {"test": num}
        try:
            words = shlex.split(expand(segs[0], env), comments=True)
        except ValueError as e:
            rec["skip"] = "cannot read the curl line: %s" % e
            reqs.append(rec)
            continue
        redirect_out = any(re.match(r"^>[^&]", w) or w == ">"
                           for w in words) or \
            re.search(r"(^|\s)>\s*\$tmp", segs[-1]) is not None
        kept, devnull = [], False
        for k, w in enumerate(words):
            if re.match(r"^[0-9]?>", w):
                continue
            if k > 0 and re.match(r"^[0-9]?>$", words[k - 1]):
                devnull |= w == "/dev/null" and words[k - 1] == ">"
                continue
            kept.append(w)
        c = parse_curl(kept)
        if devnull:
            c["output"] = "/dev/null"
        ops, why = [], None
        for seg in segs[1:]:
            try:
                sw = shlex.split(expand(seg, env), comments=True)
            except ValueError:
                why = "cannot read filter %r" % seg
                break
            if sw and sw[0] == "pmpython" and "context" in seg:
                continue        # the context id into a shell variable
            if sw and sw[0] in ("_json_log",):
                continue
            sw = [w for w in sw if not re.match(r"^[0-9]?>", w)]
            try:
                ops.extend(stage_ops(sw, funcs, common, env))
            except ValueError as e:
                why = str(e)
                break
        title = None
        for seg in segs[1:]:
            mt = re.match(r'^_filter_\w+\s+"([^"]*)"', seg)
            if mt:
                title = mt.group(1)
        body = None
        if c["data"] is not None:
            if c["data"].startswith("@"):
                body = files.get(c["data"][1:])
                if body is None:
                    why = why or "POST body from a file the test " \
                                 "builds in a way not read here"
            else:
                body = c["data"]
        method = c["method"] or ("HEAD" if c["head"] else
                                 "POST" if body is not None and not c["get"]
                                 else "GET")
        if c["get"] and body is not None:
            why = why or "curl -G with -d (query built by curl)"
        output = "headers" if c["head"] else \
            "full" if c["include"] else "body"
        if c["output"] == "/dev/null" or (redirect_out and not segs[1:]):
            output = "status"
        elif redirect_out or (set_var and not ops):
            output = "status" if not set_var else output
        for n, url in enumerate(c["urls"]):
            r = dict(rec)
            r["id"] = "%s.%d" % (num, len([q for q in reqs
                                           if q.get("test") == num]) + 1)
            if title:
                r["title"] = title
            mu = re.match(r"^(https?)://([^/]*)(/.*)?$", url)
            if not mu:
                r["skip"] = TEST_SKIP.get(num) or "no URL in the curl line"
                reqs.append(r)
                continue
            target = mu.group(3) or "/"
            if c["request_target"]:
                target = c["request_target"]
            r.update({"method": method, "target": target,
                      "headers": c["headers"], "output": output,
                      "filters": ops})
            if body is not None:
                r["body"] = body
            if set_var:
                r["set"] = set_var
            reason = TEST_SKIP.get(num) or why
            if not reason:
                for sub, rs in TARGET_SKIP:
                    if sub in url:
                        reason = rs
            if not reason and c["unix_socket"]:
                reason = "pmproxy's unix domain socket (bpftraced " \
                         "listens on TCP only)"
            if not reason and c["user"]:
                reason = "HTTP basic authentication against pmproxy's SASL"
            if not reason and "@" in target.replace("@PCP_VERSION@", ""):
                vs = set(re.findall(r"@(\w+)@", target))
                known = {q["var"] for q in reqs if q.get("action") == "set"}
                known |= {q["set"] for q in reqs if q.get("set")}
                if vs - known:
                    reason = "target uses shell variable(s) %s the " \
                             "test computes otherwise" % \
                             ", ".join("$" + v for v in sorted(vs - known))
            if reason:
                r["skip"] = reason
            reqs.append(r)
    # requests inside shell functions (called with arguments) are not
    # replayed: count them so the skip list is complete
    for name, body in funcs.items():
        for line in join_lines("\n".join(body)):
            if re.search(r"(^|\s)curl\s", line) and "which" not in line \
                    and "--help" not in line:
                reqs.append({"test": num, "id": "%s.f-%s" % (num, name),
                             "skip": "curl inside the shell function "
                                     "%s() (arguments from the test's "
                                     "control flow)" % name})
                break
    return reqs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--testsuite", default="/var/lib/pcp/testsuite")
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    common = {}
    for f in ("common.check", "common.filter"):
        p = os.path.join(args.testsuite, f)
        if os.path.exists(p):
            with open(p, errors="replace") as fh:
                common.update(parse_functions(join_lines(fh.read())))
    try:
        version = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "pcp-testsuite"],
            capture_output=True, text=True).stdout.strip()
    except OSError:
        version = ""
    out = []
    for t in TESTS:
        p = os.path.join(args.testsuite, t)
        if not os.path.exists(p):
            continue
        with open(p, errors="replace") as fh:
            out.extend(extract_test(t, fh.read(), common))
    # one copy of each filter chain; requests name theirs by index
    chains, keyed = [], {}
    for r in out:
        if "filters" in r:
            k = json.dumps(r["filters"], sort_keys=True)
            if k not in keyed:
                keyed[k] = len(chains)
                chains.append(r["filters"])
            r["filters"] = keyed[k]
    doc = {"format": 1,
           "testsuite": "pcp-testsuite %s (%s)" % (version or "?",
                                                   args.testsuite),
           "generated_by": "tests/conformance/qa_extract.py",
           "tests": TESTS,
           "filter_chains": chains,
           "requests": out}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    n = [r for r in out if "id" in r]
    print("%d requests (%d skipped) from %d tests -> %s" % (
        len(n), len([r for r in n if "skip" in r]), len(TESTS), args.out),
        file=sys.stderr)


if __name__ == "__main__":
    main()
