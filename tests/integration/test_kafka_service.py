"""Smoke test of the Kafka test service: tests/services/start.sh with SERVICES=kafka in a private
RUN_DIR and ports starts librdkafka's mock cluster (servers/kafka-mock.c), the control FIFO
creates topics and takes a broker down and up, records written by kafka-tools/kafka-produce
come back byte for byte through kcat, and stop.sh leaves nothing running.

Needs kcat, cc, pkg-config, librdkafka-dev and libcjson-dev: skipped without them, failed under
CI=true."""

import os
import random
import shutil
import socket
import subprocess
import sys
import time

import pytest

import helpers

SERVICES_DIR = os.path.join(helpers.REPO, "tests", "services")
sys.path.insert(0, os.path.join(SERVICES_DIR, "kafka-tools"))
import kafka_tools as kt  # noqa: E402

BROKERS = 3


def _prereqs():
    for cmd in ("kcat", "cc", "pkg-config"):
        if not shutil.which(cmd):
            helpers.missing("%s on PATH (tests/install-deps.sh)" % cmd)
    r = subprocess.run(["pkg-config", "--exists", "rdkafka", "libcjson"])
    if r.returncode != 0:
        helpers.missing("pkg-config rdkafka libcjson (librdkafka-dev, libcjson-dev)")


def _free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _free_base():
    for _ in range(200):
        base = random.randrange(20000, 60000)
        if all(_free(base + i) for i in range(BROKERS)):
            return base
    pytest.fail("no %d consecutive free ports found" % BROKERS)


@pytest.fixture
def kafka(tmp_path):
    """tests/services/start.sh with SERVICES=kafka in tmp_path; yields a dict with the
    services.env settings, the ports, the env used and the run dir; stop.sh at teardown."""
    _prereqs()
    run_dir = tmp_path / "run"
    base = _free_base()
    env = dict(os.environ, RUN_DIR=str(run_dir), SERVICES="kafka",
               KAFKA_BASE_PORT=str(base), KAFKA_TOPICS="pre:3 wide:12", START_TIMEOUT_S="30")
    for k in ("KAFKA_BOOTSTRAP", "KAFKA_CTL", "KAFKA_LOG", "KAFKA_PRODUCE", "KAFKA_BUILD_DIR"):
        env.pop(k, None)
    t0 = time.monotonic()
    r = subprocess.run([os.path.join(SERVICES_DIR, "start.sh")], env=env, capture_output=True,
                       text=True, timeout=120)
    started_s = time.monotonic() - t0
    stop = [os.path.join(SERVICES_DIR, "stop.sh")]
    try:
        assert r.returncode == 0, "start.sh failed:\n%s%s" % (r.stdout, r.stderr)
        settings = {}
        with open(run_dir / "services.env") as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                settings[k] = v
        with open(run_dir / "services.pids") as f:
            pids = [ln.split() for ln in f if ln.strip()]
        yield {"env": env, "run_dir": run_dir, "base": base, "settings": settings,
               "pids": pids, "start_log": r.stderr, "started_s": started_s}
    finally:
        subprocess.run(stop, env=env, timeout=60)


