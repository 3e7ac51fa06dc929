"""Helpers for sluice's integration tests: find the binary, write configs, run sluice,
wait on conditions with a deadline (never a bare sleep to wait for an event)."""

import json
import os
import signal
import socket
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


def built_in(bin_path, adapter):
    """True when the sluice at bin_path has the source or destination adapter `adapter` built
    in: `sluice version` lists them (meson -Dkafka=disabled leaves Kafka out, -Dredis=disabled
    Redis)."""
    r = subprocess.run([bin_path, "version"], capture_output=True, text=True, timeout=30)
    found = False
    for line in r.stdout.splitlines():
        if line.startswith("sources: ") or line.startswith("destinations: "):
            found = True
            if adapter in line.split()[1:]:
                return True
    if not found:
        raise AssertionError("sluice version lists no sources: %r" % r.stdout)
    return False


def needs_adapter(bin_path, adapter):
    """Skips a test whose sluice was built without `adapter`: a choice of the build (a meson
    feature option), not a missing prerequisite, so it skips under CI=true too."""
    if not built_in(bin_path, adapter):
        pytest.skip("this sluice was built without %s (meson -D%s=enabled)" % (adapter, adapter))


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


def port_accepts(port):
    """True when something accepts TCP connections on 127.0.0.1:port."""
    s = socket.socket()
    s.settimeout(1)
    try:
        return s.connect_ex(("127.0.0.1", port)) == 0
    finally:
        s.close()


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


# ---- failure handling, destinations, counters (issue 3) ----------------------------------------

ISO_MS_RE = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"
UUID_RE = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
COUNTERS = ("PolledEventCount", "FilteredOutEventCount", "InvokedEventCount",
            "FailedInvokeEventCount", "DroppedEventCount",
            "OnFailureDestinationDeliveredEventCount")


def offsets_of(lines, start=0):
    """Byte offset of each line when `lines` are written one per line from offset `start`."""
    out, off = [], start
    for ln in lines:
        out.append(off)
        off += len(ln.encode() if isinstance(ln, str) else ln) + 1
    return out


def file_destination(directory):
    return {"OnFailure": {"Destination": "file://" + str(directory)}}


def json_log(text):
    """The JSON objects among the lines of a `--log-format json` log (other lines skipped)."""
    out = []
    for ln in text.splitlines():
        ln = ln.strip()
        if not ln.startswith("{"):
            continue
        try:
            out.append(json.loads(ln))
        except ValueError:
            pass
    return out


def exit_lines(proc):
    """The progress lines logged at exit (msg "exit") by the last run of `proc` (a Sluice
    started with --log-format json), one per mapping, in log order."""
    return [o for o in json_log(proc.log()) if o.get("msg") == "exit"]


def exit_counters(proc):
    """The single mapping's exit progress line as a dict; fails unless there is exactly one."""
    ex = exit_lines(proc)
    assert len(ex) == 1, "want one exit line (run with --log-format json), got %d\n%s" % (
        len(ex), proc.log_tail())
    return ex[0]


def warn_lines(proc, all_runs=False):
    """Log objects at warn level or above (json log format)."""
    return [o for o in json_log(proc.log(all_runs=all_runs))
            if str(o.get("level", "")).lower() in ("warn", "warning", "error", "fatal")]


def read_destination_dir(directory):
    """On-failure documents of a file:// destination: [(file name, document)], in file order,
    files sorted by name.  Torn (non-JSON) lines are skipped, as the sink's contract says."""
    out = []
    try:
        names = sorted(os.listdir(str(directory)))
    except OSError:
        return out
    for name in names:
        p = os.path.join(str(directory), name)
        if not os.path.isfile(p):
            continue
        with open(p, "rb") as f:
            for ln in f.read().split(b"\n"):
                if not ln.strip():
                    continue
                try:
                    out.append((name, json.loads(ln)))
                except ValueError:
                    pass
    return out


def destination_docs(directory):
    return [d for _, d in read_destination_dir(directory)]


def payload_records(doc):
    """[(partitionKey, sequenceNumber:int, line bytes)] of an invocation record's payload
    (the event object {"Records":[...]}, or that object as a JSON string)."""
    from fnserver import event_records
    p = doc.get("payload")
    if isinstance(p, str):
        try:
            p = json.loads(p) if p else None
        except ValueError:
            p = None
    return event_records(p)


def checkpoint_positions(state_dir):
    """{partition id: position as int} from the file checkpoint store in `state_dir`
    (format {"partitions": {id: {"pos": "offset"}}}); {} when nothing was written yet."""
    out = {}
    try:
        names = sorted(os.listdir(str(state_dir)))
    except OSError:
        return out
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(str(state_dir), name)) as f:
                parts = json.load(f).get("partitions", {})
        except (OSError, ValueError):
            continue  # being replaced right now; the caller polls again
        for pid, v in parts.items():
            out[pid] = int(v["pos"])
    return out


