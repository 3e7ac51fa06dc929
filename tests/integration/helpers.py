"""Helpers for sluice's integration tests: find the binary, write configs, run sluice,
wait on conditions with a deadline (never a bare sleep to wait for an event)."""

import json
import os
import signal
import subprocess
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PYTHON = "/usr/bin/python3"  # Debian's, by full path (PATH may hold a pyenv python)
POLL = 0.02


def in_ci():
    return os.environ.get("CI", "").lower() == "true"


def missing(what):
    """A missing prerequisite: skip on a laptop, fail under CI=true."""
    if in_ci():
        pytest.fail("prerequisite missing (CI=true): " + what, pytrace=False)
    pytest.skip("prerequisite missing: " + what)


def sluice_bin():
    path = os.environ.get("SLUICE_BIN") or os.path.join(REPO, "build", "sluice")
    if not os.path.isabs(path):
        path = os.path.join(REPO, path)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        missing("sluice binary at %s (set SLUICE_BIN)" % path)
    return path


def wait_until(pred, timeout=10.0, what="condition", proc=None):
    """Poll `pred` every 20 ms until it returns a truthy value (returned) or `timeout` passes
    (AssertionError naming `what`).  With `proc` (a Sluice), fail early if it exited."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            v = pred()
            if v:
                return v
            raise AssertionError("sluice exited (rc=%s) while waiting for %s\n%s"
                                 % (proc.poll(), what, proc.log_tail()))
        if time.monotonic() >= deadline:
            extra = ("\n" + proc.log_tail()) if proc is not None else ""
            raise AssertionError("timed out after %.1fs waiting for %s%s" % (timeout, what, extra))
        time.sleep(POLL)


def write_lines(path, lines, mode="a"):
    with open(path, mode + "b") as f:
        for ln in lines:
            f.write(ln.encode() if isinstance(ln, str) else ln)
            f.write(b"\n")
        f.flush()


def base_config(tmp, functions, mappings, **top):
    cfg = {"state_dir": os.path.join(str(tmp), "state"), "region": "us-east-1",
           "functions": functions, "mappings": mappings}
    cfg.update(top)
    return cfg


def http_fn(url, timeout=5, **extra):
    d = {"type": "http", "url": url, "timeout": timeout}
    d.update(extra)
    return d


def file_mapping(glob, fn, batch=100, window=0, start="TRIM_HORIZON", **extra):
    d = {"EventSourceArn": "file://" + str(glob), "FunctionName": fn, "BatchSize": batch,
         "MaximumBatchingWindowInSeconds": window, "StartingPosition": start}
    d.update(extra)
    return d


def write_config(tmp, cfg, name="sluice.json"):
    path = os.path.join(str(tmp), name)
    with open(path, "w", encoding="utf-8") as f:
        if isinstance(cfg, (bytes, str)):
            f.write(cfg if isinstance(cfg, str) else cfg.decode())
        else:
            json.dump(cfg, f, indent=2)
    return path


def sluice_env(extra=None, keep_aws=False):
    """Environment for sluice: short retry backoff; no stray AWS settings from the host."""
    env = {k: v for k, v in os.environ.items()
           if keep_aws or not (k.startswith("AWS_") or k in ("HTTP_PROXY", "http_proxy",
                                                             "HTTPS_PROXY", "https_proxy",
                                                             "ALL_PROXY", "all_proxy"))}
    env.setdefault("SLUICE_RETRY_BASE_MS", "20")
    env.setdefault("SLUICE_RETRY_MAX_MS", "200")
    env["NO_PROXY"] = "127.0.0.1,localhost"
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
    return env


class Sluice:
    """One sluice process.  stderr (its log) goes to a file; stdout to another."""

    def __init__(self, binary, config, tmp, args=(), env=None, cwd=None, name="sluice"):
        self.binary = binary
        self.config = config
        self.tmp = str(tmp)
        self.args = list(args)
        self.env = env
        self.cwd = cwd
        self.name = name
        self.proc = None
        self.runs = 0
        self.stderr_path = None
        self.stdout_path = None
        self.expect_dead = False

    def start(self, args=None, env=None, command="run"):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.runs += 1
        self.stderr_path = os.path.join(self.tmp, "%s.%d.stderr" % (self.name, self.runs))
        self.stdout_path = os.path.join(self.tmp, "%s.%d.stdout" % (self.name, self.runs))
        argv = [self.binary, command] + list(self.args if args is None else args) + [self.config]
        self.argv = argv
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=env if env is not None else self.env,
                                         cwd=self.cwd or self.tmp)
        self.expect_dead = False
        return self

    @property
    def pid(self):
        return self.proc.pid

    def poll(self):
        return self.proc.poll() if self.proc else None

    def wait(self, timeout=30):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("sluice did not exit within %ss\n%s" % (timeout, self.log_tail()))

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill9(self):
        """SIGKILL and reap."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        rc = self.proc.wait(10)
        self.expect_dead = True
        return rc

    def stop(self, timeout=30):
        """SIGTERM, wait for the drain; returns the exit code (SIGKILL after `timeout`)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError("sluice ignored SIGTERM for %ss\n%s"
                                     % (timeout, self.log_tail()))
        return self.proc.returncode

    def log(self, which="stderr", all_runs=False):
        if not self.stderr_path:
            return ""
        paths = ([os.path.join(self.tmp, "%s.%d.%s" % (self.name, i, which))
                  for i in range(1, self.runs + 1)] if all_runs
                 else [self.stderr_path if which == "stderr" else self.stdout_path])
        out = []
        for p in paths:
            try:
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
            except OSError:
                pass
        return "".join(out)

    def log_tail(self, n=40):
        text = self.log().splitlines()
        return "--- sluice stderr (%s, last %d lines) ---\n%s" % (
            self.stderr_path, n, "\n".join(text[-n:]))


def run_cli(binary, *args, env=None, timeout=30, cwd=None):
    """Run a short sluice command; returns CompletedProcess with text stdout/stderr."""
    try:
        return subprocess.run([binary] + list(args), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout,
                              env=env if env is not None else sluice_env(), cwd=cwd)
    except subprocess.TimeoutExpired:
        raise AssertionError("sluice %s did not exit within %ss" % (" ".join(args), timeout))


def proc_gone(pid):
    """True when pid no longer exists or is a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return True
    state = stat.rsplit(")", 1)[1].split()[0]
    return state in ("Z", "X")


def live_pids_in_group(pgid):
    """Live (non-zombie) processes whose process group is pgid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgrp = rest[0], int(rest[2])
        if pgrp == pgid and state not in ("Z", "X"):
            out.append(int(d))
    return out
