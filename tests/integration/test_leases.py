"""Leases (a Redis checkpoint_store, lease_ttl): sluice processes running the same Kinesis
mapping share its shards through leases in Redis. Three processes share 12 shards evenly (4
each) within 15 s; one SIGKILLed has its shards taken over within the lease TTL and nothing is
lost; a process stopped (SIGSTOP) past its lease and continued (SIGCONT) moves no checkpoint
(the Redis keys are read). Against kinesalite (SERVICES=kinesis) and the redis-server of
tests/services (SERVICES=redis), each test under a key prefix of its own."""

import base64
import json
import collections
import os
import signal
import threading
import time
import uuid

from fnserver import Reply
from helpers import base_config, http_fn, wait_until, write_config
from redisutil import call, services_redis
from test_kinesis import FN, arn, create_stream, events, kinesis, put, sluice_env  # noqa: F401

TTL_MS = 3000


def lease_cfg(tmp_path, fn, stream, url, name, path=FN, batch=100):
    m = {"EventSourceArn": arn(stream), "FunctionName": "hook", "StartingPosition": "TRIM_HORIZON",
         "BatchSize": batch, "poll_interval": "100ms", "shard_refresh_interval": "1s",
         "UUID": "m1"}
    cfg = base_config(tmp_path / name, {"hook": http_fn(fn.url + path, timeout=60)}, [m],
                      checkpoint_store=url, lease_ttl="%dms" % TTL_MS)
    return write_config(tmp_path, cfg, name="%s.json" % name)


def leases(port, prefix):
    """{shard: (owner, counter)} of the lease hash."""
    got = call(port, "HGETALL", prefix + "lease:m1") or []
    out = {}
    for i in range(0, len(got), 2):
        owner, counter, _ = got[i + 1].decode().split(" ")
        out[got[i].decode()] = (owner, int(counter))
    return out


def live_owners(port, prefix):
    """Counter of owners over the leases that have not run out (Redis' clock)."""
    now_s, now_us = call(port, "TIME")
    now = int(now_s) * 1000 + int(now_us) // 1000
    got = call(port, "HGETALL", prefix + "lease:m1") or []
    c = collections.Counter()
    for i in range(0, len(got), 2):
        owner, _, exp = got[i + 1].decode().split(" ")
        if owner != "-" and int(exp) > now:
            c[owner] += 1
    return c


def pid_of(owner):
    return int(owner.split(":")[-2])


def ckpts(port, prefix):
    got = call(port, "HGETALL", prefix + "ckpt:m1") or []
    return {got[i].decode(): got[i + 1].decode() for i in range(0, len(got), 2)}


