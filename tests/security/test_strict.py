#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_strict.py - request framing, TLS defaults and clear-text
passwords (TAP).

  - RFC 9112: two Content-Length headers (equal or not), Content-Length
    with Transfer-Encoding, and a NUL byte in the request target are
    400 with a JSON message and the connection closed; the well-formed
    neighbours still pass.
  - TLS: 1.0 and 1.1 and static-RSA key exchange are refused by default,
    TLS 1.2 with ECDHE and TLS 1.3 work; --tls-priority replaces the
    default (and a string GnuTLS refuses stops the start); a key file
    readable by group or others stops the start, naming file and mode.
  - --control=auth or --auth-reads on a non-loopback listener without
    TLS is refused at start unless --allow-plain-auth says so.
"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import warnings

# TLS 1.0 and 1.1 are deprecated in Python too: we use them on purpose
warnings.filterwarnings("ignore", category=DeprecationWarning)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
if not os.access(btd.default_binary(), os.X_OK):
    btd.Tap.skip_all("bpftraced not built (%s)" % btd.default_binary())

BIN = btd.default_binary()


def raw(d, data):
    r = btd.raw("127.0.0.1", d.port, data, timeout=3)
    return btd.parse_response(r) or {"status": None, "headers": {},
                                     "body": r}


def message(resp):
    try:
        return json.loads(resp["body"].decode())["message"]
    except (ValueError, KeyError, AttributeError):
        return None


