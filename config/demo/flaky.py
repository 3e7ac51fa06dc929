"""A handler that fails some records, for config/failures.json.

It reports every record whose line has "level":"error" in batchItemFailures (so sluice
retries from the first of them) and crashes outright on a line containing "poison" (so sluice
splits the batch until that line is alone). Each call is printed to stderr, which sluice logs.
"""
import base64
import json
import sys

event = json.load(sys.stdin)
failed = []
for record in event["Records"]:
    line = base64.b64decode(record["kinesis"]["data"]).decode("utf-8")
    if "poison" in line:
        print(f"poison in a batch of {len(event['Records'])}: failing it", file=sys.stderr)
        sys.exit(1)
    if json.loads(line).get("level") == "error":
        failed.append({"itemIdentifier": record["kinesis"]["sequenceNumber"]})
print(f"{len(event['Records'])} records, {len(failed)} failed", file=sys.stderr)
json.dump({"batchItemFailures": failed}, sys.stdout)
