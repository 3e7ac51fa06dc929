"""The SQS example's function (config/sqs.json): reports each batch of an SQS event and lists
the messages whose body asks to fail in batchItemFailures (ReportBatchItemFailures), so those
stay in the queue and come back after its visibility timeout, and the others are deleted."""
import json
import sys

event = json.load(sys.stdin)
records = event["Records"]
failed = [r["messageId"] for r in records if "fail" in r["body"]]
print(f"aws:sqs: {len(records)} messages from {records[0]['eventSourceARN']}, "
      f"{len(failed)} failed", file=sys.stderr)
json.dump({"batchItemFailures": [{"itemIdentifier": i} for i in failed]}, sys.stdout)