def test_framing():
    post = (b"POST /pmapi/context HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n%s")
    bad = [
        ("two equal Content-Length headers",
         post % (b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"),
         "more than one Content-Length header"),
        ("two different Content-Length headers",
         post % (b"Content-Length: 5\r\nContent-Length: 0\r\n", b"hello"),
         "more than one Content-Length header"),
        ("Content-Length with Transfer-Encoding: chunked",
         post % (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                 b"0\r\n\r\n"),
         "Content-Length together with Transfer-Encoding"),
        ("a NUL byte in the path",
         b"GET /pmapi/context\x00/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
         "NUL byte in the request target"),
        ("a NUL byte in the query",
         b"GET /pmapi/fetch?names=a\x00b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
         "NUL byte in the request target"),
    ]
    good = [
        ("one Content-Length",
         post % (b"Content-Length: 5\r\nConnection: close\r\n", b"hello")),
        ("Transfer-Encoding: chunked alone",
         post % (b"Transfer-Encoding: chunked\r\nConnection: close\r\n",
                 b"5\r\nhello\r\n0\r\n\r\n")),
        ("two blanks before the version",
         b"GET /pmapi/context  HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close"
         b"\r\n\r\n"),
        ("HTTP/1.0", b"GET /pmapi/context HTTP/1.0\r\n\r\n"),
    ]
    with btd.Daemon() as d:
        for desc, data, want in bad:
            r = raw(d, data)
            tap.check(r["status"] == 400 and message(r) == want and
                      r["headers"].get("connection", "").lower() == "close"
                      and r["headers"].get("content-type") ==
                      "application/json",
                      "framing: %s is 400 '%s', connection closed" % (desc,
                                                                      want),
                      lambda: repr(r))
        for desc, data in good:
            r = raw(d, data)
            tap.check(r["status"] == 200, "framing: %s still passes" % desc,
                      lambda: repr(r))
        tap.ok(d.alive(), "framing: the daemon is still running")


def make_cert(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    if shutil.which("openssl") is None:
        return None
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-subj", "/CN=localhost", "-days", "1",
                        "-keyout", key, "-out", cert],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if p.returncode != 0:
        return None
    os.chmod(key, 0o600)
    return cert, key


def handshake(port, version, ciphers=None):
    """(protocol, cipher) the server agreed to, or the error's name."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.minimum_version = ctx.maximum_version = version
        ctx.set_ciphers(ciphers or "DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError) as e:
        return "client cannot: %s" % e
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            with ctx.wrap_socket(s) as t:
                return t.version(), t.cipher()[0]
    except (ssl.SSLError, OSError) as e:
        return type(e).__name__


def start_fails(args, timeout=8):
    """(exit code or None when still running after timeout, stderr)."""
    tmp = tempfile.mkdtemp(prefix="btd-strict-")
    cmd = [BIN, "--listen", "127.0.0.1:%d" % btd.free_port(), "--state-dir",
           os.path.join(tmp, "st"), "--pmda", "off", "--pmcd", "off"] + args
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        _, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        rc = None
    shutil.rmtree(tmp, ignore_errors=True)
    return rc, err.decode("utf-8", "replace")


def test_tls(tmp):
    pair = make_cert(tmp)
    if pair is None:
        tap.skip("TLS", "no openssl to make a certificate")
        return
    cert, key = pair
    V = ssl.TLSVersion
    with btd.Daemon(["--tls-cert", cert, "--tls-key", key],
                    start=False) as d:
        d._wait_ready = lambda: wait_tls(d)
        d.start()
        for desc, ver, ciphers in [
                ("TLS 1.0", V.TLSv1, None),
                ("TLS 1.1", V.TLSv1_1, None),
                ("TLS 1.2 static RSA (AES128-GCM-SHA256)", V.TLSv1_2,
                 "AES128-GCM-SHA256"),
                ("TLS 1.2 static RSA (AES128-SHA)", V.TLSv1_2,
                 "AES128-SHA:@SECLEVEL=0")]:
            got = handshake(d.port, ver, ciphers)
            tap.check(not isinstance(got, tuple),
                      "TLS default: %s is refused" % desc, lambda: repr(got))
        got = handshake(d.port, V.TLSv1_2, "ECDHE-RSA-AES128-GCM-SHA256")
        tap.check(got == ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"),
                  "TLS default: TLS 1.2 with ECDHE works", lambda: repr(got))
        got = handshake(d.port, V.TLSv1_3)
        tap.check(isinstance(got, tuple) and got[0] == "TLSv1.3",
                  "TLS default: TLS 1.3 works", lambda: repr(got))
    try:
        with btd.Daemon(["--tls-cert", cert, "--tls-key", key,
                         "--tls-priority", "NORMAL:-VERS-TLS1.3"],
                        start=False) as d:
            d._wait_ready = lambda: wait_tls(d)
            d.start()
            got = handshake(d.port, V.TLSv1_2, "AES128-GCM-SHA256")
            tls13 = handshake(d.port, V.TLSv1_3)
    except btd.DaemonError as e:
        got = tls13 = "no daemon: %s" % str(e).splitlines()[:2]
    tap.check(got == ("TLSv1.2", "AES128-GCM-SHA256") and
              not isinstance(tls13, tuple),
              "--tls-priority NORMAL:-VERS-TLS1.3 replaces the default "
              "(static RSA allowed, TLS 1.3 not)",
              lambda: repr((got, tls13)))
    rc, err = start_fails(["--tls-cert", cert, "--tls-key", key,
                           "--tls-priority", "NOSUCHPRIORITY:+NONSENSE"])
    tap.check(rc not in (None, 0) and "--tls-priority" in err and
              "NOSUCHPRIORITY" in err,
              "a --tls-priority GnuTLS refuses stops the start, named",
              lambda: "rc %r: %s" % (rc, err))
    for mode in (0o644, 0o640, 0o604):
        os.chmod(key, mode)
        rc, err = start_fails(["--tls-cert", cert, "--tls-key", key])
        tap.check(rc not in (None, 0) and key in err and
                  ("%04o" % mode) in err and "chmod 600" in err,
                  "a --tls-key file of mode %04o stops the start, naming "
                  "file and mode" % mode, lambda: "rc %r: %s" % (rc, err))
    os.chmod(key, 0o600)


def wait_tls(d):
    deadline = time.monotonic() + d.start_timeout
    while time.monotonic() < deadline:
        if d.proc.poll() is not None:
            raise btd.DaemonError("bpftraced exited at start:\n" +
                                  d.stderr_text())
        try:
            with socket.create_connection(("127.0.0.1", d.port), 1):
                return
        except OSError:
            time.sleep(0.05)
    raise btd.DaemonError("bpftraced did not listen")


def check_only(args):
    tmp = tempfile.mkdtemp(prefix="btd-strict-")
    p = subprocess.run([BIN, "-n", "--state-dir", os.path.join(tmp, "st"),
                        "--pmda", "off", "--pmcd", "off"] + args,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=30)
    shutil.rmtree(tmp, ignore_errors=True)
    return p.returncode, p.stdout + p.stderr


def test_plain_auth(tmp, cert_pair):
    users = os.path.join(tmp, "users")
    with open(users, "w") as f:
        f.write("alice:$y$j9T$8bvmfXvCkOv.nJ9b3Nmr4/$YDHmS0XCJyRcCnoMPwzCQ"
                "MJpM31.Xk3Ro7TSEC6Kqu8\n")
    os.chmod(users, 0o600)
    auth = ["--control", "auth", "--auth-file", users]
    for desc, args in [
            ("--control=auth on 0.0.0.0", auth + ["--listen", "*:44399"]),
            ("--control=auth on 192.0.2.2 next to loopback",
             auth + ["--listen", "127.0.0.1:44399", "--listen",
                     "192.0.2.2:44399"]),
            ("--auth-reads on [::]", ["--auth-file", users, "--auth-reads",
                                      "--listen", "[::]:44399"])]:
        rc, out = check_only(args)
        tap.check(rc not in (None, 0) and "--allow-plain-auth" in out and
                  "clear text" in out,
                  "%s without TLS is refused, naming --allow-plain-auth"
                  % desc, lambda: "rc %r: %s" % (rc, out))
    for desc, args in [
            ("with --allow-plain-auth",
             auth + ["--listen", "*:44399", "--allow-plain-auth"]),
            ("on loopback only",
             auth + ["--listen", "127.0.0.2:44399", "--listen",
                     "[::1]:44399"]),
            ("--control=loopback on 0.0.0.0", ["--control", "loopback",
                                              "--listen", "*:44399"])]:
        rc, out = check_only(args)
        tap.check(rc == 0 and "configuration OK" in out,
                  "plain auth: %s is accepted" % desc,
                  lambda: "rc %r: %s" % (rc, out))
    if cert_pair:
        rc, out = check_only(auth + ["--listen", "*:44399", "--tls-cert",
                                     cert_pair[0], "--tls-key",
                                     cert_pair[1]])
        tap.check(rc == 0, "plain auth: --control=auth on 0.0.0.0 with TLS "
                  "is accepted", lambda: "rc %r: %s" % (rc, out))
    else:
        tap.skip("plain auth with TLS", "no certificate")


def main():
    tmp = tempfile.mkdtemp(prefix="btd-strict-")
    try:
        test_framing()
        test_tls(tmp)
        pair = (os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem"))
        test_plain_auth(tmp, pair if os.path.exists(pair[0]) else None)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tap.done()


main()
