"""Kafka helpers for sluice's tests: produce exact records with kafka-produce (our C producer),
read them back with kcat, and drive the mock broker through its control FIFO.

    import kafka_tools as kt
    env = kt.services_env()                       # KAFKA_* from $RUN_DIR/services.env / os.environ
    kt.ctl("topic orders 4")                      # waits for the mock's "ctl: ok" answer
    kt.produce(env["KAFKA_BOOTSTRAP"], "orders", [
        {"key": b"k1", "value": b"v1", "headers": [("h", b"\\xff\\x00")]},
        {"key": None, "value": "no key"},         # null key
        {"key": "gone", "value": None},           # tombstone
        {"partition": 3, "value": b"...", "timestamp": 1700000000000},
    ])                                            # -> [(partition, offset), ...] in input order
    kt.produce_generated(boot, "bench", 500000, size=100)   # i % partitions; returns stats
    recs = kt.consume(boot, "orders")             # kcat -C -e -J from the beginning
    kt.committed(boot, "my-group", "orders", 4)   # -> {partition: committed offset or None}
    kt.end_offsets(boot, "orders", 4)             # -> {partition: high watermark}
    # -> [{"topic", "partition", "offset", "timestamp", "key", "value", "headers"}]; key/value
    #    bytes or None, headers a list of (name: str, value: bytes or None)

Command line: `python3 kafka_tools.py read -b BOOT -t TOPIC [-p PART] [-o OFFSET] [-c COUNT]`
prints one JSON object per record (bytes as base64 in key_b64/value_b64 and header "b64"),
`python3 kafka_tools.py ctl 'down 1'` sends one control command and prints the answer.

About bytes: kcat's -J writes non-UTF-8 bytes raw inside its JSON strings and escapes control
bytes (NUL too) as \\u00XX, so each line is decoded as Latin-1 and every string re-encoded as
Latin-1: lossless for keys, values and header values.  kcat's -f '%h' is not (it stops at a NUL
and has no escaping); don't use it to check headers.
"""

import base64
import ctypes
import ctypes.util
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVICES = os.path.dirname(HERE)
PRODUCER_SRC = os.path.join(HERE, "kafka-produce.c")


class KafkaToolError(RuntimeError):
    pass


def services_env(run_dir=None):
    """KAFKA_BOOTSTRAP, KAFKA_CTL, KAFKA_LOG, KAFKA_PRODUCE: from os.environ, else from
    RUN_DIR/services.env (RUN_DIR: the argument, $RUN_DIR, or tests/services/run)."""
    keys = ("KAFKA_BOOTSTRAP", "KAFKA_CTL", "KAFKA_LOG", "KAFKA_PRODUCE")
    env = {k: os.environ[k] for k in keys if os.environ.get(k)}
    if len(env) == len(keys) and run_dir is None:
        return env
    run_dir = run_dir or os.environ.get("RUN_DIR") or os.path.join(SERVICES, "run")
    path = os.path.join(run_dir, "services.env")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, sep, v = line.strip().partition("=")
                if sep and k in keys:
                    env[k] = v
    return env


