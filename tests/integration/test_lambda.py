"""File source -> lambda function (Invoke API) against fnserver in Lambda mode."""

import json

from fnserver import Reply
from helpers import base_config, file_mapping, wait_until, write_lines

CREDS = {"AWS_ACCESS_KEY_ID": "AKIDTESTEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secretsecret",
         "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None}


def lambda_cfg(tmp_path, srv, name="myfn", **mkw):
    log = tmp_path / "in.log"
    return base_config(tmp_path, {"remote": {"type": "lambda", "endpoint": srv.url,
                                             "function_name": name, "timeout": 10}},
                       [file_mapping(log, "remote", **mkw)]), log


def test_lambda_invoke_signed(tmp_path, lambda_fn, sluice):
    cfg, log = lambda_cfg(tmp_path, lambda_fn)
    write_lines(log, ["l0", "l1"])
    s = sluice(cfg, args=["--until-idle=1"], env_extra=CREDS)
    assert s.wait(30) == 0, s.log_tail()
    reqs = lambda_fn.requests()
    assert len(reqs) == 1, reqs
    r = reqs[0]
    assert r.method == "POST"
    assert r.path == "/2015-03-31/functions/myfn/invocations"
    assert r.header("X-Amz-Invocation-Type") == "RequestResponse"
    auth = r.header("Authorization") or ""
    assert auth.startswith("AWS4-HMAC-SHA256"), auth
    assert "Credential=AKIDTESTEXAMPLE/" in auth and "/us-east-1/lambda/aws4_request" in auth, auth
    assert "Signature=" in auth and "SignedHeaders=" in auth
    assert r.header("X-Amz-Date"), "SigV4 needs X-Amz-Date"
    assert lambda_fn.lines() == ["l0", "l1"]
    assert "secretsecret" not in s.log()


def test_lambda_unsigned_without_credentials(tmp_path, lambda_fn, sluice, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws profile files either
    cfg, log = lambda_cfg(tmp_path, lambda_fn)
    write_lines(log, ["u0"])
    s = sluice(cfg, args=["--until-idle=1"], env_extra={"HOME": str(tmp_path)})
    assert s.wait(30) == 0, s.log_tail()
    assert lambda_fn.lines() == ["u0"]
    assert lambda_fn.requests()[0].header("Authorization") is None


def test_lambda_function_error_retried(tmp_path, lambda_fn, sluice):
    cfg, log = lambda_cfg(tmp_path, lambda_fn, batch=5)
    want = ["f%d" % i for i in range(8)]
    write_lines(log, want)
    lambda_fn.push(Reply(200, function_error="Unhandled",
                         body={"errorMessage": "boom", "errorType": "Error"}),
                   Reply(200, function_error="Handled"),
                   Reply(429, body={"Type": "User", "message": "Rate exceeded"},
                         headers={"X-Amzn-ErrorType": "TooManyRequestsException"}),
                   Reply(500, body={"Type": "Service"},
                         headers={"X-Amzn-ErrorType": "ServiceException"}))
    s = sluice(cfg, env_extra=CREDS)
    wait_until(lambda: len(lambda_fn.lines()) >= 8, 20, "8 records after errors", proc=s)
    reqs = lambda_fn.requests()
    first = reqs[0].records()
    for r in reqs[:5]:
        assert r.records() == first, "the failed batch must be retried unchanged"
    assert lambda_fn.lines() == want


def test_lambda_non_json_response_is_success(tmp_path, lambda_fn, sluice):
    cfg, log = lambda_cfg(tmp_path, lambda_fn)
    write_lines(log, ["n0"])
    lambda_fn.set_default(Reply(200, body=b"this is not json"))
    s = sluice(cfg, args=["--until-idle=1"])
    assert s.wait(30) == 0, s.log_tail()
    assert len(lambda_fn.requests()) == 1


def test_unknown_function_uses_endpoint_env(tmp_path, lambda_fn, sluice):
    log = tmp_path / "in.log"
    write_lines(log, ["x0", "x1", "x2"])
    cfg = base_config(tmp_path, {}, [file_mapping(log, "other-fn")])
    s = sluice(cfg, args=["--until-idle=1"],
               env_extra=dict(CREDS, AWS_ENDPOINT_URL_LAMBDA=lambda_fn.url,
                              AWS_ENDPOINT_URL="http://127.0.0.1:9/never"))
    assert s.wait(30) == 0, s.log_tail()
    reqs = lambda_fn.requests()
    assert reqs and reqs[0].path == "/2015-03-31/functions/other-fn/invocations"
    assert reqs[0].header("X-Amz-Invocation-Type") == "RequestResponse"
    assert lambda_fn.lines() == ["x0", "x1", "x2"]


def test_unknown_function_uses_generic_endpoint_env(tmp_path, lambda_fn, sluice):
    log = tmp_path / "in.log"
    write_lines(log, ["g0"])
    cfg = base_config(tmp_path, {}, [file_mapping(log, "gen-fn")])
    s = sluice(cfg, args=["--until-idle=1"], env_extra=dict(CREDS, AWS_ENDPOINT_URL=lambda_fn.url))
    assert s.wait(30) == 0, s.log_tail()
    assert [r.path for r in lambda_fn.requests()] == ["/2015-03-31/functions/gen-fn/invocations"]
    body = json.loads(lambda_fn.requests()[0].body)
    assert body["Records"][0]["eventSourceARN"] == "file://" + str(log)
