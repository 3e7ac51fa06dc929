"""A Firehose data-transformation function for config/firehose-transform.json and
config/firehose-partitioned.json, run by sluice's exec function type: the event (Firehose's
transformation event: invocationId, deliveryStreamArn, region, records with recordId,
approximateArrivalTimestamp and base64 data) arrives on stdin, the answer goes to stdout.

Each record is a JSON object: records with "drop": true are Dropped, records that are not JSON
fail (ProcessingFailed: sluice writes them under ErrorOutputPrefix as processing-failed), the
others are returned Ok with a "seen_by" field added, one line each, and the partition key
"kind" (metadata.partitionKeys, for !{partitionKeyFromLambda:kind}).
"""
import base64
import json
import sys


def handler(event):
    out = []
    for r in event["records"]:
        try:
            doc = json.loads(base64.b64decode(r["data"]))
        except ValueError:
            out.append({"recordId": r["recordId"], "result": "ProcessingFailed"})
            continue
        if isinstance(doc, dict) and doc.get("drop"):
            out.append({"recordId": r["recordId"], "result": "Dropped"})
            continue
        doc["seen_by"] = "firehose_transform"
        data = base64.b64encode((json.dumps(doc) + "\n").encode()).decode()
        kind = str(doc.get("kind", "other")) if isinstance(doc, dict) else "other"
        out.append({"recordId": r["recordId"], "result": "Ok", "data": data,
                    "metadata": {"partitionKeys": {"kind": kind}}})
    return {"records": out}


if __name__ == "__main__":
    json.dump(handler(json.load(sys.stdin)), sys.stdout)
