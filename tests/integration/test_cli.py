"""CLI: validate, run on a bad config, version/options/--help, SIGTERM/SIGINT drain."""

import contextlib
import json
import os
import re
import signal
import subprocess
import time

import pytest

from fnserver import Reply
from helpers import (base_config, file_mapping, http_fn, missing, run_cli, sluice_env,
                     wait_until, write_config, write_lines)


def bad_config(tmp_path, url):
    log = str(tmp_path / "in.log")
    return {
        "state_dir": str(tmp_path / "state"),
        "region": "us-east-1",
        "bogus_key": 1,
        "functions": {"hook": http_fn(url)},
        "mappings": [
            file_mapping(log, "hook", batch=0),
            file_mapping(log, "hook", start="SOMETIME"),
            {"EventSourceArn": "file://" + log, "BatchSize": 10},
            file_mapping(log, "no-such-function"),
            file_mapping("/x", "hook", EventSourceArn="s3://bucket/prefix"),
        ],
    }


EXPECTED_ERRORS = [
    # (JSON path, a token the line must also show: the bad value or the missing key)
    ("$.bogus_key", "bogus_key"),
    ("$.mappings[0].BatchSize", "0"),
    ("$.mappings[1].StartingPosition", "SOMETIME"),
    ("$.mappings[2]", "FunctionName"),
    ("$.mappings[3].FunctionName", "no-such-function"),
    ("$.mappings[4].EventSourceArn", "s3://bucket/prefix"),
]


def no_endpoint_env():
    return sluice_env({"AWS_ENDPOINT_URL": None, "AWS_ENDPOINT_URL_LAMBDA": None})


def test_validate_lists_every_error(tmp_path, fn, sluice_bin):
    path = write_config(tmp_path, bad_config(tmp_path, fn.url))
    r = run_cli(sluice_bin, "validate", path, env=no_endpoint_env())
    assert r.returncode == 2, (r.returncode, r.stderr)
    err_lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    missing = []
    for jpath, token in EXPECTED_ERRORS:
        hits = [ln for ln in err_lines if jpath in ln]
        if not hits:
            missing.append("%s: no line names it" % jpath)
            continue
        if not any(token in ln for ln in hits):
            missing.append("%s: line does not show %r: %s" % (jpath, token, hits))
        if not any(os.path.basename(path) in ln for ln in hits):
            missing.append("%s: line does not name the file: %s" % (jpath, hits))
    assert not missing, "\n".join(missing) + "\n--- stderr:\n" + r.stderr
    assert len(err_lines) >= len(EXPECTED_ERRORS)
    # BatchSize's line says what is allowed (a range)
    bs = [ln for ln in err_lines if "$.mappings[0].BatchSize" in ln][0]
    assert re.search(r"10000|1\b|range|between|allowed", bs), bs
    sp = [ln for ln in err_lines if "StartingPosition" in ln][0]
    assert "TRIM_HORIZON" in sp and "LATEST" in sp, sp


def test_validate_good_config(tmp_path, fn, sluice_bin):
    cfg = base_config(tmp_path, {"hook": http_fn(fn.url, headers={"X-Token": "${HOOK_TOKEN}"}),
                                 "audit": {"type": "exec", "command": ["/bin/cat"],
                                           "timeout": 30, "env": {"LEVEL": "info"}},
                                 "remote": {"type": "lambda", "endpoint": fn.url,
                                            "function_name": "function", "timeout": 900}},
                      [file_mapping(str(tmp_path) + "/*.ndjson", "hook", batch=100, window=1,
                                    max_line_bytes=1048576),
                       file_mapping(str(tmp_path) + "/*.ndjson", "audit", start="LATEST"),
                       file_mapping(str(tmp_path) + "/*.ndjson", "remote")],
                      stats_interval=10, drain_timeout=30)
    path = write_config(tmp_path, cfg)
    r = run_cli(sluice_bin, "validate", path, env=sluice_env({"HOOK_TOKEN": "t"}))
    assert r.returncode == 0, r.stderr
    assert fn.count() == 0