def producer_path(build_dir=None):
    """The kafka-produce binary: $KAFKA_PRODUCE when it exists and is newer than the source,
    else built with cc + pkg-config into build_dir (default: beside services.env's, or a
    per-user cache) when missing or stale."""
    cand = os.environ.get("KAFKA_PRODUCE") or services_env().get("KAFKA_PRODUCE")
    if build_dir is None and cand and _fresh(cand):
        return cand
    if build_dir is None:
        build_dir = os.path.dirname(cand) if cand else os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sluice-tests")
    out = os.path.join(build_dir, "kafka-produce")
    if _fresh(out):
        return out
    if not shutil.which("cc") or not shutil.which("pkg-config"):
        raise KafkaToolError("cc and pkg-config are needed to build kafka-produce")
    r = subprocess.run(["pkg-config", "--cflags", "--libs", "rdkafka", "libcjson"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise KafkaToolError("pkg-config rdkafka libcjson: " + r.stderr.strip())
    os.makedirs(build_dir, exist_ok=True)
    tmp = "%s.tmp.%d" % (out, os.getpid())
    r = subprocess.run(["cc", "-std=c11", "-O2", "-Wall", "-o", tmp, PRODUCER_SRC]
                       + r.stdout.split(), capture_output=True, text=True)
    if r.returncode != 0:
        raise KafkaToolError("building kafka-produce failed:\n" + r.stderr)
    os.replace(tmp, out)
    return out


def _fresh(path):
    return (os.path.isfile(path) and os.access(path, os.X_OK)
            and os.path.getmtime(path) >= os.path.getmtime(PRODUCER_SRC))


def _b(v):
    if v is None or isinstance(v, bytes):
        return v
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, str):
        return v.encode()
    raise TypeError("expected bytes, str or None, got %r" % type(v))


def record_json(rec):
    """One record dict -> the JSON line kafka-produce reads (bytes travel as base64)."""
    out = {}
    for f in ("key", "value"):
        v = _b(rec.get(f))
        if v is not None:
            out[f + "_b64"] = base64.b64encode(v).decode()
    if rec.get("partition") is not None:
        out["partition"] = int(rec["partition"])
    if rec.get("timestamp") is not None:
        out["timestamp"] = int(rec["timestamp"])
    if rec.get("headers"):
        hs = []
        for name, val in rec["headers"]:
            val = _b(val)
            hs.append([name, None if val is None else {"b64": base64.b64encode(val).decode()}])
        out["headers"] = hs
    return json.dumps(out, separators=(",", ":"))


def produce(bootstrap, topic, records, partition=None, conf=None, timeout=60):
    """Produce `records` (dicts: key, value, headers, partition, timestamp; an absent or None
    key is a null key, an absent or None value a tombstone) and wait for every ack.
    Returns [(partition, offset)] in input order; raises KafkaToolError on any failure."""
    args = [producer_path(), "-b", bootstrap, "-t", topic, "-o", "-q"]
    if partition is not None:
        args += ["-p", str(partition)]
    for k, v in (conf or {}).items():
        args += ["-X", "%s=%s" % (k, v)]
    data = "".join(record_json(r) + "\n" for r in records)
    r = subprocess.run(args, input=data.encode(), capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise KafkaToolError("kafka-produce exited %d: %s"
                             % (r.returncode, r.stderr.decode(errors="replace").strip()))
    out = [tuple(int(x) for x in ln.split()) for ln in r.stdout.decode().splitlines()]
    if len(out) != len(records):
        raise KafkaToolError("kafka-produce acknowledged %d of %d records"
                             % (len(out), len(records)))
    return out


_SUMMARY = re.compile(r"produced (\d+) records \((\d+) bytes\) in ([0-9.]+) s")


def produce_generated(bootstrap, topic, count, size=100, keys=False, partition=None, conf=None,
                      timeout=300):
    """COUNT generated records of SIZE bytes (value 'r%010d ' + 'x' padding, key 'k%d' with
    keys=True, else null); without `partition`, record i goes to partition i % partitions.
    Returns {"records", "bytes", "seconds", "rate"}."""
    args = [producer_path(), "-b", bootstrap, "-t", topic, "-n", str(count), "-s", str(size)]
    if keys:
        args.append("-k")
    if partition is not None:
        args += ["-p", str(partition)]
    for k, v in (conf or {}).items():
        args += ["-X", "%s=%s" % (k, v)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    m = _SUMMARY.search(r.stderr)
    if r.returncode != 0 or not m:
        raise KafkaToolError("kafka-produce exited %d: %s" % (r.returncode, r.stderr.strip()))
    n, nbytes, secs = int(m.group(1)), int(m.group(2)), float(m.group(3))
    return {"records": n, "bytes": nbytes, "seconds": secs, "rate": n / secs if secs else 0.0}


def kcat_path():
    return shutil.which("kcat") or shutil.which("kafkacat")


def _latin1(v):
    return None if v is None else v.encode("latin-1")


def consume(bootstrap, topic, partition=None, offset="beginning", count=None, timeout=60,
            conf=None):
    """Read `topic` with `kcat -C -e -J` (exits at the end of every partition) and return the
    records, each {"topic", "partition", "offset", "timestamp", "key", "value", "headers"}
    with bytes (or None) for key and value and [(name, bytes or None)] for headers."""
    kcat = kcat_path()
    if not kcat:
        raise KafkaToolError("kcat not found (apt-get install kcat)")
    args = [kcat, "-C", "-b", bootstrap, "-t", topic, "-o", str(offset), "-e", "-q", "-J"]
    if partition is not None:
        args += ["-p", str(partition)]
    if count is not None:
        args += ["-c", str(count)]
    for k, v in (conf or {}).items():
        args += ["-X", "%s=%s" % (k, v)]
    r = subprocess.run(args, capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise KafkaToolError("kcat exited %d: %s"
                             % (r.returncode, r.stderr.decode(errors="replace").strip()))
    out = []
    for ln in r.stdout.split(b"\n"):
        if not ln.strip():
            continue
        j = json.loads(ln.decode("latin-1"))
        hs = j.get("headers") or []
        out.append({
            "topic": j["topic"], "partition": j["partition"], "offset": j["offset"],
            "timestamp": j.get("ts"), "key": _latin1(j.get("key")),
            "value": _latin1(j.get("payload")),
            "headers": [(_latin1(hs[i]).decode("utf-8", "surrogateescape"), _latin1(hs[i + 1]))
                        for i in range(0, len(hs), 2)],
        })
    return out


class _TopicPartition(ctypes.Structure):
    _fields_ = [("topic", ctypes.c_char_p), ("partition", ctypes.c_int32),
                ("offset", ctypes.c_int64), ("metadata", ctypes.c_void_p),
                ("metadata_size", ctypes.c_size_t), ("opaque", ctypes.c_void_p),
                ("err", ctypes.c_int), ("_private", ctypes.c_void_p)]


class _TopicPartitionList(ctypes.Structure):
    _fields_ = [("cnt", ctypes.c_int), ("size", ctypes.c_int),
                ("elems", ctypes.POINTER(_TopicPartition))]


_RDK = None


def _rdkafka():
    """librdkafka through ctypes (the library sluice links; no Python client is installed)."""
    global _RDK
    if _RDK is None:
        name = ctypes.util.find_library("rdkafka")
        if not name:
            raise KafkaToolError("librdkafka not found")
        lib = ctypes.CDLL(name)
        vp, cp, i32, i64 = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.c_int64
        tpl = ctypes.POINTER(_TopicPartitionList)
        for fn, res, args in (
                ("rd_kafka_conf_new", vp, []),
                ("rd_kafka_conf_set", ctypes.c_int, [vp, cp, cp, cp, ctypes.c_size_t]),
                ("rd_kafka_new", vp, [ctypes.c_int, vp, cp, ctypes.c_size_t]),
                ("rd_kafka_destroy", None, [vp]),
                ("rd_kafka_err2str", cp, [ctypes.c_int]),
                ("rd_kafka_topic_partition_list_new", tpl, [ctypes.c_int]),
                ("rd_kafka_topic_partition_list_add", ctypes.POINTER(_TopicPartition),
                 [tpl, cp, i32]),
                ("rd_kafka_topic_partition_list_destroy", None, [tpl]),
                ("rd_kafka_committed", ctypes.c_int, [vp, tpl, ctypes.c_int]),
                ("rd_kafka_query_watermark_offsets", ctypes.c_int,
                 [vp, cp, i32, ctypes.POINTER(i64), ctypes.POINTER(i64), ctypes.c_int])):
            f = getattr(lib, fn)
            f.restype, f.argtypes = res, args
        _RDK = lib
    return _RDK


def _client(bootstrap, group=None):
    """A consumer handle that never subscribes (so it joins no group): for lookups only."""
    lib = _rdkafka()
    conf = lib.rd_kafka_conf_new()
    err = ctypes.create_string_buffer(512)
    props = {"bootstrap.servers": bootstrap, "enable.auto.commit": "false"}
    if group:
        props["group.id"] = group
    for k, v in props.items():
        if lib.rd_kafka_conf_set(conf, k.encode(), v.encode(), err, 512) != 0:
            raise KafkaToolError("%s: %s" % (k, err.value.decode()))
    rk = lib.rd_kafka_new(1, conf, err, 512)  # RD_KAFKA_CONSUMER
    if not rk:
        raise KafkaToolError("rd_kafka_new: " + err.value.decode())
    return lib, rk


def committed(bootstrap, group, topic, partitions, timeout=10):
    """The committed offsets of `group` for partitions 0..partitions-1 of `topic`, asked of the
    group coordinator (OffsetFetch): {partition: offset, or None where there is none}."""
    lib, rk = _client(bootstrap, group)
    try:
        lst = lib.rd_kafka_topic_partition_list_new(partitions)
        try:
            for p in range(partitions):
                lib.rd_kafka_topic_partition_list_add(lst, topic.encode(), p)
            e = lib.rd_kafka_committed(rk, lst, int(timeout * 1000))
            if e:
                raise KafkaToolError("committed offsets of %s: %s"
                                     % (group, lib.rd_kafka_err2str(e).decode()))
            out = {}
            for i in range(lst.contents.cnt):
                el = lst.contents.elems[i]
                if el.err:
                    raise KafkaToolError("committed offset of %s-%d: %s" % (
                        topic, el.partition, lib.rd_kafka_err2str(el.err).decode()))
                out[el.partition] = el.offset if el.offset >= 0 else None
            return out
        finally:
            lib.rd_kafka_topic_partition_list_destroy(lst)
    finally:
        lib.rd_kafka_destroy(rk)


def end_offsets(bootstrap, topic, partitions, timeout=10):
    """The high watermark of partitions 0..partitions-1 of `topic`: {partition: offset}."""
    lib, rk = _client(bootstrap)
    try:
        out = {}
        for p in range(partitions):
            lo, hi = ctypes.c_int64(-1), ctypes.c_int64(-1)
            e = lib.rd_kafka_query_watermark_offsets(rk, topic.encode(), p, ctypes.byref(lo),
                                                     ctypes.byref(hi), int(timeout * 1000))
            if e:
                raise KafkaToolError("watermarks of %s-%d: %s"
                                     % (topic, p, lib.rd_kafka_err2str(e).decode()))
            out[p] = hi.value
        return out
    finally:
        lib.rd_kafka_destroy(rk)


def ctl(command, ctl_path=None, log_path=None, timeout=10.0):
    """Send one command to the mock's control FIFO and wait for its answer in the mock's log
    (up to ~1 s when commands follow each other closely).  Returns the answer line; raises
    KafkaToolError on "ctl: ERR" or no answer within `timeout`."""
    env = services_env()
    ctl_path = ctl_path or env.get("KAFKA_CTL")
    log_path = log_path or env.get("KAFKA_LOG") or (
        os.path.join(os.path.dirname(ctl_path), "kafka.log") if ctl_path else None)
    if not ctl_path or not log_path:
        raise KafkaToolError("no KAFKA_CTL / KAFKA_LOG (start tests/services with kafka)")
    line = " ".join(command.split())
    want = re.compile(r"ctl: (ok|ERR) " + re.escape(line) + r"(\s|:|$)")

    def answers():
        try:
            with open(log_path, errors="replace") as f:
                return [ln.rstrip("\n") for ln in f if want.search(ln)]
        except FileNotFoundError:
            return []

    before = len(answers())
    try:
        # non-blocking: ENXIO instead of hanging when no mock holds the FIFO open
        fd = os.open(ctl_path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as e:
        raise KafkaToolError("control FIFO %s: %s (is the mock running?)" % (ctl_path, e))
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)
    deadline = time.monotonic() + timeout
    while True:
        got = answers()
        if len(got) > before:
            ans = got[before]
            if "ctl: ERR" in ans:
                raise KafkaToolError(ans)
            return ans
        if time.monotonic() > deadline:
            raise KafkaToolError("no answer to %r in %s within %.0fs" % (line, log_path, timeout))
        time.sleep(0.02)


def _main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    rd = sub.add_parser("read", help="print records as JSON lines (bytes as base64)")
    rd.add_argument("-b", "--bootstrap", default=services_env().get("KAFKA_BOOTSTRAP"))
    rd.add_argument("-t", "--topic", required=True)
    rd.add_argument("-p", "--partition", type=int)
    rd.add_argument("-o", "--offset", default="beginning")
    rd.add_argument("-c", "--count", type=int)
    c = sub.add_parser("ctl", help="send a control command to the mock and print its answer")
    c.add_argument("command", nargs="+")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "ctl":
            print(ctl(" ".join(a.command)))
            return 0
        if not a.bootstrap:
            ap.error("no bootstrap (-b or KAFKA_BOOTSTRAP)")
        for r in consume(a.bootstrap, a.topic, a.partition, a.offset, a.count):
            d = {k: r[k] for k in ("topic", "partition", "offset", "timestamp")}
            for f in ("key", "value"):
                d[f + "_b64"] = None if r[f] is None else base64.b64encode(r[f]).decode()
            d["headers"] = [[n, None if v is None else {"b64": base64.b64encode(v).decode()}]
                            for n, v in r["headers"]]
            print(json.dumps(d))
        return 0
    except KafkaToolError as e:
        print("kafka_tools: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
