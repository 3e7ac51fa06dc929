#!/usr/bin/python3
# fh_transform.py: a Firehose transformation function for test_fh_transform.c, run by the exec
# function type. It appends the event it got (one line) to $FH_LOG, then answers as $FH_MODE says:
#   mix         per record, by its data: "drop..." Dropped, "fail..." ProcessingFailed, else Ok
#               with the data upper-cased and, for JSON data with "customer", partitionKeys
#               {"customer_id": <it>}
#   missing     mix without the last record          unknown    the last record's id replaced
#   duplicated  the first record listed twice       badbase64  an Ok with data that is not base64
#   notjson     "hello"                              badresult  a result of "Maybe"
#   error       exits 1 (a function error)           sleep      says so on stderr, sleeps 30 s
#   fail:N      exits 1 for the first N invocations (counted in $FH_LOG), then mix
import base64
import json
import os
import sys
import time

event = sys.stdin.read()
log = os.environ["FH_LOG"]
with open(log, "a") as f:
    f.write(event.replace("\n", " ") + "\n")
mode = os.environ.get("FH_MODE", "mix")
if mode == "error":
    sys.exit(1)
if mode == "sleep":
    # a line on stderr wakes the test's loop: the event was logged
    sys.stderr.write("sleeping\n")
    sys.stderr.flush()
    time.sleep(30)
if mode.startswith("fail:"):
    with open(log) as f:
        if sum(1 for _ in f) <= int(mode[5:]):
            sys.exit(1)
if mode == "notjson":
    print("hello")
    sys.exit(0)


def answer(r):
    data = base64.b64decode(r["data"])
    if data.startswith(b"drop"):
        return {"recordId": r["recordId"], "result": "Dropped", "data": r["data"]}
    if data.startswith(b"fail"):
        return {"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]}
    out = {"recordId": r["recordId"], "result": "Ok",
           "data": base64.b64encode(data.upper()).decode()}
    try:
        doc = json.loads(data)
        if isinstance(doc, dict) and "customer" in doc:
            out["metadata"] = {"partitionKeys": {"customer_id": str(doc["customer"])}}
    except ValueError:
        pass
    return out


recs = [answer(r) for r in json.loads(event)["records"]]
if mode == "missing":
    recs = recs[:-1]
elif mode == "unknown":
    recs[-1]["recordId"] = "49546986683135544286507457936321625675700192471156785154"
elif mode == "duplicated":
    recs.insert(1, dict(recs[0]))
elif mode == "badbase64":
    recs[0] = {"recordId": recs[0]["recordId"], "result": "Ok", "data": "!!!"}
elif mode == "badresult":
    recs[0]["result"] = "Maybe"
print(json.dumps({"records": recs}))
