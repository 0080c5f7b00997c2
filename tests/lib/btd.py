# SPDX-License-Identifier: MIT
"""btd.py - shared helpers for the bpftraced tests (Python stdlib only).

    Daemon    start/stop a bpftraced process on a free local port
    http()    one HTTP request with a raw, never re-encoded request target
    Tap       a minimal TAP 13 producer (plan printed at the end)
    raw()     send raw bytes on a new connection, read the answer
    recv_all()  read a socket until the peer closes
    parse_response()  split raw answer bytes into status/headers/body
    stop_process()  SIGTERM a child, SIGKILL it when it does not end

Runs with /usr/bin/python3 (Debian 12's 3.11); no third-party modules.
"""

import contextlib
import fcntl
import http.client as httpclient
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

__all__ = ["Daemon", "DaemonError", "http", "connect", "split_url",
           "Tap", "REPO_ROOT", "default_binary", "raw", "parse_response",
           "free_port", "shared_dir", "FAKE_BPFTRACE", "Client",
           "bpftrace_usable", "passwd_binary", "users_file", "can_bind",
           "BT_BPFTRACE", "real_bpftrace", "wait_for", "recv_all",
           "stop_process"]

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


FAKE_BPFTRACE = os.path.join(REPO_ROOT, "tests", "lib", "fake-bpftrace")

# The real bpftrace the tests run: $BT_BPFTRACE when set (make
# check-versions sets it to tests/versions/bpftrace-trixie or -sid, the
# bpftrace of a Debian root), else "bpftrace" from PATH. Every Daemon
# started without --bpftrace (or --config) gets "--bpftrace $BT_BPFTRACE"
# when it is set.
BT_BPFTRACE = os.environ.get("BT_BPFTRACE") or None


def real_bpftrace():
    """The real bpftrace binary's path ($BT_BPFTRACE, else bpftrace on
    PATH), None when there is none."""
    if BT_BPFTRACE:
        return BT_BPFTRACE if os.access(BT_BPFTRACE, os.X_OK) else None
    return shutil.which("bpftrace")


def shared_dir():
    """The shared test data ($BT_SHARED, else ../shared beside the repo)
    when its fixtures are there, else None."""
    s = os.environ.get("BT_SHARED") or os.path.join(
        os.path.dirname(REPO_ROOT), "shared")
    return s if os.path.isdir(os.path.join(s, "fixtures")) else None



def passwd_binary():
    """bpftraced-passwd of the build under test."""
    return os.environ.get("BPFTRACED_PASSWD") or os.path.join(
        REPO_ROOT, "src", "bpftraced-passwd")


def users_file(tmp, users):
    """A --auth-file in tmp for users [(name, roles)], each with the
    password "pw-NAME" (hashed by bpftraced-passwd), mode 0600."""
    path = os.path.join(tmp, "users")
    lines = []
    for user, roles in users:
        args = [passwd_binary()] + (["--roles", roles] if roles else [])
        p = subprocess.run(args + [user], input=("pw-" + user).encode(),
                           stdout=subprocess.PIPE, check=True)
        lines.append(p.stdout.decode().strip())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def can_bind(addr, family=socket.AF_INET):
    """True when this host can bind a socket to addr (e.g. 127.0.0.2)."""
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.bind((addr, 0))
        return True
    except OSError:
        return False
    finally:
        s.close()

def default_binary():
    """The bpftraced binary: $BPFTRACED, else <repo>/src/bpftraced."""
    return os.environ.get("BPFTRACED") or os.path.join(REPO_ROOT, "src",
                                                       "bpftraced")


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

def split_url(url):
    """Split "http://host:port<target>" into (host, port, target).

    The target is returned exactly as written (no parsing, no
    re-encoding), so malformed percent-escapes and odd targets survive.
    A target that does not start with "/" (e.g. "*" for OPTIONS *) is
    kept as is; an empty one becomes "/".
    """
    rest = url
    if rest.startswith("http://"):
        rest = rest[len("http://"):]
    elif "://" in rest:
        raise ValueError("only http:// URLs are supported: %r" % url)
    # the authority ends at the first "/", "?" or "*"
    end = len(rest)
    for sep in ("/", "?", "*"):
        i = rest.find(sep)
        if i != -1 and i < end:
            end = i
    authority, target = rest[:end], rest[end:]
    if target.startswith("?"):
        target = "/" + target
    if not target:
        target = "/"
    host, port = authority, 80
    if authority.startswith("["):           # [v6]:port
        close = authority.index("]")
        host = authority[1:close]
        if authority[close + 1:close + 2] == ":":
            port = int(authority[close + 2:])
    elif ":" in authority:
        host, p = authority.rsplit(":", 1)
        port = int(p)
    return host, port, target


