"""The Kinesis example's function (config/kinesis.json): reports each batch of a Kinesis event,
whose records all come from one shard, with their partition keys and sequence numbers, and
decodes the base64 data as AWS's handlers do."""
import base64
import json
import sys

event = json.load(sys.stdin)
records = event["Records"]
shard = records[0]["eventID"].rsplit(":", 1)[0]
keys = sorted({r["kinesis"]["partitionKey"] for r in records})
first = base64.b64decode(records[0]["kinesis"]["data"]).decode("utf-8", "replace")
print(f"{records[0]['eventSource']}: {len(records)} records from {shard}, keys {keys}, "
      f"first data {first}", file=sys.stderr)
json.dump({"batchItemFailures": []}, sys.stdout)
