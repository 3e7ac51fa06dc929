"""Function-side faults (issue 8): a function that runs past its timeout is a counted function
error (exec and http); sluice running out of descriptors is not the function's fault and
drops nothing; exec children inherit none of sluice's descriptors; a bad `cwd` is refused by
validate; NUL and control bytes of a function's stderr are escaped in the log."""

import json
import os
import resource
import socket
import textwrap

from fnserver import Reply, event_records
from helpers import (PYTHON, base_config, check_invocation_record, destination_docs,
                     exit_counters, file_destination, file_mapping, http_fn, json_log,
                     needs_adapter, run_cli, run_until_idle, wait_until, write_config,
                     write_lines)

FN = "/fn"


def counting_sleeper(d, seconds):
    """An exec command that notes each invocation in d/count, then sleeps."""
    return ["/bin/sh", "-c", 'echo x >> "%s/count"; exec sleep %d' % (d, seconds)]


def count_lines(path):
    try:
        with open(path) as f:
            return len(f.read().splitlines())
    except OSError:
        return 0


# ---- item 9: a timeout is a function error and counts -----------------------------------------


def test_exec_timeout_counts_toward_retries(tmp_path, sluice):
    log = tmp_path / "in.log"
    write_lines(log, ["slow-1", "slow-2"])
    m = file_mapping(log, "sleepy", batch=10, MaximumRetryAttempts=1,
                     DestinationConfig=file_destination(tmp_path / "dlq"))
    cfg = base_config(tmp_path, {"sleepy": {"type": "exec", "timeout": 1,
                                            "command": counting_sleeper(tmp_path, 30)}}, [m])
    s = run_until_idle(sluice, cfg, timeout=60)
    assert count_lines(tmp_path / "count") == 2, "MaximumRetryAttempts 1 allows 2 invocations"
    docs = destination_docs(tmp_path / "dlq")
    assert len(docs) == 1, docs
    errs = check_invocation_record(docs[0], log, [(0, "slow-1"), (7, "slow-2")],
                                   "RetryAttemptsExhausted", invoke_count=2,
                                   function_error="Unhandled")
    assert not errs, errs
    c = exit_counters(s)
    assert c.get("OnFailureDestinationDeliveredEventCount") == 2, c
    assert any("timeout" in str(o.get("msg")) and "Unhandled" in str(o.get("msg"))
               for o in json_log(s.log())), "the log does not say the function timed out"