def test_validate_unknown_function_ok_with_endpoint_env(tmp_path, sluice_bin):
    cfg = base_config(tmp_path, {}, [file_mapping(str(tmp_path / "a.log"), "elsewhere")])
    path = write_config(tmp_path, cfg)
    r = run_cli(sluice_bin, "validate", path,
                env=sluice_env({"AWS_ENDPOINT_URL_LAMBDA": "http://127.0.0.1:9"}))
    assert r.returncode == 0, r.stderr
    r = run_cli(sluice_bin, "validate", path, env=no_endpoint_env())
    assert r.returncode == 2 and "$.mappings[0].FunctionName" in r.stderr, r.stderr


@pytest.mark.parametrize("text,what", [
    ("{not json", "syntax"),
    ("[]", "not an object"),
    ("", "empty"),
])
def test_validate_broken_json(tmp_path, sluice_bin, text, what):
    path = write_config(tmp_path, text, name="broken.json")
    r = run_cli(sluice_bin, "validate", path)
    assert r.returncode == 2, (what, r.returncode, r.stderr)
    assert "broken.json" in r.stderr, r.stderr


FRAMING_HEADERS = ["Content-Length", "transfer-encoding", "CONNECTION", "Host", "Expect"]


def test_validate_refuses_framing_headers(tmp_path, fn, sluice_bin):
    """Headers that frame the request are refused, each with its JSON path, all of them (not
    only the first); an ordinary header beside them is fine."""
    headers = {"X-Ok": "1"}
    headers.update({h: "5" for h in FRAMING_HEADERS})
    cfg = base_config(tmp_path, {"hook": http_fn(fn.url, headers=headers)},
                      [file_mapping(str(tmp_path / "in.log"), "hook")])
    path = write_config(tmp_path, cfg)
    r = run_cli(sluice_bin, "validate", path, env=no_endpoint_env())
    assert r.returncode == 2, (r.returncode, r.stderr)
    for h in FRAMING_HEADERS:
        hits = [ln for ln in r.stderr.splitlines() if "$.functions.hook.headers.%s:" % h in ln]
        assert len(hits) == 1, (h, r.stderr)
        assert "allowed" in hits[0] and "framing" in hits[0], hits[0]
    assert "X-Ok" not in r.stderr, r.stderr


def test_validate_url_ports_hosts_schemes(tmp_path, sluice_bin):
    """Every URL option is checked (function url and endpoint, destination), each error shows
    the value, redacted: a port out of range no longer passes validate to be retried forever."""
    log = str(tmp_path / "in.log")
    m0 = file_mapping(log, "hook")
    m0["DestinationConfig"] = {"OnFailure": {"Destination": "http://127.0.0.1:70000/d"}}
    m1 = file_mapping(log, "remote")
    m1["DestinationConfig"] = {"OnFailure": {"Destination": "https://carol:hunter2@/d?sig=tok"}}
    cfg = base_config(tmp_path, {"hook": http_fn("http://127.0.0.1:99999/"),
                                 "remote": {"type": "lambda", "endpoint": "ftp://127.0.0.1:1",
                                            "function_name": "function"},
                                 "other": http_fn("http://alice:hunter2@127.0.0.1:0/?t=tok")},
                      [m0, m1])
    path = write_config(tmp_path, cfg)
    r = run_cli(sluice_bin, "validate", path, env=no_endpoint_env())
    assert r.returncode == 2, (r.returncode, r.stderr)
    want = [
        ("$.functions.hook.url:", '"http://127.0.0.1:99999/"', "port"),
        ("$.functions.remote.endpoint:", '"ftp://127.0.0.1:1"', "scheme"),
        ("$.functions.other.url:", '"http://***@127.0.0.1:0/?***"', "port"),
        ("$.mappings[0].DestinationConfig.OnFailure.Destination:", '"http://127.0.0.1:70000/d"',
         "port"),
        ("$.mappings[1].DestinationConfig.OnFailure.Destination:", '"https://***@/d?***"',
         "host"),
    ]
    lines = r.stderr.splitlines()
    for jpath, value, what in want:
        hits = [ln for ln in lines if jpath in ln]
        assert hits and value in hits[0] and what in hits[0] and "allowed" in hits[0], \
            (jpath, value, r.stderr)
    assert "hunter2" not in r.stderr and "tok" not in r.stderr, r.stderr


