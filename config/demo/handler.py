"""The demo's function: a Lambda-style handler run by sluice's exec function type.

sluice writes the event (Kinesis-shaped records, one per line of the input files) to stdin and
reads the response from stdout; anything printed to stderr shows up in sluice's log under the
function's name. This one decodes each record, counts log levels and reports the batch.
"""
import base64
import collections
import json
import os
import sys


def handler(event):
    records = event["Records"]
    levels = collections.Counter()
    source = os.path.basename(records[0]["kinesis"]["partitionKey"])
    for record in records:
        line = base64.b64decode(record["kinesis"]["data"]).decode("utf-8")
        try:
            levels[json.loads(line).get("level", "?")] += 1
        except ValueError:
            levels["not-json"] += 1
    first = records[0]["kinesis"]["sequenceNumber"]
    last = records[-1]["kinesis"]["sequenceNumber"]
    counts = ", ".join(f"{level} {n}" for level, n in sorted(levels.items()))
    print(f"{len(records)} records from {source} (bytes {first}..{last}): {counts}",
          file=sys.stderr)
    return {"batchItemFailures": []}


if __name__ == "__main__":
    json.dump(handler(json.load(sys.stdin)), sys.stdout)
