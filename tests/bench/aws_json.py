"""A plain AWS JSON-protocol client for the benchmark helpers (bench_kinesis_loop.py,
bench_sqs_loop.py): one keep-alive connection, one request at a time, as the baselines they time
need. The test servers (kinesalite, fauxqs) check no signature, so requests carry a dummy SigV4
Authorization header."""

import datetime
import http.client
import json
import urllib.parse


class Client:
    """Calls `op` of an AWS JSON service: target_prefix "Kinesis_20131202" with JSON 1.1, or
    "AmazonSQS" with JSON 1.0."""

    def __init__(self, endpoint, service, target_prefix, json_version):
        u = urllib.parse.urlparse(endpoint)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        self.target_prefix = target_prefix
        self.content_type = "application/x-amz-json-" + json_version
        self.auth = ("AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/%s/aws4_request, "
                     "SignedHeaders=host;x-amz-date, Signature=0" % service)

    def call(self, op, body):
        data = json.dumps(body).encode()
        self.conn.request("POST", "/", body=data, headers={
            "Content-Type": self.content_type,
            "X-Amz-Target": self.target_prefix + "." + op,
            "X-Amz-Date": datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%SZ"),
            "Authorization": self.auth})
        r = self.conn.getresponse()
        out = r.read()
        if r.status != 200:
            raise RuntimeError("%s: %d %s" % (op, r.status, out[:300]))
        return json.loads(out) if out else {}