def connect(url, timeout=10.0):
    """A keep-alive http.client.HTTPConnection for url's host and port."""
    host, port, _ = split_url(url)
    return httpclient.HTTPConnection(host, port, timeout=timeout)


def http(method, url, body=None, headers=None, conn=None, timeout=10.0,
         full=False, version=None):
    """Send one request; return (status, headers, body).

    headers in the result is a dict with lowercased names (repeated
    headers joined with ", "); body is bytes.  The request target is sent
    exactly as it appears in url.  Without conn a new connection is made
    and closed; with conn (from connect()) that connection is reused.
    body may be bytes or str (UTF-8); when given, Content-Length is set
    unless the caller set it.  With full=True a fourth element is
    returned: a dict with "version" (e.g. "HTTP/1.1"), "reason" and
    "header_list" (the raw (name, value) pairs in order).  version="HTTP/1.0"
    sends an HTTP/1.0 request line (only on a connection made here).
    """
    _, _, target = split_url(url)
    own = conn is None
    if own:
        conn = connect(url, timeout)
        if version == "HTTP/1.0":
            conn._http_vsn = 10          # http.client has no public knob
            conn._http_vsn_str = "HTTP/1.0"
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        names = set()
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
            names.add(k.lower())
        if isinstance(body, str):
            body = body.encode("utf-8")
        if body is not None and "content-length" not in names \
                and "transfer-encoding" not in names:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        hdrs = {}
        for k, v in resp.getheaders():
            k = k.lower()
            hdrs[k] = hdrs[k] + ", " + v if k in hdrs else v
        if full:
            extra = {
                "version": "HTTP/1.0" if resp.version == 10 else "HTTP/1.1",
                "reason": resp.reason,
                "header_list": list(resp.getheaders()),
            }
            return resp.status, hdrs, data, extra
        return resp.status, hdrs, data
    finally:
        if own:
            conn.close()


def raw(host, port, data, timeout=5.0, shut_wr=False, family=None):
    """Send data (bytes) on a fresh TCP connection; return what comes back.

    Reads until the peer closes or nothing arrives for timeout seconds
    (so a keep-alive answer costs one timeout: send "Connection: close"
    when speed matters).  shut_wr=True half-closes our side after
    sending.  Nothing is parsed or re-encoded: NUL bytes, bare LFs and
    invalid UTF-8 go out exactly as given.
    """
    fam = family or (socket.AF_INET6 if ":" in host else socket.AF_INET)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    out = b""
    try:
        s.connect((host, port))
        if data:
            s.sendall(data)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    return out


def recv_all(s):
    """All that socket s receives until the peer closes it (bytes)."""
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            return data
        data += b


def parse_response(data):
    """Split one raw HTTP answer into a dict.

    Keys: "version" ("HTTP/1.1"), "status" (int), "reason", "headers"
    (dict, lowercased names, repeats joined with ", "), "header_list",
    "body" (bytes, Content-Length honoured when present, else the rest)
    and "rest" (bytes after the body: a second answer on the same
    connection).  Returns None when data holds no complete header block.
    """
    end = data.find(b"\r\n\r\n")
    if end == -1:
        return None
    head, rest = data[:end].decode("latin-1"), data[end + 4:]
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    hdrs, hlist = {}, []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        k, v = k.strip(), v.strip()
        hlist.append((k, v))
        k = k.lower()
        hdrs[k] = hdrs[k] + ", " + v if k in hdrs else v
    body, after = rest, b""
    if "content-length" in hdrs:
        try:
            n = int(hdrs["content-length"].split(",")[0])
            body, after = rest[:n], rest[n:]
        except ValueError:
            pass
    return {"version": parts[0], "status": int(parts[1]),
            "reason": parts[2] if len(parts) > 2 else "",
            "headers": hdrs, "header_list": hlist, "body": body,
            "rest": after}