def test_three_processes_share_12_shards_then_one_is_killed(tmp_path, fn, sluice, kinesis):
    """Three processes take 4 shards each within 15 s; every record put is delivered; one
    SIGKILLed: within the lease TTL (and a round) the other two hold 6 each, and every record
    put after the kill is delivered too."""
    _, port = services_redis()
    prefix = "t%s:" % uuid.uuid4().hex[:8]
    url = "redis://127.0.0.1:%d/0?prefix=%s" % (port, prefix)
    stream = create_stream(kinesis, shards=12)
    procs = []
    t0 = time.monotonic()
    for i in range(3):
        os.makedirs(str(tmp_path / ("p%d" % i)), exist_ok=True)
        procs.append(sluice(lease_cfg(tmp_path, fn, stream, url, "p%d" % i),
                            env_extra=sluice_env(kinesis), name="p%d" % i,
                            args=["--log-format", "json"]))

    def even():
        c = live_owners(port, prefix)
        return sum(c.values()) == 12 and sorted(c.values()) == [4, 4, 4]

    wait_until(even, 15, "12 shards shared 4/4/4", proc=procs[0])
    took = time.monotonic() - t0
    print("leases: 4/4/4 after %.1fs" % took)
    owners = live_owners(port, prefix)
    assert {pid_of(o) for o in owners} == {p.proc.pid for p in procs}
    first = put(kinesis, stream, [("k%d" % i, b"a%d" % i) for i in range(60)])
    want = {base64.b64encode(d).decode() for _, _, _, d in first}
    wait_until(lambda: {e["kinesis"]["data"] for e in events(fn)} >= want, 30,
               "every record put", proc=procs[0])

    victim = procs[2]
    victim_owner = [o for o in owners if pid_of(o) == victim.proc.pid][0]
    victim_shards = {s for s, (o, _) in leases(port, prefix).items() if o == victim_owner}
    assert len(victim_shards) == 4
    victim.kill9()
    t_kill = time.monotonic()

    def taken_over():
        ls = leases(port, prefix)
        c = live_owners(port, prefix)
        return (all(ls[s][0] != victim_owner for s in victim_shards)
                and sorted(c.values()) == [6, 6])

    wait_until(taken_over, 15, "the killed process' shards taken over", proc=procs[0])
    took = time.monotonic() - t_kill
    print("leases: taken over %.1fs after SIGKILL (lease_ttl %.1fs)" % (took, TTL_MS / 1000))
    assert took <= TTL_MS / 1000 + 2 * TTL_MS / 3000 + 1.5, took
    second = put(kinesis, stream, [("k%d" % i, b"b%d" % i) for i in range(60)])
    want = {base64.b64encode(d).decode() for _, _, _, d in first + second}
    wait_until(lambda: {e["kinesis"]["data"] for e in events(fn)} >= want, 30,
               "every record, after the kill", proc=procs[0])
    for p in procs[:2]:
        assert p.stop() == 0


def test_a_stopped_process_cannot_move_a_checkpoint(tmp_path, fn, sluice, kinesis):
    """A holds the only shard and its batch is in flight when it is stopped (SIGSTOP) past its
    lease; B takes the lease but its function fails, so the checkpoint stays where it was. A
    is continued (SIGCONT) and its invocation then succeeds: the checkpoint in Redis still does
    not move, and A says it lost the lease."""
    _, port = services_redis()
    prefix = "t%s:" % uuid.uuid4().hex[:8]
    url = "redis://127.0.0.1:%d/0?prefix=%s" % (port, prefix)
    stream = create_stream(kinesis, shards=1)
    put(kinesis, stream, [("k", b"x%d" % i) for i in range(5)])
    gate = threading.Event()

    def hook(rq):
        if rq.path == "/a":
            gate.wait(60)
            return Reply(200)
        return Reply(500)  # B cannot deliver: its checkpoint never moves

    fn.set_hook(hook)
    os.makedirs(str(tmp_path / "a"), exist_ok=True)
    os.makedirs(str(tmp_path / "b"), exist_ok=True)
    a = sluice(lease_cfg(tmp_path, fn, stream, url, "a", path="/a"), env_extra=sluice_env(kinesis), name="a", args=["--log-format", "json"])
    wait_until(lambda: any(r.path == "/a" for r in fn.requests()), 20, "A's invocation",
               proc=a)
    before = ckpts(port, prefix)
    a_owner = [o for o in live_owners(port, prefix)][0]
    assert pid_of(a_owner) == a.proc.pid
    os.kill(a.proc.pid, signal.SIGSTOP)
    try:
        b = sluice(lease_cfg(tmp_path, fn, stream, url, "b", path="/b"),
                   env_extra=sluice_env(kinesis), name="b", args=["--log-format", "json"])
        wait_until(lambda: any(pid_of(o) == b.proc.pid for o, _ in leases(port, prefix).values()),
                   20, "B taking the lease", proc=b)
        wait_until(lambda: any(r.path == "/b" for r in fn.requests()), 20, "B's invocation",
                   proc=b)
        gate.set()  # A's invocation answers, but A is stopped
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)
    wait_until(lambda: "lease lost" in a.log(), 10, "A finding its lease lost", proc=a)
    time.sleep(1.0)  # A has had time to write what it would
    assert ckpts(port, prefix) == before, (before, ckpts(port, prefix))
    owner = list(leases(port, prefix).values())[0][0]
    assert pid_of(owner) == b.proc.pid
    assert a.stop() == 0
    assert ckpts(port, prefix) == before
    assert b.stop() == 0


