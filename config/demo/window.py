"""A tumbling window handler, for config/windows.json: counts log levels per window.

sluice passes the state the previous invocation of the window returned; this handler adds the
batch's counts to it and returns it. The final invocation of each window prints the totals.
"""
import base64
import collections
import json
import sys

event = json.load(sys.stdin)
counts = collections.Counter(event.get("state") or {})
for record in event["Records"]:
    counts[json.loads(base64.b64decode(record["kinesis"]["data"]))["level"]] += 1
if event["isFinalInvokeForWindow"]:
    window = event["window"]
    print(f"window {window['start']} .. {window['end']}: {dict(sorted(counts.items()))}",
          file=sys.stderr)
json.dump({"state": dict(counts)}, sys.stdout)
