#!/usr/bin/python3
"""fnserver: a small, scriptable HTTP function server for sluice's integration tests.

It plays the function sluice invokes: a webhook (mode "http") or the Lambda Invoke API
(mode "lambda": POST /2015-03-31/functions/<name>/invocations).  Every request is recorded
(path, headers, body, decoded JSON, arrival index and time); the reply comes from a queue of
scripted responses consumed in order, then from a default, unless a hook decides.

In-process use (pytest):

    srv = FnServer(mode="http").start()
    srv.push(Reply(429), Reply(500), Reply(200, delay=2.0))
    ... sluice posts to srv.url + "/events" ...
    srv.requests()          # snapshot list of Request
    records(srv.requests()) # [(partitionKey, sequenceNumber, line bytes), ...]
    srv.stop()

Script use (for benchmarks or by hand): prints the base URL on stdout, then serves until
SIGTERM/SIGINT.  With --log FILE every request is appended to FILE as one JSON line.

    /usr/bin/python3 fnserver.py --port 0 --mode lambda --status 200
"""

import argparse
import base64
import json
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LAMBDA_PREFIX = "/2015-03-31/functions/"
LAMBDA_SUFFIX = "/invocations"

_REASONS = {
    200: "OK", 202: "Accepted", 204: "No Content", 400: "Bad Request", 403: "Forbidden",
    404: "Not Found", 413: "Payload Too Large", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
}


class Reply:
    """One scripted response.

    status: HTTP status.  headers: dict of extra headers.  body: bytes/str/JSON-able.
    delay: seconds to wait before answering (interrupted by stop()).  function_error: when
    set, adds X-Amz-Function-Error (Lambda's "the function failed").  hang: never answer
    (until stop()); drop: close the connection without any answer.
    """

    def __init__(self, status=200, body=None, headers=None, delay=0.0, function_error=None,
                 hang=False, drop=False):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.delay = delay
        self.function_error = function_error
        self.hang = hang
        self.drop = drop

    def body_bytes(self):
        if self.body is None:
            return b'{"ok":true}'
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()

    def __repr__(self):
        return "Reply(%d%s%s)" % (self.status,
                                  ", fe=%s" % self.function_error if self.function_error else "",
                                  ", delay=%s" % self.delay if self.delay else "")


class Request:
    """A received request.  `status` and `ok` are filled in once the reply is decided."""

    def __init__(self, index, method, path, headers, body, peer):
        self.index = index
        self.method = method
        self.path = path
        self.headers = headers  # list of (name, value) in arrival order
        self.body = body
        self.peer = peer
        self.time = time.time()
        self.status = None
        self.function_error = None
        self.answered = False
        self.reply_time = None  # when the reply was decided (just before it is written)
        self.inflight_at_arrival = None  # requests being handled when this one arrived (incl.)
        try:
            self.json = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError):
            self.json = None

    def header(self, name, default=None):
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return default

    @property
    def ok(self):
        return (self.status is not None and 200 <= self.status < 300
                and not self.function_error)

    def records(self):
        return event_records(self.json)

    def __repr__(self):
        return "Request(#%d %s %s status=%s n=%d)" % (
            self.index, self.method, self.path, self.status, len(self.records()))


def event_records(event):
    """Decode a sluice/Kinesis-shaped event into [(partitionKey, sequenceNumber:int, line:bytes)]."""
    out = []
    if not isinstance(event, dict):
        return out
    for r in event.get("Records") or []:
        k = r.get("kinesis") or {}
        try:
            seq = int(k.get("sequenceNumber"))
        except (TypeError, ValueError):
            seq = -1
        out.append((k.get("partitionKey"), seq, base64.b64decode(k.get("data", ""))))
    return out


def records(requests, ok_only=True, path=None):
    """All records of `requests` in arrival order; by default only those that were answered
    with success (2xx and no function error).  `path` filters by request path."""
    out = []
    for rq in requests:
        if ok_only and not rq.ok:
            continue
        if path is not None and rq.path != path:
            continue
        out.extend(rq.records())
    return out


