"""Kafka: memory stays within the mapping's budget whatever the partition count (DESIGN.md rule
4; issue 9, item 11). What the source holds outside the mapping (librdkafka's prefetch queues)
counts against max_bytes_buffered, and no partition keeps the buffers of its peak once it is
idle, so a topic of many partitions is never held whole in memory.

Needs the Kafka mock of tests/services (SERVICES=kafka tests/services/start.sh); skipped without
it unless CI=true."""

import os
import sys
import uuid

import pytest

from helpers import REPO, base_config, http_fn, wait_until

sys.path.insert(0, os.path.join(REPO, "tests", "services", "kafka-tools"))
import kafka_tools as kt  # noqa: E402

FN = "/fn"
JOIN_S = 30
PARTITIONS = 96
PER_PARTITION = 2000
SIZE = 200
# Peak RSS allowed: the process itself (~30 MB: libraries, librdkafka's threads and buffers)
# plus max_bytes_buffered (1 MiB) and what one fetching partition holds: 22 MB measured.
# Before the bound, the 38 MB topic ended up in memory several times over (~200 MB).
BOUND_KB = 64 * 1024


def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/%d/status" % pid)


class Counter:
    """Records delivered to fn so far. The last requests are counted afresh each time (one may
    be listed before its reply is); those before them once."""

    TAIL = 8

    def __init__(self, fn):
        self.fn = fn
        self.seen = 0
        self.records = 0

    def __call__(self):
        reqs = self.fn.requests()
        settled = max(len(reqs) - self.TAIL, self.seen)
        for rq in reqs[self.seen:settled]:
            self.records += rq.body.count(b'"offset":') if rq.ok else 0
        self.seen = settled
        return self.records + sum(rq.body.count(b'"offset":') for rq in reqs[settled:] if rq.ok)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_kafka_many_partitions_memory_within_budget(tmp_path, fn, sluice, kafka):
    """96 partitions of 2,000 records of 200 bytes, max_bytes_buffered 1 MiB: every record is
    delivered and the process's peak RSS stays under BOUND_KB."""
    topic = "t-" + uuid.uuid4().hex[:10]
    kt.ctl("topic %s %d" % (topic, PARTITIONS))
    total = PARTITIONS * PER_PARTITION
    kt.produce_generated(kafka["KAFKA_BOOTSTRAP"], topic, total, size=SIZE)
    m = {
        "SelfManagedEventSource": {
            "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": kafka["KAFKA_BOOTSTRAP"].split(",")}},
        "Topics": [topic],
        "FunctionName": "hook",
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": 1000,
        "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "g-" + topic},
        "max_bytes_buffered": "1MiB",
        "rdkafka": {"session.timeout.ms": "6000"},
    }
    s = sluice(base_config(tmp_path, {"hook": http_fn(fn.url + FN)}, [m]))
    count = Counter(fn)
    try:
        wait_until(lambda: count() >= total, 120, "%d records delivered" % total, proc=s)
    finally:
        hwm = vm_hwm_kb(s.pid)
        print("delivered %d of %d records, peak RSS %d KB" % (count(), total, hwm))
    assert count() == total, "delivered %d of %d" % (count(), total)
    assert hwm <= BOUND_KB, "peak RSS %d KB over the %d KB bound" % (hwm, BOUND_KB)
