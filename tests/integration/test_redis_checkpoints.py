"""The Redis checkpoint store (top-level "checkpoint_store": "redis://host:port/db?prefix=P"):
a mapping's checkpoints live in the Redis hash <P>ckpt:<UUID>, so a run with another state_dir
(another machine) resumes where the last one stopped; a position there never moves back; Redis
stopped and started again empty mid-run moves no checkpoint backwards, holds every partition
while it is down after max_unsaved_batches advances, logs the outage once, and loses nothing.
Against tests/services' redis-server (SERVICES=redis) and redis-servers of the tests' own."""

import json
import os
import threading
import time
import uuid

from helpers import (base_config, file_mapping, http_fn, run_until_idle, wait_until,
                     write_lines)
from redisutil import RedisServer, call, services_redis


def store_url(port, prefix):
    return "redis://127.0.0.1:%d/0?prefix=%s" % (port, prefix)


def redis_positions(port, key):
    """{partition: int position} of the hash key; {} when it is absent."""
    got = call(port, "HGETALL", key) or []
    return {got[i].decode(): int(json.loads(got[i + 1])["pos"]) for i in range(0, len(got), 2)}


def part_of(path):
    """A file's partition id: "<st_dev>:<st_ino>"."""
    st = os.stat(path)
    return "%d:%d" % (st.st_dev, st.st_ino)


def cfg_for(tmp_path, fn, log, url, state="state", batch=2, **mkw):
    return base_config(tmp_path, {"f": http_fn(fn.url)},
                       [file_mapping(log, "f", batch=batch, UUID="m1", **mkw)],
                       checkpoint_store=url, state_dir=str(tmp_path / state))


def test_checkpoints_in_redis_survive_a_restart_elsewhere(tmp_path, fn, sluice):
    """The first run leaves the position in Redis and nothing in its state_dir; a second run
    with an empty state_dir of its own reads it there and delivers only the new lines."""
    _, port = services_redis()
    prefix = "t%s:" % uuid.uuid4().hex[:8]
    key = prefix + "ckpt:m1"
    log = tmp_path / "in.log"
    write_lines(log, ["a%d" % i for i in range(5)])
    run_until_idle(sluice, cfg_for(tmp_path, fn, log, store_url(port, prefix), state="s1"))
    size1 = log.stat().st_size
    assert list(redis_positions(port, key).values()) == [size1]
    assert not list((tmp_path / "s1").glob("*.json")), "no checkpoint file beside Redis"
    first = sorted(fn.lines())
    assert first == ["a%d" % i for i in range(5)]

    write_lines(log, ["b%d" % i for i in range(3)])
    before = len(fn.lines())
    run_until_idle(sluice, cfg_for(tmp_path, fn, log, store_url(port, prefix), state="s2"))
    new = fn.lines()[before:]
    assert sorted(new) == ["b0", "b1", "b2"], new
    assert list(redis_positions(port, key).values()) == [log.stat().st_size]


def test_a_position_in_redis_never_moves_back(tmp_path, fn, sluice):
    """Another writer put a later position in the hash while this run holds an earlier one: the
    run's writes keep the later one (the compare is in Redis, atomic), and it says so once."""
    _, port = services_redis()
    prefix = "t%s:" % uuid.uuid4().hex[:8]
    key = prefix + "ckpt:m1"
    log = tmp_path / "in.log"
    write_lines(log, ["x0"])
    gate = threading.Event()
    fn.set_hook(lambda rq: (gate.wait(20), None)[1])
    s = sluice(cfg_for(tmp_path, fn, log, store_url(port, prefix), batch=1),
               args=["--log-format", "json"])
    wait_until(lambda: fn.count() >= 1, 10, "the first invocation", proc=s)
    # the partition's row, as a later writer would have left it
    ahead = json.dumps({"pos": "1000000", "meta": "head=3:0 gen=99999999999999999"})
    part = part_of(log)
    call(port, "HSET", key, part, ahead)
    gate.set()
    wait_until(lambda: "already holds a later position" in s.log(), 10, "the kept position",
               proc=s)
    assert json.loads(call(port, "HGET", key, part)) == json.loads(ahead)
    assert s.stop() == 0
    assert s.log().count("already holds a later position") == 1


def test_redis_restarted_empty_mid_run_nothing_lost(tmp_path, fn, sluice):
    """Redis (no persistence) is stopped mid-run: the partition stops after
    max_unsaved_batches advances, no checkpoint moves; it comes back empty: every position is
    written again (that of a file untouched since, too), none ever moved back, every line was
    delivered, and the outage is one log line."""
    srv = RedisServer(tmp_path / "redis", durable=False).start()
    prefix = "sluice:"
    key = prefix + "ckpt:m1"
    log = tmp_path / "in.log"
    still = tmp_path / "still.log"
    write_lines(log, ["a%d" % i for i in range(4)])
    write_lines(still, ["s0", "s1"])
    seen = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            try:
                seen.extend(redis_positions(srv.port, key).get(part_of(log), -1) for _ in [0])
            except Exception:  # down, or restarting
                pass
            time.sleep(0.01)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    s = sluice(cfg_for(tmp_path, fn, tmp_path / "*.log", "redis://127.0.0.1:%d/0" % srv.port,
                       batch=1, max_unsaved_batches=2),
               args=["--log-format", "json"])
    try:
        size1 = log.stat().st_size
        want1 = sorted([size1, still.stat().st_size])
        wait_until(lambda: sorted(redis_positions(srv.port, key).values()) == want1, 15,
                   "the first checkpoints", proc=s)
        srv.stop()
        n0 = fn.count()
        write_lines(log, ["b%d" % i for i in range(10)])
        # max_unsaved_batches (2) advances go on without Redis, then the partition waits
        wait_until(lambda: fn.count() >= n0 + 2, 10, "the batches Redis need not see", proc=s)
        time.sleep(1.0)  # Redis stays down: nothing more may be invoked meanwhile
        assert fn.count() <= n0 + 3, fn.count() - n0  # the 2 + the one then in flight
        srv.start()  # empty: it lost everything
        size2 = log.stat().st_size
        want2 = sorted([size2, still.stat().st_size])
        wait_until(lambda: sorted(redis_positions(srv.port, key).values()) == want2, 20,
                   "both checkpoints, written again", proc=s)
        assert s.stop() == 0
    finally:
        stop.set()
        t.join(5)
        if s.poll() is None:
            s.kill9()
        srv.stop()
    got = set(fn.lines())
    want = {"a%d" % i for i in range(4)} | {"b%d" % i for i in range(10)}
    assert want <= got, sorted(want - got)
    seen = [p for p in seen if p >= 0]
    assert seen and seen == sorted(seen), "a checkpoint moved back: %s" % seen
    assert {"s0", "s1"} <= got
    log_text = s.log()
    assert log_text.count("reconnecting with backoff") == 1, log_text[-3000:]