def lines(requests, ok_only=True, path=None):
    """Just the decoded lines (as str) of `records(...)`."""
    return [ln.decode("utf-8", "replace") for _, _, ln in records(requests, ok_only, path)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fnserver/1"

    def setup(self):
        super().setup()
        # Python writes headers and body separately; without TCP_NODELAY, Nagle plus the
        # peer's delayed ACK adds ~40-90 ms to every reply.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, fmt, *args):  # quiet
        if self.server.fn.verbose:
            sys.stderr.write("fnserver: " + (fmt % args) + "\n")

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                size_line = self.rfile.readline(65537)
                if not size_line:
                    break
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _handle(self):
        fn = self.server.fn
        if self.headers.get("Expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
        body = self._read_body()
        rq = fn._record(self.command, self.path, list(self.headers.items()), body,
                        self.client_address)
        try:
            reply = fn._choose(rq)
        except BaseException:
            fn._leave(rq)
            raise
        if reply.drop:
            rq.status = None
            fn._leave(rq)
            self.close_connection = True
            return
        if reply.hang:
            fn._stopping.wait()
            fn._leave(rq)
            self.close_connection = True
            return
        if reply.delay and fn._stopping.wait(reply.delay):
            fn._leave(rq)
            self.close_connection = True
            return
        payload = reply.body_bytes()
        hdrs = {"Content-Type": "application/json"}
        if fn.mode == "lambda":
            hdrs["X-Amz-Executed-Version"] = "$LATEST"
            hdrs["X-Amzn-Requestid"] = "fnserver-%d" % rq.index
        if reply.function_error:
            hdrs["X-Amz-Function-Error"] = reply.function_error
        hdrs.update(reply.headers)
        rq.status = reply.status
        rq.function_error = reply.function_error
        head = ["HTTP/1.1 %d %s" % (reply.status, _REASONS.get(reply.status, "Status"))]
        for k, v in hdrs.items():
            head.append("%s: %s" % (k, v))
        head.append("Content-Length: %d" % len(payload))
        if self.close_connection:
            head.append("Connection: close")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload
        # leave the in-flight count BEFORE the client can see the reply, so the next request
        # it sends can never be counted as overlapping this one (max_inflight is a lower bound)
        fn._leave(rq)
        try:
            self.wfile.write(raw)  # one write: header and body together
            self.wfile.flush()
            rq.answered = True
        except OSError:
            self.close_connection = True
        fn._answered(rq)

    do_POST = _handle
    do_PUT = _handle
    do_GET = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # a client that hangs up mid-request (sluice killed) is normal here
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, BrokenPipeError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class FnServer:
    """Scriptable function server.  Thread-safe: requests are recorded under a lock."""

    def __init__(self, mode="http", default=None, hook=None, host="127.0.0.1", port=0,
                 verbose=False, log_path=None):
        if mode not in ("http", "lambda"):
            raise ValueError("mode must be 'http' or 'lambda'")
        self.mode = mode
        self.default = default or Reply(200)
        self.hook = hook  # callable(Request) -> Reply or None
        self.host = host
        self.port = port
        self.verbose = verbose
        self.log_path = log_path
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue = []
        self._requests = []
        self._stopping = threading.Event()
        self._inflight = 0
        self._max_inflight = 0
        self._srv = None
        self._thread = None
        self._log = None

    # ---- lifecycle -------------------------------------------------------------------
    def start(self):
        self._srv = _Server((self.host, self.port), _Handler)
        self._srv.fn = self
        self.port = self._srv.server_address[1]
        if self.log_path:
            self._log = open(self.log_path, "a", encoding="utf-8")
        self._thread = threading.Thread(target=self._srv.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        if self._srv:
            self._srv.shutdown()
            self._srv.server_close()
            self._srv = None
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def invoke_path(self, name):
        return LAMBDA_PREFIX + name + LAMBDA_SUFFIX

    # ---- scripting -------------------------------------------------------------------
    def push(self, *replies):
        """Queue replies, consumed in order by the next requests, before the default."""
        with self._lock:
            self._queue.extend(replies)

    def set_default(self, reply):
        with self._lock:
            self.default = reply

    def set_hook(self, hook):
        with self._lock:
            self.hook = hook

    def _choose(self, rq):
        with self._lock:
            hook = self.hook
        if hook is not None:
            r = hook(rq)
            if r is not None:
                return r
        if self.mode == "lambda" and not (rq.path.startswith(LAMBDA_PREFIX)
                                          and rq.path.endswith(LAMBDA_SUFFIX)):
            return Reply(404, body={"Type": "User", "Message": "no such path " + rq.path},
                         headers={"X-Amzn-ErrorType": "ResourceNotFoundException"})
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
            return self.default

    # ---- recording -------------------------------------------------------------------
    def _record(self, method, path, headers, body, peer):
        with self._cond:
            rq = Request(len(self._requests), method, path, headers, body, peer)
            self._requests.append(rq)
            self._inflight += 1
            self._max_inflight = max(self._max_inflight, self._inflight)
            rq.inflight_at_arrival = self._inflight
            self._cond.notify_all()
        return rq

    def _leave(self, rq):
        with self._cond:
            if rq.reply_time is None:
                rq.reply_time = time.time()
                self._inflight -= 1
            self._cond.notify_all()

    def _answered(self, rq):
        with self._cond:
            self._cond.notify_all()
        if self._log:
            entry = {"index": rq.index, "time": rq.time, "method": rq.method, "path": rq.path,
                     "status": rq.status, "headers": rq.headers,
                     "body": rq.body.decode("utf-8", "replace")}
            with self._lock:
                self._log.write(json.dumps(entry) + "\n")
                self._log.flush()

    def requests(self, path=None):
        """Snapshot of received requests (arrival order), optionally only those for `path`."""
        with self._lock:
            out = list(self._requests)
        if path is not None:
            out = [r for r in out if r.path == path]
        return out

    def count(self):
        with self._lock:
            return len(self._requests)

    def records(self, ok_only=True, path=None):
        return records(self.requests(), ok_only, path)

    def lines(self, ok_only=True, path=None):
        return lines(self.requests(), ok_only, path)

    def clear(self):
        with self._lock:
            self._requests = []

    # ---- concurrency -----------------------------------------------------------------
    # A request is "in flight" from the moment its body has been read until its reply is
    # decided (just before the reply is written, or when a hung/dropped request ends), so the
    # counts never overstate what the client had outstanding.
    def inflight(self):
        with self._lock:
            return self._inflight

    def max_inflight(self):
        with self._lock:
            return self._max_inflight

    def reset_max_inflight(self):
        with self._lock:
            self._max_inflight = self._inflight


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--mode", choices=("http", "lambda"), default="http")
    ap.add_argument("--status", type=int, default=200, help="default reply status")
    ap.add_argument("--function-error", default=None,
                    help="answer every request with X-Amz-Function-Error: VALUE")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds before each reply")
    ap.add_argument("--script", default=None,
                    help="JSON list of replies consumed first, e.g. "
                         "'[{\"status\":429},{\"status\":500,\"delay\":1}]'")
    ap.add_argument("--log", default=None, help="append each request as a JSON line")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    srv = FnServer(mode=a.mode, host=a.host, port=a.port, verbose=a.verbose, log_path=a.log,
                   default=Reply(a.status, delay=a.delay, function_error=a.function_error))
    if a.script:
        for item in json.loads(a.script):
            srv.push(Reply(**item))
    srv.start()
    print(srv.url, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(0.5):
        pass
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