def test_three_processes_share_a_directory_of_files(tmp_path, fn, sluice):
    """Twelve files, three processes: 4 files each within 15 s, every line delivered; one
    SIGKILLed: its files are taken over within the lease TTL (and a round), and every line
    appended afterwards is delivered too."""
    _, port = services_redis()
    prefix = "t%s:" % uuid.uuid4().hex[:8]
    url = "redis://127.0.0.1:%d/0?prefix=%s" % (port, prefix)
    d = tmp_path / "logs"
    d.mkdir()
    files = [d / ("f%02d.log" % i) for i in range(12)]
    for i, f in enumerate(files):
        f.write_text("".join("f%d-a%d\n" % (i, k) for k in range(3)))
    procs = []
    for i in range(3):
        m = {"EventSourceArn": "file://%s/*.log" % d, "FunctionName": "f",
             "StartingPosition": "TRIM_HORIZON", "BatchSize": 10, "UUID": "m1"}
        cfg = base_config(tmp_path / ("p%d" % i), {"f": http_fn(fn.url)}, [m],
                          checkpoint_store=url, lease_ttl="%dms" % TTL_MS)
        procs.append(sluice(write_config(tmp_path, cfg, name="f%d.json" % i), name="f%d" % i,
                            args=["--log-format", "json"]))

    def even():
        c = live_owners(port, prefix)
        return sum(c.values()) == 12 and sorted(c.values()) == [4, 4, 4]

    t0 = time.monotonic()
    wait_until(even, 15, "12 files shared 4/4/4", proc=procs[0])
    print("leases: files 4/4/4 after %.1fs" % (time.monotonic() - t0))
    want = {"f%d-a%d" % (i, k) for i in range(12) for k in range(3)}
    wait_until(lambda: set(fn.lines()) >= want, 20, "every line", proc=procs[0])
    victim = procs[2]
    victim.kill9()
    t_kill = time.monotonic()
    wait_until(lambda: sorted(live_owners(port, prefix).values()) == [6, 6], 15,
               "the killed process' files taken over", proc=procs[0])
    took = time.monotonic() - t_kill
    print("leases: files taken over %.1fs after SIGKILL" % took)
    assert took <= TTL_MS / 1000 + 2 * TTL_MS / 3000 + 1.5, took
    for i, f in enumerate(files):
        with open(f, "a") as fh:
            fh.write("f%d-b\n" % i)
    want |= {"f%d-b" % i for i in range(12)}
    wait_until(lambda: set(fn.lines()) >= want, 20, "every line, after the kill", proc=procs[0])
    for p in procs[:2]:
        assert p.stop() == 0


