"""Redis for the integration tests: the server tests/services started (REDIS_URL in its
services.env), servers of a test's own that it may stop and start again on the same port, and
a small RESP client over a plain socket (Debian's python3 has no redis module)."""

import os
import shutil
import socket
import subprocess
import time

import helpers


def services_redis():
    """(host, port) of tests/services' Redis: REDIS_PORT from the environment, else from
    services.env in $SERVICES_RUN_DIR, $RUN_DIR or build-services; a missing one skips (fails
    under CI=true)."""
    port = os.environ.get("REDIS_PORT")
    run_dir = os.environ.get("SERVICES_RUN_DIR") or os.environ.get("RUN_DIR") or \
        os.path.join(helpers.REPO, "build-services")
    path = os.path.join(run_dir, "services.env")
    if not port and os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, sep, v = line.strip().partition("=")
                if sep and k == "REDIS_PORT":
                    port = v
    if not port:
        helpers.missing("Redis (SERVICES=redis tests/services/start.sh)")
    return "127.0.0.1", int(port)


class Resp:
    """One connection; call() sends a command and returns its reply (bytes, int, list, None;
    an error reply raises RespError)."""

    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.f = self.s.makefile("rb")

    def close(self):
        self.f.close()
        self.s.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest
        if t == b"-":
            raise RespError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise ValueError("bad RESP line %r" % line)


class RespError(Exception):
    pass


def call(port, *args, password=None):
    with Resp(port) as r:
        if password:
            r.call("AUTH", password)
        return r.call(*args)


def xrange_entries(port, stream, password=None):
    """[(id, {field: value})] of every entry of stream, oldest first."""
    out = []
    for eid, fields in call(port, "XRANGE", stream, "-", "+", password=password) or []:
        out.append((eid.decode(), dict(zip(fields[0::2], fields[1::2]))))
    return out


def redis_server_bin():
    b = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(b):
        helpers.missing("redis-server (apt-get install redis-server)")
    return b


class RedisServer:
    """A redis-server of a test's own on a free loopback port (with password: requirepass);
    stop() and start() again keep the port. With durable=True it writes every command to an append-only file in dir
    (appendfsync always), so a restart keeps what it had: a restart is then an outage, not a
    loss."""

    def __init__(self, dir, durable=True, port=None, password=None):
        self.password = password
        self.dir = str(dir)
        os.makedirs(self.dir, exist_ok=True)
        self.durable = durable
        self.port = port or _free_port()
        self.proc = None

    def start(self, timeout=10):
        args = [redis_server_bin(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--dir", self.dir, "--logfile", os.path.join(self.dir, "redis.log"),
                "--daemonize", "no"]
        args += ["--appendonly", "yes", "--appendfsync", "always"] if self.durable else \
            ["--appendonly", "no"]
        args += ["--requirepass", self.password] if self.password else []
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        helpers.wait_until(self._ready, timeout, "redis-server on port %d" % self.port)
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError("redis-server exited: %s" % self.log_tail())
        try:
            return call(self.port, "PING", password=self.password) == b"PONG"
        except (OSError, RespError):
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return ""


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
