"""Where a new consumer group starts is committed at once (issue 8 item 1, the Kafka source).

A group without a committed offset starts from StartingPosition: with LATEST, at the end of
each partition.  A run that ended before any new message arrived used to commit nothing, so the
next run started at the (new) end again and skipped what was produced while sluice was down.
Now the offset each partition starts from is committed as soon as it is resolved at assignment,
and --until-idle does not count the partition as started (nor report idle) before the broker
acknowledged that commit.  The committed offsets are read from the group coordinator
(kafka_tools.committed, librdkafka's OffsetFetch), the end offsets from the partition leaders.

Against librdkafka's mock cluster from tests/services; skipped without it unless CI=true."""

import time

import pytest

from helpers import wait_until
from test_kafka import JOIN_S, assigned_offsets, config, delivered, mapping, new_topic
import kafka_tools as kt

PARTS = 2
OLD_S = 3600  # the old messages are stamped an hour ago


def produce(boot, topic, values, old=False):
    ts = int((time.time() - OLD_S) * 1000) if old else None
    return kt.produce(boot, topic, [{"partition": i % PARTS, "value": v, "timestamp": ts}
                                    for i, v in enumerate(values)])


def start_args(start):
    if start == "AT_TIMESTAMP":
        # after every old message: it starts at the end, as LATEST does
        return {"start": "AT_TIMESTAMP", "StartingPositionTimestamp": int(time.time()) - 60}
    return {"start": start}


def values_of(fn):
    return sorted(r[4].decode() for r in delivered(fn))


@pytest.mark.parametrize("start", ["LATEST", "AT_TIMESTAMP"])
def test_kafka_new_group_start_committed_before_idle(tmp_path, fn, sluice, kafka, start):
    """--until-idle with no new message: the group's committed offsets are the end offsets when
    sluice exits, and the 2 messages produced while it was down are delivered by the next run."""
    boot = kafka["KAFKA_BOOTSTRAP"]
    topic = new_topic(PARTS)
    group = "g-" + topic
    produce(boot, topic, ["old-%d" % i for i in range(7)], old=True)
    ends = kt.end_offsets(boot, topic, PARTS)
    assert ends == {0: 4, 1: 3}, ends
    cfg = config(tmp_path, fn, [mapping(kafka, topic, "hook", group, **start_args(start))])
    s = sluice(cfg, args=["--until-idle=1"])
    assert s.wait(JOIN_S + 30) == 0, s.log_tail()
    assert delivered(fn) == [], "%s delivered old messages" % start
    got = kt.committed(boot, group, topic, PARTS)
    assert got == ends, ("the group's committed offsets after an idle %s run: %r, not the end "
                         "offsets %r\n%s" % (start, got, ends, s.log_tail()))

    produce(boot, topic, ["new-0", "new-1"])
    s.start(args=[])
    wait_until(lambda: len(delivered(fn)) >= 2, JOIN_S, "the 2 messages produced meanwhile",
               proc=s)
    assert values_of(fn) == ["new-0", "new-1"], s.log()
    # the second run resumed at the committed offsets
    assert assigned_offsets(s) == {"%s-%d" % (topic, p): ends[p] for p in range(PARTS)}, s.log()
    assert s.stop() == 0


def test_kafka_latest_sigterm_after_join_then_produce(tmp_path, fn, sluice, kafka):
    """SIGTERM as soon as the partitions are assigned, before anything arrives: the start is
    committed all the same (at the latest by the final commit on the way out), and the next run
    delivers both messages produced in between, and nothing older."""
    boot = kafka["KAFKA_BOOTSTRAP"]
    topic = new_topic(PARTS)
    group = "g-" + topic
    produce(boot, topic, ["old-%d" % i for i in range(5)], old=True)
    ends = kt.end_offsets(boot, topic, PARTS)
    cfg = config(tmp_path, fn, [mapping(kafka, topic, "hook", group, start="LATEST")])
    s = sluice(cfg)
    wait_until(lambda: len(assigned_offsets(s)) == PARTS, JOIN_S, "the assignment", proc=s)
    assert s.stop() == 0
    assert kt.committed(boot, group, topic, PARTS) == ends, s.log()

    produce(boot, topic, ["new-0", "new-1"])
    s.start()
    wait_until(lambda: len(delivered(fn)) >= 2, JOIN_S, "the 2 messages produced meanwhile",
               proc=s)
    assert values_of(fn) == ["new-0", "new-1"], s.log()
    assert s.stop() == 0