def test_kafka_service_round_trip(kafka, monkeypatch):
    s, base = kafka["settings"], kafka["base"]
    print("\nstart.sh (build + start + ready): %.2f s; %s"
          % (kafka["started_s"], kafka["start_log"].strip().replace("\n", " | ")))
    boot = ",".join("127.0.0.1:%d" % (base + i) for i in range(BROKERS))
    assert s["KAFKA_BOOTSTRAP"] == boot
    assert s["KAFKA_CTL"] == str(kafka["run_dir"] / "kafka.ctl")
    assert os.path.exists(s["KAFKA_CTL"]) and os.access(s["KAFKA_PRODUCE"], os.X_OK)
    assert [p[0] for p in kafka["pids"]] == ["kafka"]
    assert kafka["pids"][0][2] == "kafka-mock"
    for k in ("KAFKA_CTL", "KAFKA_LOG", "KAFKA_PRODUCE"):
        monkeypatch.setenv(k, s[k])
    with open(s["KAFKA_LOG"]) as f:
        log = f.read()
    assert "BOOTSTRAP=" + boot in log

    # topics from KAFKA_TOPICS exist with their partition counts
    md = subprocess.run([s["KAFKA_PRODUCE"], "-M", "-b", boot], capture_output=True,
                        text=True, timeout=30)
    assert md.returncode == 0, md.stderr
    assert "brokers 3" in md.stdout.splitlines()
    assert "topic pre 3" in md.stdout.splitlines() and "topic wide 12" in md.stdout.splitlines()

    # a topic through the control FIFO; a bad command is answered with ERR
    assert "ctl: ok topic smoke 4" in kt.ctl("topic smoke 4")
    with pytest.raises(kt.KafkaToolError, match="ctl: ERR"):
        kt.ctl("frobnicate 7")

    # exact records: non-ASCII and NUL header bytes, null keys, tombstones, empty key/value
    recs = [
        {"partition": 0, "key": b"k1", "value": b'{"a":1}',
         "headers": [("h\u00e9", b"\xff\x00\xfe\x80"), ("plain", b"text"), ("nul", None),
                     ("empty", b"")]},
        {"partition": 0, "key": None, "value": b"no key"},
        {"partition": 0, "key": b"gone", "value": None},
        {"partition": 1, "key": b"", "value": b"", "timestamp": 1700000000123},
        {"partition": 2, "key": b"\x00\x01\xff", "value": bytes(range(256))},
        {"partition": 3, "key": "caf\u00e9", "value": "\u00fcber \u2603"},
    ]
    offs = kt.produce(boot, "smoke", recs)
    assert offs == [(0, 0), (0, 1), (0, 2), (1, 0), (2, 0), (3, 0)]
    got = kt.consume(boot, "smoke")
    assert len(got) == len(recs)
    by_pos = {(g["partition"], g["offset"]): g for g in got}
    for rec, pos in zip(recs, offs):
        g = by_pos[pos]
        assert g["key"] == kt._b(rec["key"]), (pos, g)
        assert g["value"] == kt._b(rec["value"]), (pos, g)
        assert g["headers"] == [(n, kt._b(v)) for n, v in rec.get("headers", [])], (pos, g)
    assert by_pos[(1, 0)]["timestamp"] == 1700000000123

    # generated records spread evenly over the partitions, all read back
    st = kt.produce_generated(boot, "wide", 12000, size=100, keys=True)
    assert st["records"] == 12000 and st["bytes"] == 12000 * 100 + sum(
        len("k%d" % i) for i in range(12000))
    rows = kt.consume(boot, "wide", conf={"fetch.wait.max.ms": "10"})
    assert len(rows) == 12000
    per_part = {}
    for g in rows:
        per_part[g["partition"]] = per_part.get(g["partition"], 0) + 1
    assert per_part == {p: 1000 for p in range(12)}
    assert sorted(g["key"] for g in rows) == sorted(b"k%d" % i for i in range(12000))

    # down 1: broker 1 refuses connections and a partition it leads takes no writes;
    # up 1: both come back
    kt.ctl("leader smoke 0 1")
    kt.ctl("down 1")
    assert not helpers.port_accepts(base)
    others = ",".join("127.0.0.1:%d" % (base + i) for i in range(1, BROKERS))
    with pytest.raises(kt.KafkaToolError):
        kt.produce(others, "smoke", [{"partition": 0, "value": b"while down"}],
                   conf={"message.timeout.ms": "1500"})
    kt.ctl("up 1")
    helpers.wait_until(lambda: helpers.port_accepts(base), timeout=10,
                       what="broker 1 accepting again")
    assert kt.produce(others, "smoke", [{"partition": 0, "value": b"after up"}],
                      conf={"message.timeout.ms": "10000"}) == [(0, 3)]
    assert [g["value"] for g in kt.consume(boot, "smoke", partition=0)][-1] == b"after up"

    # error injection is accepted (its effect is the Kafka source's tests' business)
    assert "NOT_LEADER_FOR_PARTITION x2" in kt.ctl("error 0 6 2")
    kt.ctl("clear 0")


def test_kafka_service_stop_leaves_nothing(kafka):
    pid = int(kafka["pids"][0][1])
    assert not helpers.proc_gone(pid)
    r = subprocess.run([os.path.join(SERVICES_DIR, "stop.sh")], env=kafka["env"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert helpers.proc_gone(pid)
    for i in range(BROKERS):
        assert not helpers.port_accepts(kafka["base"] + i), "port %d still open" % (kafka["base"] + i)
    run_dir = kafka["run_dir"]
    for name in ("services.pids", "services.env", "kafka.ctl", "kafka.bootstrap"):
        assert not (run_dir / name).exists(), name
    with open(run_dir / "kafka.log") as f:
        assert "kafka-mock: stopped" in f.read()
    # a second start on the same ports works at once (SO_REUSEADDR on the fixed ports)
    r = subprocess.run([os.path.join(SERVICES_DIR, "start.sh")], env=kafka["env"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