# --------------------------------------------------------------------------
# Daemon
# --------------------------------------------------------------------------

PMCD_LOCK = os.path.join(tempfile.gettempdir(), "bpftraced-tests-pmcd.lock")


@contextlib.contextmanager
def pmcd_lock(exclusive=False):
    """Serialise the tests that stop the local pmcd (exclusive) with the
    ones that need it running throughout (shared), across processes:
    make check -j runs them side by side."""
    f = open(PMCD_LOCK, "a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


class DaemonError(RuntimeError):
    pass


TSAN = os.environ.get("BT_TSAN") == "yes"
TSAN_EXITCODE = 66      # Makefile.am's and quickstart.sh's TSAN_OPTIONS


def tsan_report(stderr, died=None):
    """On a ThreadSanitizer build: why the daemon's run counts as failed
    (a report in its stderr, or TSan's exit code or a crash before it was
    asked to stop), or None.  Elsewhere always None."""
    if not TSAN:
        return None
    i = stderr.find("WARNING: ThreadSanitizer")
    if i < 0:
        i = stderr.find("ThreadSanitizer:")
    if i >= 0:
        return "ThreadSanitizer report:\n" + stderr[i:i + 6000]
    # TSAN_OPTIONS exitcode=66, or a crash; a test's own SIGKILL is not
    crash = (-signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS,
             -signal.SIGILL, -signal.SIGFPE)
    if died == TSAN_EXITCODE or died in crash:
        return ("bpftraced died (exit %d) before it was stopped:\n%s"
                % (died, stderr[-3000:]))
    return None


def free_port(host="127.0.0.1"):
    """A TCP port that was free on host a moment ago."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


_free_port = free_port          # the old private name


class Daemon:
    """A bpftraced process on 127.0.0.1:<free port>.

        with Daemon() as d:
            status, hdrs, body = http("GET", d.url("/pmapi/context"))

    binary: default $BPFTRACED or <repo>/src/bpftraced.  args: extra
    command-line arguments.  env: extra environment variables (a value
    of None removes that variable, e.g. {"JOURNAL_STREAM": None}).
    state_dir: default a fresh temporary directory (removed by stop()
    unless $BTD_KEEP is set).  pmcd: False (default) adds "--pmcd off"
    so a test sees bpftraced's own metrics only, whatever pmcd the host
    runs; None leaves the default (the local pmcd if it answers); a
    string is passed as --pmcd.  Ignored when args name --pmcd.
    pass_fds: descriptors of ours the daemon inherits (subprocess's).  The daemon's stderr goes to
    self.stderr_path (readable with stderr_text()).  port: listen on this
    port (e.g. a restart where the last daemon was) instead of a free one.
    """

    START_TIMEOUT = 10.0     # seconds for /pmapi/context to answer
    PORT_RETRIES = 5
    EARLY_EXIT_WINDOW = 1.0  # an exit 1 this soon means "port in use"

    def __init__(self, args=(), binary=None, env=None, state_dir=None,
                 start=True, start_timeout=None, pmcd=False, port=None,
                 wait_version=True, pass_fds=()):
        self.fixed_port = port
        self.pass_fds = tuple(pass_fds)
        self.binary = binary or default_binary()
        self.wait_version = wait_version
        self.args = list(args)
        if not any(a == "--pmcd" or a.startswith("--pmcd=")
                   for a in self.args):
            if pmcd is False:
                self.args += ["--pmcd", "off"]
            elif pmcd:
                self.args += ["--pmcd", pmcd]
        # (not when a --config file is given: it may name its own bpftrace)
        if BT_BPFTRACE and not any(a in ("--bpftrace", "--config") or
                                   a.startswith(("--bpftrace=", "--config="))
                                   for a in self.args):
            self.args += ["--bpftrace", BT_BPFTRACE]
        self.env = dict(os.environ)
        for k, v in (env or {}).items():
            if v is None:
                self.env.pop(k, None)
            else:
                self.env[k] = v
        self._tmp = tempfile.mkdtemp(prefix="btd-")
        self.state_dir = state_dir or os.path.join(self._tmp, "state")
        os.makedirs(self.state_dir, exist_ok=True)
        self.stderr_path = os.path.join(self._tmp, "stderr.log")
        self.start_timeout = start_timeout or self.START_TIMEOUT
        self.proc = None
        self.port = None
        self.returncode = None
        if start:
            self.start()

    # -- lifecycle ---------------------------------------------------------
    def command(self, port):
        # PMDA mode stays off unless a test asks for it: a test daemon
        # must not take the PMDA socket of a real one
        pmda = [] if "--pmda" in self.args else ["--pmda", "off"]
        return [self.binary, "--listen", "127.0.0.1:%d" % port,
                "--state-dir", self.state_dir] + pmda + self.args

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise DaemonError("bpftraced binary not found or not "
                              "executable: %s" % self.binary)
        for attempt in range(1 if self.fixed_port else self.PORT_RETRIES):
            port = self.fixed_port or _free_port()
            err = open(self.stderr_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    self.command(port), stdin=subprocess.DEVNULL,
                    stdout=err, stderr=err, env=self.env,
                    cwd=self._tmp, pass_fds=self.pass_fds)
            finally:
                err.close()
            self.port = port
            try:
                rc = self.proc.wait(self.EARLY_EXIT_WINDOW)
            except subprocess.TimeoutExpired:
                rc = None
            if rc is None:
                break
            if rc == 1 and attempt + 1 < self.PORT_RETRIES:
                continue            # most likely the port was taken
            self.proc = None
            raise DaemonError("bpftraced exited with %d at start:\n%s"
                              % (rc, self.stderr_text()))
        self._wait_ready()
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + self.start_timeout
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                self.proc = None
                raise DaemonError("bpftraced exited with %d before "
                                  "answering:\n%s" % (rc, self.stderr_text()))
            try:
                st, _, body = http("GET", self.url("/pmapi/context"),
                                   timeout=2.0)
                if st:
                    self._wait_version(deadline, body)
                    return
            except (OSError, httpclient.HTTPException) as e:
                last = e
            time.sleep(0.05)
        self.stop(cleanup=False)
        raise DaemonError("bpftraced did not answer GET /pmapi/context "
                          "within %.0fs (last error: %s); stderr:\n%s"
                          % (self.start_timeout, last, self.stderr_text()))

    def _wait_version(self, deadline, body):
        """The daemon answers before "bpftrace --version" is done (it
        runs in the background); tests expect the version known, so wait
        until bpftrace.info.version has a value ("" when bpftrace is
        missing), in the context GET /pmapi/context created."""
        if not self.wait_version:
            return
        try:
            ctx = json.loads(body)["context"]
        except (ValueError, KeyError, TypeError):
            return
        url = self.url("/pmapi/fetch?context=%s&names=bpftrace.info.version"
                       % ctx)
        while time.monotonic() < deadline:
            try:
                st, _, b = http("GET", url, timeout=2.0)
                if st != 200 or json.loads(b).get("values"):
                    return
            except (OSError, ValueError, httpclient.HTTPException):
                return
            time.sleep(0.01)

    def stop(self, timeout=10.0, cleanup=True):
        """SIGTERM, wait; SIGKILL after timeout.  Returns the exit code.
        On a ThreadSanitizer build (BT_TSAN=yes) a report in the daemon's
        stderr, or a daemon that crashed or ended with TSan's exit code
        before it was stopped, raises DaemonError: the test fails even
        when its requests all passed."""
        died = None
        if self.proc is not None:
            died = self.proc.poll()
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.returncode = self.proc.returncode
            self.proc = None
        report = tsan_report(self.stderr_text(), died)
        if cleanup and not os.environ.get("BTD_KEEP"):
            shutil.rmtree(self._tmp, ignore_errors=True)
        if report:
            raise DaemonError(report)
        return self.returncode

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- helpers -----------------------------------------------------------
    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def url(self, path="/"):
        if not path.startswith("/") and path != "*":
            path = "/" + path
        return self.base + path

    def get_json(self, path, method="GET", **kw):
        """(status, parsed JSON or None, raw body) for one request."""
        st, _, body = http(method, self.url(path), **kw)
        try:
            obj = json.loads(body.decode("utf-8"))
        except ValueError:
            obj = None
        return st, obj, body

    def fetch_values(self, names, ctx=None):
        """{metric name: {instance: value}} from one /pmapi fetch
        (instance None for singular metrics); raises DaemonError unless
        the answer is 200 JSON."""
        path = ("/pmapi/%s/fetch?names=%s" % (ctx, names) if ctx
                else "/pmapi/fetch?names=%s" % names)
        st, obj, body = self.get_json(path)
        if st != 200 or obj is None:
            raise DaemonError("fetch %s: %s %r" % (names, st, body[:300]))
        return {v["name"]: {i["instance"]: i["value"]
                            for i in v["instances"]}
                for v in obj["values"]}

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


# --------------------------------------------------------------------------
# TAP
# --------------------------------------------------------------------------

class Client:
    """A curl-like client of one daemon with its own REST context.

        c = Client(d)              # GET /pmapi/context?polltimeout=120
        st, obj = c.getj("/pmapi/fetch", context=c.ctx, names="x")
        c.store("bpftrace.control.register", code)
        c.wait("bpftrace.scripts.x.status", lambda v: v == "started")

    getj() answers (status, parsed JSON, or {"_raw": the text} when the
    body is not JSON); with context=True the client's context is added
    to every request unless one is given.  hostspec, when given, goes
    with the context request.  The methods below speak in the client's
    context.
    """

    def __init__(self, d, polltimeout=120, timeout=15.0, context=False,
                 hostspec=None):
        self.d = d
        self.timeout = timeout
        self.add_context = context
        self.polltimeout = polltimeout
        self.hostspec = hostspec
        self.ctx = None
        self.new_context()

    def new_context(self):
        """GET /pmapi/context again: the client's context is a new one."""
        p = {"polltimeout": self.polltimeout}
        if self.hostspec is not None:
            p = {"hostspec": self.hostspec, "polltimeout": self.polltimeout}
        self.ctx = None
        self.ctx = self.getj("/pmapi/context", **p)[1]["context"]

    def getj(self, path, method="GET", body=None, **params):
        if self.add_context and self.ctx is not None:
            params.setdefault("context", self.ctx)
        q = urllib.parse.urlencode(params)
        st, _, raw = http(method, self.d.url(path + ("?" + q if q else "")),
                          body=body, timeout=self.timeout)
        try:
            return st, json.loads(raw)
        except ValueError:
            return st, {"_raw": raw.decode(errors="replace")}

    def store(self, name, value):
        """(status, JSON) of /pmapi/store name=value"""
        return self.getj("/pmapi/store", context=self.ctx, name=name,
                         value=value)

    def fetchj(self, *names):
        """(status, JSON) of one /pmapi/fetch of names"""
        return self.getj("/pmapi/fetch", context=self.ctx,
                         names=",".join(names))

    def fetch(self, *names):
        """{metric name: its "instances" list} of one fetch"""
        st, j = self.fetchj(*names)
        return {v["name"]: v["instances"] for v in j.get("values", [])}

    def value(self, name):
        """The first instance's value of one metric, None if none"""
        v = self.fetch(name).get(name)
        return v[0]["value"] if v else None

    def metric(self, name):
        """/pmapi/metric's description of one metric, {} if none"""
        j = self.getj("/pmapi/metric", context=self.ctx, names=name)[1]
        return (j.get("metrics") or [{}])[0]

    def named_values(self, name):
        """{instance name, None when singular: value} of one metric from
        a fetch and its indom's names (what pminfo -f lists); None when
        the fetch has no value"""
        v = self.fetchj(name)[1].get("values", [])
        if not v:
            return None
        indom = self.metric(name).get("indom")
        names = {}
        if indom:
            ind = self.getj("/pmapi/indom", context=self.ctx,
                            indom=indom)[1]
            names = {i["instance"]: i["name"]
                     for i in ind.get("instances", [])}
        return {names.get(i["instance"]) if i["instance"] is not None
                else None: i["value"] for i in v[0]["instances"]}

    wait_timeout = 8.0          # wait()'s defaults; a test may set its own
    wait_step = 0.05

    def wait(self, name, pred, timeout=None, step=None):
        """value(name) once it is not None and pred(it) holds; else the
        last one read when timeout seconds are over"""
        step = self.wait_step if step is None else step
        deadline = time.monotonic() + (self.wait_timeout if timeout is None
                                       else timeout)
        v = None
        while time.monotonic() < deadline:
            v = self.value(name)
            if v is not None and pred(v):
                return v
            time.sleep(step)
        return v

    def register(self, code):
        """(store status, store JSON, the Script read back from
        bpftrace.control.register: {} if none)"""
        st, j = self.store("bpftrace.control.register", code)
        ans = json.loads(self.value("bpftrace.control.register") or "{}")
        return st, j, ans


def stop_process(p, timeout=10.0):
    """SIGTERM the subprocess p and wait; SIGKILL it when it has not ended
    after timeout seconds.  Returns its exit status."""
    p.terminate()
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait()


def wait_for(fn, timeout=10.0, step=0.2):
    """fn()'s first true answer, or its last one after timeout seconds"""
    deadline = time.monotonic() + timeout
    v = fn()
    while not v and time.monotonic() < deadline:
        time.sleep(step)
        v = fn()
    return v


def bpftrace_usable():
    """None when bpftrace can run tracepoint scripts here, else why not."""
    if os.geteuid() != 0:
        return "not root: bpftrace needs CAP_BPF/CAP_SYS_ADMIN"
    try:
        p = subprocess.run(
            [BT_BPFTRACE or "bpftrace", "-f", "json", "-e",
             "tracepoint:raw_syscalls:sys_enter { @n = count(); } "
             "interval:ms:200 { exit(); }"],
            capture_output=True, timeout=30)
    except FileNotFoundError:
        return "bpftrace is not installed"
    except subprocess.TimeoutExpired:
        return "bpftrace did not finish a 200 ms script in 30 s"
    if p.returncode != 0 or b'"@n"' not in p.stdout:
        return "bpftrace cannot attach a tracepoint here (rc %d: %s)" % (
            p.returncode, p.stderr.decode(errors="replace").strip()[-200:])
    return None


class Tap:
    """Minimal TAP 13 output; the plan "1..N" is printed by done()."""

    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.n = 0
        self.failed = 0

    def _line(self, s):
        self.out.write(s + "\n")
        self.out.flush()

    @staticmethod
    def _clean(desc):
        # "#" would start a directive; newlines would break the stream
        return " ".join(str(desc).replace("#", "\\#").split())

    def diag(self, msg):
        for line in str(msg).splitlines() or [""]:
            self._line("# " + line)

    def ok(self, cond, desc, diag=None):
        self.n += 1
        if not cond:
            self.failed += 1
        self._line("%s %d - %s" % ("ok" if cond else "not ok", self.n,
                                   self._clean(desc)))
        if diag:
            self.diag(diag)
        return bool(cond)

    def check(self, cond, desc, diag=None):
        """Like ok(), but diag (a string, or a callable returning one, so
        expensive text is only built when needed) is printed only when
        the check fails."""
        if not cond and callable(diag):
            diag = diag()
        return self.ok(cond, desc, None if cond else diag)

    def skip(self, desc, reason):
        self.n += 1
        self._line("ok %d - %s # SKIP %s" % (self.n, self._clean(desc),
                                             self._clean(reason)))

    def guarded(self, fn, *args):
        """fn(*args)'s answer; an exception in it is one failed check
        ("FN ran without an exception", the traceback as diag) and the
        answer None, so that the groups after it still run."""
        try:
            return fn(*args)
        except Exception:               # noqa: BLE001
            self.ok(False, "%s ran without an exception" % fn.__name__,
                    traceback.format_exc())
            return None

    def todo(self, cond, desc, reason, diag=None):
        """A TODO test: reported, but a failure does not fail the run."""
        self.n += 1
        self._line("%s %d - %s # TODO %s" % ("ok" if cond else "not ok",
                                             self.n, self._clean(desc),
                                             self._clean(reason)))
        if diag:
            self.diag(diag)
        return bool(cond)

    @staticmethod
    def skip_all(reason, out=None):
        out = out or sys.stdout
        out.write("1..0 # SKIP %s\n" % reason)
        out.flush()
        sys.exit(0)

    def done(self, exit=True):
        self._line("1..%d" % self.n)
        rc = 1 if self.failed else 0
        if exit:
            sys.exit(rc)
        return rc