def test_validate_refuses_nul_in_strings(tmp_path, fn, sluice_bin):
    """cJSON cuts a string at \\u0000: refuse it, naming the string's JSON path."""
    log = str(tmp_path / "in.log")
    text = json.dumps(base_config(tmp_path, {"hook": http_fn(fn.url, headers={"X-T": "aXb"})},
                                  [file_mapping(log, "hook")]))
    text = text.replace("aXb", "a\\u0000b")
    path = write_config(tmp_path, text)
    r = run_cli(sluice_bin, "validate", path, env=no_endpoint_env())
    assert r.returncode == 2, (r.returncode, r.stderr)
    hits = [ln for ln in r.stderr.splitlines() if "$.functions.hook.headers.X-T:" in ln]
    assert hits and "\\u0000" in hits[0], r.stderr


def test_validate_relative_file_arn_names_the_key(tmp_path, fn, sluice_bin):
    cfg = base_config(tmp_path, {"hook": http_fn(fn.url)},
                      [file_mapping("relative/*.log", "hook")])
    path = write_config(tmp_path, cfg)
    r = run_cli(sluice_bin, "validate", path, env=no_endpoint_env())
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "$.mappings[0].EventSourceArn: \"file://relative/*.log\"" in r.stderr, r.stderr


def test_validate_missing_file(tmp_path, sluice_bin):
    r = run_cli(sluice_bin, "validate", str(tmp_path / "nope.json"))
    assert r.returncode == 2, r.stderr
    assert "nope.json" in r.stderr


def test_run_bad_config_never_starts(tmp_path, fn, sluice_bin):
    log = tmp_path / "in.log"
    write_lines(log, ["must not be delivered"])
    cfg = base_config(tmp_path, {"hook": http_fn(fn.url)},
                      [file_mapping(log, "hook"), file_mapping(log, "hook", batch=0)])
    path = write_config(tmp_path, cfg)
    r = run_cli(sluice_bin, "run", "--until-idle=1", path, timeout=20)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "$.mappings[1].BatchSize" in r.stderr
    assert fn.count() == 0
    state = tmp_path / "state"
    assert not state.exists() or not os.listdir(state), "a bad config wrote state"


@contextlib.contextmanager
def unwritable_dir(path):
    """Makes the existing directory `path` one this process's children cannot create files in:
    mode 0555 for a normal user; as root (which ignores modes) the immutable attribute."""
    if os.geteuid() != 0:
        os.chmod(path, 0o555)
        try:
            yield
        finally:
            os.chmod(path, 0o755)
        return
    r = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        missing("chattr +i on %s (%s)" % (path, r.stderr.strip()))
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_run_unwritable_state_dir_exits_before_reading(tmp_path, fn, sluice):
    """An existing state_dir sluice cannot write in: exit 1 at start, naming the directory and
    the reason, before a record is read (never deliver what could not be checkpointed)."""
    state = tmp_path / "state"
    state.mkdir()
    log = tmp_path / "in.log"
    write_lines(log, ["must not be delivered"])
    cfg = base_config(tmp_path, {"hook": http_fn(fn.url)}, [file_mapping(log, "hook")],
                      state_dir=str(state))
    with unwritable_dir(state):
        s = sluice(cfg, args=["--until-idle=1"])
        rc = s.wait(15)
    assert rc == 1, (rc, s.log_tail())
    assert fn.count() == 0, "delivered before finding the state directory unwritable"
    text = s.log()
    line = [ln for ln in text.splitlines() if str(state) in ln and "error" in ln]
    assert line, text
    assert re.search(r"[Pp]ermission denied|[Oo]peration not permitted|[Rr]ead-only", line[0]), \
        line[0]
    assert not os.listdir(state)


def test_version(sluice_bin):
    r = run_cli(sluice_bin, "version")
    assert r.returncode == 0, r.stderr
    assert "sluice" in r.stdout and re.search(r"\d+\.\d+", r.stdout), r.stdout
    # Then the adapters built in (meson feature options): sources, then destinations.
    lines = r.stdout.splitlines()
    assert lines[1].startswith("sources: file"), r.stdout
    assert lines[2].startswith("destinations: file"), r.stdout
    assert set(["sqs", "http"]) <= set(lines[2].split()[1:]), r.stdout


def test_options(sluice_bin):
    r = run_cli(sluice_bin, "options")
    assert r.returncode == 0, r.stderr
    for name in ("BatchSize", "MaximumBatchingWindowInSeconds", "StartingPosition",
                 "EventSourceArn", "FunctionName", "max_line_bytes", "state_dir",
                 "drain_timeout", "stats_interval", "region", "timeout"):
        assert name in r.stdout, "options does not list %s" % name


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["validate", "--help"],
                                  ["options", "--help"], ["version", "--help"]])