def iso_to_epoch(s):
    """'2026-11-27T00:07:04.613Z' -> float seconds."""
    import datetime
    dt = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.replace(tzinfo=datetime.timezone.utc).timestamp()


def run_until_idle(sluice, cfg, idle=1, timeout=60, args=(), **kw):
    """Start sluice with --until-idle=IDLE --log-format json and wait for exit 0."""
    s = sluice(cfg, args=["--until-idle=%s" % idle, "--log-format", "json"] + list(args), **kw)
    rc = s.wait(timeout)
    assert rc == 0, "sluice --until-idle exited %s\n%s" % (rc, s.log_tail())
    return s


_ABSENT = object()


def check_invocation_record(doc, path, recs, condition, invoke_count=None, status=None,
                            function_error=_ABSENT, payload=True, now=None):
    """Check one on-failure invocation record (esm.md §4.4, Kinesis-style) for the file
    partition `path` covering `recs` = [(offset, line)] (contiguous, in order).  Returns a
    list of problems (empty when the document is right)."""
    import re
    errs = []
    now = time.time() if now is None else now
    rq = doc.get("requestContext")
    if not isinstance(rq, dict):
        return ["no requestContext: %r" % doc]
    if not re.fullmatch(UUID_RE, str(rq.get("requestId"))):
        errs.append("requestContext.requestId %r is not a UUID" % rq.get("requestId"))
    if not (isinstance(rq.get("functionArn"), str) and rq.get("functionArn")):
        errs.append("requestContext.functionArn %r" % rq.get("functionArn"))
    if rq.get("condition") != condition:
        errs.append("condition %r, want %r" % (rq.get("condition"), condition))
    if invoke_count is not None and rq.get("approximateInvokeCount") != invoke_count:
        errs.append("approximateInvokeCount %r, want %r"
                    % (rq.get("approximateInvokeCount"), invoke_count))
    if doc.get("version") != "1.0":
        errs.append("version %r" % doc.get("version"))
    ts = doc.get("timestamp")
    if not (isinstance(ts, str) and re.fullmatch(ISO_MS_RE, ts)):
        errs.append("timestamp %r is not ISO 8601 with ms and Z" % ts)
    elif abs(iso_to_epoch(ts) - now) > 3600:
        errs.append("timestamp %r is far from now" % ts)
    if condition == "RecordAgeExceeded":
        if "responseContext" in doc:
            errs.append("RecordAgeExceeded with a responseContext: %r" % doc["responseContext"])
    elif condition == "MaximumPayloadSizeExceeded":
        if doc.get("responseContext") is not None:
            errs.append("MaximumPayloadSizeExceeded with a responseContext: %r"
                        % doc["responseContext"])
    else:
        rc = doc.get("responseContext")
        if not isinstance(rc, dict):
            errs.append("no responseContext: %r" % rc)
        else:
            if status is not None and rc.get("statusCode") != status:
                errs.append("responseContext.statusCode %r, want %r" % (rc.get("statusCode"),
                                                                      status))
            if rc.get("executedVersion") != "$LATEST":
                errs.append("responseContext.executedVersion %r" % rc.get("executedVersion"))
            if "functionError" not in rc:
                errs.append("responseContext has no functionError key")
            elif function_error is not _ABSENT and rc.get("functionError") != function_error:
                errs.append("responseContext.functionError %r, want %r"
                            % (rc.get("functionError"), function_error))
    kb = doc.get("KinesisBatchInfo")
    if not isinstance(kb, dict):
        errs.append("no KinesisBatchInfo: %r" % doc)
        return errs
    want = {"shardId": str(path), "startSequenceNumber": str(recs[0][0]),
            "endSequenceNumber": str(recs[-1][0]), "batchSize": len(recs),
            "streamArn": "file://" + str(path)}
    for k, v in want.items():
        if kb.get(k) != v:
            errs.append("KinesisBatchInfo.%s %r, want %r" % (k, kb.get(k), v))
    for k in ("approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord"):
        if not (isinstance(kb.get(k), str) and re.fullmatch(ISO_MS_RE, kb[k])):
            errs.append("KinesisBatchInfo.%s %r is not ISO 8601 with ms" % (k, kb.get(k)))
    if payload:
        got = payload_records(doc)
        exp = [(str(path), off, ln.encode() if isinstance(ln, str) else ln) for off, ln in recs]
        if got != exp:
            errs.append("payload records %r, want %r" % (got[:20], exp[:20]))
    return errs
