"""The Redis Streams example's function (config/redis.json): reports each batch of a Redis
stream's Kinesis-shaped event with its entry ids, and decodes each entry's fields (the base64
of a JSON object, field -> value) as a handler would."""
import base64
import json
import sys

event = json.load(sys.stdin)
records = event["Records"]
stream = records[0]["kinesis"]["partitionKey"]
fields = [json.loads(base64.b64decode(r["kinesis"]["data"])) for r in records]
print(f"{records[0]['eventSource']}: {len(records)} entries of {stream}, "
      f"ids {records[0]['kinesis']['sequenceNumber']}..{records[-1]['kinesis']['sequenceNumber']}, "
      f"first fields {json.dumps(fields[0], sort_keys=True)}", file=sys.stderr)
json.dump({"batchItemFailures": []}, sys.stdout)