def test_help(sluice_bin, argv):
    r = run_cli(sluice_bin, *argv)
    assert r.returncode == 0, (argv, r.stderr)
    assert re.search(r"usage", r.stdout, re.I), (argv, r.stdout)


def test_help_lists_commands(sluice_bin):
    out = run_cli(sluice_bin, "--help").stdout
    for c in ("run", "validate", "options", "version"):
        assert c in out


@pytest.mark.parametrize("argv", [["frobnicate"], ["run"], ["validate"], ["run", "--bogus", "x"],
                                  ["run", "--log-level", "loud", "x.json"], []])
def test_usage_errors_exit_2(sluice_bin, argv):
    r = run_cli(sluice_bin, *argv)
    assert r.returncode == 2, (argv, r.returncode, r.stdout, r.stderr)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_drains_and_checkpoints(tmp_path, fn, sluice, sig):
    log = tmp_path / "in.log"
    want = ["s%03d" % i for i in range(200)]
    write_lines(log, want)
    cfg = base_config(tmp_path, {"hook": http_fn(fn.url)}, [file_mapping(log, "hook", batch=20)])
    s = sluice(cfg)
    wait_until(lambda: len(fn.lines()) >= 200, 15, "200 delivered", proc=s)
    s.signal(sig)
    assert s.wait(30) == 0, s.log_tail()
    n = fn.count()
    s2 = sluice(cfg, args=["--until-idle=1"])
    assert s2.wait(30) == 0, s2.log_tail()
    assert fn.count() == n, "restart re-delivered: %s" % fn.requests()[n:]
    assert fn.lines() == want


def test_sigterm_waits_for_inflight(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    write_lines(log, ["a", "b"])
    fn.push(Reply(200, delay=2.0))
    cfg = base_config(tmp_path, {"hook": http_fn(fn.url, timeout=10)},
                      [file_mapping(log, "hook")], drain_timeout=10)
    s = sluice(cfg)
    wait_until(lambda: fn.count() >= 1, 10, "invocation in flight", proc=s)
    t0 = time.monotonic()
    s.signal(signal.SIGTERM)
    assert s.wait(30) == 0, s.log_tail()
    assert fn.requests()[0].answered, "exited before the in-flight invocation returned"
    assert time.monotonic() - t0 < 9
    s2 = sluice(cfg, args=["--until-idle=1"])
    assert s2.wait(30) == 0, s2.log_tail()
    assert fn.count() == 1, "the drained batch was not checkpointed"


def test_log_format_json(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    write_lines(log, ["j"])
    cfg = base_config(tmp_path, {"hook": http_fn(fn.url)}, [file_mapping(log, "hook")])
    s = sluice(cfg, args=["--until-idle=1", "--log-format", "json", "--log-level", "debug"])
    assert s.wait(30) == 0, s.log_tail()
    lines = [ln for ln in s.log().splitlines() if ln.strip()]
    assert lines, "no log output at debug level"
    for ln in lines:
        json.loads(ln)  # every line is one JSON object


def test_human_log_escapes_terminal_sequences(tmp_path, sluice):
    """A function's stderr and a file name holding ESC [31m: the human log writes the escape
    as text (\\x1b), so the log cannot drive the reader's terminal or split a line."""
    (tmp_path / "in").mkdir()
    log = tmp_path / "in" / "a\x1b[31mred.log"
    write_lines(log, ["one"])
    script = "printf 'MARK\\033[31mRED\\033[0m\\n' >&2; cat >/dev/null; echo '{}'"
    cfg = base_config(tmp_path, {"fx": {"type": "exec", "command": ["/bin/sh", "-c", script],
                                        "timeout": 30}},
                      [file_mapping(str(tmp_path / "in" / "*.log"), "fx")])
    s = sluice(cfg, args=["--log-format", "human"])
    wait_until(lambda: "MARK" in s.log(), 15, "the function's stderr in the log", proc=s)
    assert s.stop() == 0
    text = s.log()
    assert "\x1b" not in text, [ln for ln in text.splitlines() if "\x1b" in ln]
    assert "MARK\\x1b[31mRED\\x1b[0m" in text, text
    assert "a\\x1b[31mred.log" in text, text