def test_http_timeout_counts_toward_retries(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    write_lines(log, ["late-1"])
    fn.set_default(Reply(200, delay=4.0))  # answers, but after the function's 1 s timeout
    m = file_mapping(log, "hook", batch=10, MaximumRetryAttempts=1,
                     DestinationConfig=file_destination(tmp_path / "dlq"))
    cfg = base_config(tmp_path, {"hook": http_fn(fn.url + FN, timeout=1)}, [m])
    s = run_until_idle(sluice, cfg, timeout=60)
    assert fn.count() == 2, fn.requests()
    docs = destination_docs(tmp_path / "dlq")
    assert len(docs) == 1, docs
    errs = check_invocation_record(docs[0], log, [(0, "late-1")], "RetryAttemptsExhausted",
                                   invoke_count=2, function_error="Unhandled")
    assert not errs, errs
    c = exit_counters(s)
    assert c.get("OnFailureDestinationDeliveredEventCount") == 1, c


# ---- item 2: descriptor exhaustion drops nothing -----------------------------------------------

WRITER = ["/bin/sh", "-c", 'f=$(mktemp "$OUT_DIR/ev.XXXXXX") && cat > "$f"']


def delivered_lines(out_dir):
    got = []
    for name in os.listdir(str(out_dir)):
        try:
            with open(os.path.join(str(out_dir), name), "rb") as f:
                ev = json.loads(f.read() or b"null")
        except (OSError, ValueError):
            continue  # being written
        got.extend(ln.decode() for _, _, ln in event_records(ev))
    return got


def test_descriptor_exhaustion_drops_no_record(tmp_path, sluice):
    """Many files (the file source holds a descriptor per file) under a low RLIMIT_NOFILE: the
    spawns fail with EMFILE for a while. With MaximumRetryAttempts 0 that must not drop a
    record: once descriptors are back (the limit is raised), every record arrives, once. A file
    source that holds fewer descriptors may never hit EMFILE; the test holds either way."""
    n = 120
    src = tmp_path / "in"
    out = tmp_path / "out"
    src.mkdir()
    out.mkdir()
    want = []
    for i in range(n):
        write_lines(src / ("f%03d.log" % i), ["rec-%03d" % i])
        want.append("rec-%03d" % i)
    m = file_mapping(str(src / "*.log"), "w", batch=10, MaximumRetryAttempts=0)
    cfg = base_config(tmp_path, {"w": {"type": "exec", "command": WRITER,
                                       "env": {"OUT_DIR": str(out)}}}, [m])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = 48  # a little above what sluice needs without the files (about 16)

    def lower():
        resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))

    s = sluice(cfg, args=["--log-format", "json"], start=False)
    start_with_preexec(s, lower)
    wait_until(lambda: "too many open files" in s.log() or len(delivered_lines(out)) >= n, 30,
               "descriptor exhaustion (or everything delivered)", proc=s)
    pressure = "too many open files" in s.log()
    resource.prlimit(s.pid, resource.RLIMIT_NOFILE, (max(soft, 4096), hard))
    wait_until(lambda: len(delivered_lines(out)) >= n, 60, "every record after the pressure",
               proc=s)
    assert s.stop() == 0, s.log_tail()
    got = delivered_lines(out)
    assert sorted(got) == want, "lost %s, repeated %s" % (
        sorted(set(want) - set(got))[:10], sorted(x for x in set(got) if got.count(x) > 1)[:10])
    c = exit_counters(s)
    assert c.get("DroppedEventCount") == 0, c
    if pressure:
        assert "EMFILE" in s.log() and "retrying" in s.log(), s.log_tail()


def start_with_preexec(s, preexec):
    """Sluice.start with a preexec_fn (the helper has no hook for it)."""
    import subprocess
    s.runs += 1
    s.stderr_path = os.path.join(s.tmp, "%s.%d.stderr" % (s.name, s.runs))
    s.stdout_path = os.path.join(s.tmp, "%s.%d.stdout" % (s.name, s.runs))
    argv = [s.binary, "run"] + list(s.args) + [s.config]
    with open(s.stderr_path, "wb") as err, open(s.stdout_path, "wb") as out:
        s.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                  env=s.env, cwd=s.cwd or s.tmp, preexec_fn=preexec)


# ---- item 4: exec children inherit no descriptor of sluice's -----------------------------------

LIST_FDS = textwrap.dedent(r'''
    import json, os, sys
    sys.stdin.read()
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[name] = os.readlink("/proc/self/fd/" + name)
        except OSError:
            pass  # the descriptor listdir used, closed by now
    fds = {k: v for k, v in fds.items() if not v.startswith("/proc/")}
    out = os.environ["OUT"]
    with open(out + ".tmp", "w") as f:
        json.dump(fds, f)
    os.rename(out + ".tmp", out)
''')