def test_parents_before_children_across_processes(tmp_path, fn, sluice, kinesis):
    """X reads the only shard; Y runs beside it with nothing to read. The shard is split: the
    children are read (by whichever process takes them) only after every record of the parent,
    whose end X records in its checkpoint and whose lease X gives back, so that Y, taking it,
    finds it done and goes on to the children; each key's records stay in order."""
    from test_kinesis import _wait_active, aws
    _, port = services_redis()
    prefix = "t%s:" % uuid.uuid4().hex[:8]
    url = "redis://127.0.0.1:%d/0?prefix=%s" % (port, prefix)
    stream = create_stream(kinesis, shards=1)
    keys = ["key-%d" % i for i in range(10)]
    n = [0]

    def put_round(count):
        items = []
        for _ in range(count):
            items.append((keys[n[0] % len(keys)], b"%d" % n[0]))
            n[0] += 1
        return put(kinesis, stream, items)

    x = sluice(lease_cfg(tmp_path, fn, stream, url, "x", batch=10),
               env_extra=sluice_env(kinesis), name="x", args=["--log-format", "json"])
    put_round(30)
    wait_until(lambda: len(events(fn)) >= 30, 30, "30 records", proc=x)
    y = sluice(lease_cfg(tmp_path, fn, stream, url, "y", batch=10),
               env_extra=sluice_env(kinesis), name="y", args=["--log-format", "json"])
    wait_until(lambda: "sharing the partitions" in y.log(), 10, "Y started", proc=y)
    aws(kinesis, "split-shard", "--stream-name", stream, "--shard-to-split",
        "shardId-000000000000", "--new-starting-hash-key",
        "170141183460469231731687303715884105728")
    _wait_active(kinesis, stream)
    children = put_round(30)
    assert {sh for sh, _, _, _ in children} == {"shardId-000000000001", "shardId-000000000002"}
    wait_until(lambda: len({r["eventID"] for r in events(fn)}) >= 60, 30, "60 records",
               proc=x)
    recs = events(fn)
    order = [r["eventID"].rsplit(":", 1)[0] for r in recs]
    last = {sh: max(i for i, s in enumerate(order) if s == sh) for sh in set(order)}
    first = {sh: min(i for i, s in enumerate(order) if s == sh) for sh in set(order)}
    assert last["shardId-000000000000"] < first["shardId-000000000001"]
    assert last["shardId-000000000000"] < first["shardId-000000000002"]
    per_key = {}
    for r in recs:
        per_key.setdefault(r["kinesis"]["partitionKey"], []).append(
            int(base64.b64decode(r["kinesis"]["data"])))
    for k, vals in per_key.items():
        assert vals == sorted(vals), (k, vals)
    # Y took the parent's lease once X gave it back, and found it done in its checkpoint
    wait_until(lambda: "the checkpoint says the shard was read to its end" in y.log(), 10,
               "Y finding the parent done", proc=y)
    row = ckpts(port, prefix)["shardId-000000000000"]
    assert "end=" in row, row
    assert x.stop() == 0
    assert y.stop() == 0


def test_redis_down_past_the_lease_ttl_nothing_lost(tmp_path, fn, sluice):
    """Redis (no persistence) is down longer than lease_ttl: the process gives its leases up
    before they could run out (its partitions stop), takes them again once Redis is back empty,
    writes the positions again, and every line, also those appended during the outage, is
    delivered; the outage is one log line."""
    from redisutil import RedisServer
    srv = RedisServer(tmp_path / "redis", durable=False).start()
    ttl = 1500
    log = tmp_path / "in.log"
    log.write_text("".join("a%d\n" % i for i in range(5)))
    m = {"EventSourceArn": "file://%s" % log, "FunctionName": "f",
         "StartingPosition": "TRIM_HORIZON", "BatchSize": 2, "UUID": "m1"}
    cfg = base_config(tmp_path, {"f": http_fn(fn.url)}, [m],
                      checkpoint_store="redis://127.0.0.1:%d/0" % srv.port,
                      lease_ttl="%dms" % ttl)
    s = sluice(write_config(tmp_path, cfg, name="r.json"), args=["--log-format", "json"])
    try:
        def pos():
            got = call(srv.port, "HGETALL", "sluice:ckpt:m1") or []
            return [int(json.loads(got[i + 1])["pos"]) for i in range(0, len(got), 2)]

        size1 = log.stat().st_size
        wait_until(lambda: pos() == [size1], 15, "the first checkpoint", proc=s)
        srv.stop()
        with open(log, "a") as f:
            f.write("".join("b%d\n" % i for i in range(5)))
        wait_until(lambda: "not renewed in time" in s.log(), 10, "the leases given up", proc=s)
        srv.start()  # empty
        size2 = log.stat().st_size
        wait_until(lambda: pos() == [size2], 20, "the checkpoint at the end", proc=s)
        assert s.stop() == 0
    finally:
        if s.poll() is None:
            s.kill9()
        srv.stop()
    want = {"a%d" % i for i in range(5)} | {"b%d" % i for i in range(5)}
    assert want <= set(fn.lines()), sorted(want - set(fn.lines()))
    assert s.log().count("reconnecting with backoff") == 1
