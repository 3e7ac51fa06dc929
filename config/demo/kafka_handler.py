"""The Kafka example's function (config/kafka.json): reports each batch of a self-managed
Kafka event, which groups records by "<topic>-<partition>" and carries keys, values and
headers in AWS's shape (base64; header values as arrays of signed bytes)."""
import base64
import json
import sys

event = json.load(sys.stdin)
for where, records in event["records"].items():
    first, last = records[0]["offset"], records[-1]["offset"]
    keys = sorted({base64.b64decode(r["key"]).decode("utf-8", "replace")
                   for r in records if "key" in r})
    print(f"{event['eventSource']}: {len(records)} records from {where} "
          f"(offsets {first}..{last}), keys {keys}", file=sys.stderr)
json.dump({"batchItemFailures": []}, sys.stdout)