def closed_port():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def test_exec_child_inherits_no_descriptor(tmp_path, fn, sluice, sluice_bin):
    """An http function (a kept-alive connection to fnserver), a Kafka mapping (librdkafka's
    broker threads and their wakeup pipes; its broker is down, which is enough) and an exec
    function in three mappings: the exec child, run after the http one delivered and the Kafka
    client started, has exactly 0, 1 and 2."""
    needs_adapter(sluice_bin, "kafka")
    (tmp_path / "listfds.py").write_text(LIST_FDS)
    hlog = tmp_path / "h.log"
    elog = tmp_path / "e.log"
    write_lines(hlog, ["to-http"])
    elog.write_text("")
    listing = tmp_path / "fds.json"
    kport = closed_port()
    kafka = {"SelfManagedEventSource": {
                 "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:%d" % kport]}},
             "Topics": ["fds"], "FunctionName": "lister", "StartingPosition": "TRIM_HORIZON",
             "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "fds"}}
    cfg = base_config(tmp_path, {
        "hook": http_fn(fn.url + FN),
        "lister": {"type": "exec", "command": [PYTHON, str(tmp_path / "listfds.py")],
                   "env": {"OUT": str(listing)}},
    }, [file_mapping(hlog, "hook"), file_mapping(elog, "lister"), kafka])
    s = sluice(cfg)
    wait_until(lambda: fn.lines() == ["to-http"], 20, "the http delivery", proc=s)
    wait_until(lambda: "127.0.0.1:%d" % kport in s.log() and "refused" in s.log(), 20,
               "the Kafka client's first connection attempt", proc=s)
    write_lines(elog, ["to-exec"])
    wait_until(lambda: listing.exists(), 20, "the exec function's listing", proc=s)
    fds = json.loads(listing.read_text())
    assert sorted(fds, key=int) == ["0", "1", "2"], \
        "the exec child inherited descriptors: %s" % json.dumps(fds, indent=1)
    assert all(v.startswith("pipe:") or v.startswith("socket:") for v in fds.values()), fds


# ---- item 10: cwd checked at validate; stderr bytes escaped ------------------------------------


def test_validate_rejects_missing_cwd(tmp_path, sluice_bin):
    log = tmp_path / "in.log"
    write_lines(log, ["x"])
    missing = str(tmp_path / "no-such-dir")
    cfg = base_config(tmp_path, {"w": {"type": "exec", "command": ["cat"], "cwd": missing}},
                      [file_mapping(log, "w")])
    path = write_config(tmp_path, cfg)
    r = run_cli(sluice_bin, "validate", path)
    assert r.returncode != 0, r
    want = "%s: $.functions.w.cwd: \"%s\"" % (path, missing)
    assert want in r.stderr, r.stderr
    assert "allowed: an existing directory" in r.stderr, r.stderr
    (tmp_path / "afile").write_text("")
    cfg["functions"]["w"]["cwd"] = str(tmp_path / "afile")
    r = run_cli(sluice_bin, "validate", write_config(tmp_path, cfg))
    assert r.returncode != 0 and "is not a directory" in r.stderr, r.stderr


def test_exec_stderr_nul_and_escapes_kept(tmp_path, sluice):
    """A NUL in a function's stderr used to cut the rest of the log line."""
    log = tmp_path / "in.log"
    write_lines(log, ["x"])
    cmd = ["/bin/sh", "-c", r"cat >/dev/null; printf 'head\000tail \033[31mred\n' >&2"]
    cfg = base_config(tmp_path, {"w": {"type": "exec", "command": cmd}},
                      [file_mapping(log, "w")])
    s = run_until_idle(sluice, cfg)  # --log-format json
    lines = [o.get("msg", "") for o in json_log(s.log()) if "head" in str(o.get("msg"))]
    assert lines == ["head\x00tail \x1b[31mred"], lines  # the whole line, escaped in JSON
    raw = open(s.stderr_path, "rb").read()
    assert b"\x1b" not in raw and b"\x00" not in raw

    cfg["state_dir"] = str(tmp_path / "state-human")
    s = sluice(cfg, args=["--until-idle=1"])  # the human format
    assert s.wait(30) == 0, s.log_tail()
    hits = [ln for ln in s.log().splitlines() if "head" in ln]
    assert len(hits) == 1 and hits[0].endswith("[exec:w] head\\x00tail \\x1b[31mred"), hits
