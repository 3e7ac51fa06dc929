"""File source -> exec function: delivery, retries, timeouts with process-group kill,
stderr forwarding, minimal environment."""

import json
import os
import textwrap

from helpers import (PYTHON, base_config, file_mapping, live_pids_in_group, proc_gone,
                     wait_until, write_lines)

# The handler: appends the decoded lines of each event to OUT; behaviour per invocation is
# chosen by MODE (from the function's `env`) and a counter file.
HANDLER = textwrap.dedent(r'''
    import base64, json, os, subprocess, sys, time
    d = os.path.dirname(os.path.abspath(__file__))
    ev = json.load(sys.stdin)
    cnt_path = os.path.join(d, "count")
    n = int(open(cnt_path).read()) if os.path.exists(cnt_path) else 0
    with open(cnt_path + ".tmp", "w") as f:
        f.write(str(n + 1))
    os.rename(cnt_path + ".tmp", cnt_path)
    mode = os.environ.get("MODE", "ok")
    fail_first = int(os.environ.get("FAIL_FIRST", "0"))
    if mode == "env":
        with open(os.path.join(d, "env.json"), "w") as f:
            json.dump(dict(os.environ), f)
    if mode == "stderr":
        sys.stderr.write("HANDLER-STDERR-MARKER-%d\n" % n)
        sys.stderr.flush()
    if mode == "fail" and n < fail_first:
        sys.stderr.write("failing on purpose, attempt %d\n" % n)
        sys.exit(3)
    if mode == "crash" and n < fail_first:
        os.kill(os.getpid(), 9)
    if mode == "hang" and n < fail_first:
        child = subprocess.Popen(["sleep", "1000"])
        with open(os.path.join(d, "pids.%d" % n), "w") as f:
            f.write("%d %d %d\n" % (os.getpid(), os.getpgid(0), child.pid))
        time.sleep(1000)
    with open(os.path.join(d, "out"), "a") as f:
        for r in ev["Records"]:
            f.write(base64.b64decode(r["kinesis"]["data"]).decode() + "\n")
    print(json.dumps({"ok": True, "n": len(ev["Records"])}))
''')


def setup_exec(tmp_path, mode="ok", fail_first=0, timeout=10, batch=10, extra_env=None,
               lines=("e0", "e1", "e2")):
    hd = tmp_path / "handler"
    hd.mkdir()
    (hd / "handler.py").write_text(HANDLER)
    log = tmp_path / "in.log"
    write_lines(log, list(lines))
    env = {"MODE": mode, "FAIL_FIRST": str(fail_first)}
    env.update(extra_env or {})
    cfg = base_config(tmp_path, {"audit": {"type": "exec",
                                           "command": [PYTHON, str(hd / "handler.py")],
                                           "timeout": timeout, "env": env}},
                      [file_mapping(log, "audit", batch=batch)])
    return cfg, hd, log


def out_lines(hd):
    try:
        return (hd / "out").read_text().splitlines()
    except OSError:
        return []


def invocations(hd):
    try:
        return int((hd / "count").read_text())
    except (OSError, ValueError):
        return 0


def test_exec_delivers(tmp_path, sluice):
    want = ["e%03d" % i for i in range(45)]
    cfg, hd, log = setup_exec(tmp_path, lines=want)
    s = sluice(cfg, args=["--until-idle=1"])
    assert s.wait(60) == 0, s.log_tail()
    assert out_lines(hd) == want
    assert invocations(hd) == 5  # 45 lines at BatchSize 10


def test_exec_nonzero_exit_retried(tmp_path, sluice):
    cfg, hd, log = setup_exec(tmp_path, mode="fail", fail_first=3)
    s = sluice(cfg)
    wait_until(lambda: out_lines(hd) == ["e0", "e1", "e2"], 20, "delivery after 3 failures",
               proc=s)
    assert invocations(hd) == 4


def test_exec_killed_by_signal_retried(tmp_path, sluice):
    cfg, hd, log = setup_exec(tmp_path, mode="crash", fail_first=2)
    s = sluice(cfg)
    wait_until(lambda: out_lines(hd) == ["e0", "e1", "e2"], 20, "delivery after 2 crashes",
               proc=s)
    assert invocations(hd) == 3


def test_exec_timeout_kills_process_group(tmp_path, sluice):
    cfg, hd, log = setup_exec(tmp_path, mode="hang", fail_first=1, timeout=1)
    s = sluice(cfg)
    wait_until(lambda: (hd / "pids.0").exists() and (hd / "pids.0").read_text().endswith("\n"),
               10, "hanging handler started", proc=s)
    pid, pgid, child = map(int, (hd / "pids.0").read_text().split())
    wait_until(lambda: out_lines(hd) == ["e0", "e1", "e2"], 20, "delivery after the timeout",
               proc=s)
    wait_until(lambda: proc_gone(pid) and proc_gone(child), 5,
               "handler %d and its child sleep %d killed" % (pid, child))
    assert pgid != os.getpgid(s.pid), "the handler must run in its own process group"
    assert live_pids_in_group(pgid) == [], "process group %d still alive" % pgid
    assert invocations(hd) == 2


def test_exec_stderr_in_log(tmp_path, sluice):
    cfg, hd, log = setup_exec(tmp_path, mode="stderr")
    s = sluice(cfg, args=["--until-idle=1"])
    assert s.wait(30) == 0, s.log_tail()
    hits = [ln for ln in s.log().splitlines() if "HANDLER-STDERR-MARKER-0" in ln]
    assert hits, "handler stderr not in sluice's log\n" + s.log_tail()
    assert "audit" in hits[0], "stderr line not tagged with the function name: %r" % hits[0]


def test_exec_minimal_env(tmp_path, sluice):
    cfg, hd, log = setup_exec(tmp_path, mode="env", extra_env={"LEVEL": "info"})
    cfg["region"] = "ap-south-2"
    s = sluice(cfg, args=["--until-idle=1"],
               env_extra={"SLUICE_TEST_LEAK": "leak", "AWS_SECRET_ACCESS_KEY": "nope",
                          "LANG": "C.UTF-8", "HOME": "/root"})
    assert s.wait(30) == 0, s.log_tail()
    env = json.loads((hd / "env.json").read_text())
    allowed = {"PATH", "HOME", "LANG", "AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION",
               "MODE", "FAIL_FIRST", "LEVEL",
               "LC_CTYPE"}  # python itself sets LC_CTYPE when coercing a C locale
    assert set(env) <= allowed, "unexpected variables: %s" % sorted(set(env) - allowed)
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "audit"
    assert env["AWS_REGION"] == "ap-south-2"
    assert env["LEVEL"] == "info"
    assert "PATH" in env
    assert "SLUICE_TEST_LEAK" not in env and "AWS_SECRET_ACCESS_KEY" not in env


def test_exec_response_on_stdout_large_event(tmp_path, sluice):
    """Bigger events than a pipe buffer (64 KiB) go through stdin without deadlock."""
    want = ["%05d " % i + "y" * 1000 for i in range(300)]
    cfg, hd, log = setup_exec(tmp_path, lines=want, batch=300)
    s = sluice(cfg, args=["--until-idle=1"])
    assert s.wait(60) == 0, s.log_tail()
    assert out_lines(hd) == want
