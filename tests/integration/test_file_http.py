"""File source -> http function: event shape, batching, following files, rotation,
truncation, retries, starting positions."""

import base64
import json
import os
import re
import shutil
import time

from fnserver import Reply
from helpers import file_mapping, http_fn, base_config, wait_until, write_lines

PATH = "/events"


def cfg_one(tmp_path, fn, glob, **mkw):
    return base_config(tmp_path, {"hook": http_fn(fn.url + PATH, timeout=5)},
                       [file_mapping(glob, "hook", **mkw)])


def offsets_of(lines):
    """Byte offset of each line when `lines` are written one per line from offset 0."""
    out, off = [], 0
    for ln in lines:
        out.append(off)
        off += len(ln.encode()) + 1
    return out


def by_file(records):
    d = {}
    for key, seq, line in records:
        d.setdefault(key, []).append((seq, line.decode()))
    return d


def test_event_shape_exact(tmp_path, fn, sluice):
    log = tmp_path / "shape.log"
    line = 'hello "world" \u00e9 \\ {"k":1}'
    write_lines(log, ["first line", line])
    t0 = time.time()
    s = sluice(base_config(tmp_path, {"hook": http_fn(fn.url + PATH)},
                           [file_mapping(log, "hook", batch=1)], region="eu-west-3"))
    wait_until(lambda: len(fn.records()) >= 2, 10, "two records", proc=s)
    reqs = [r for r in fn.requests() if r.ok]
    assert len(reqs) == 2, reqs
    body = reqs[1].body
    m = re.search(rb'"approximateArrivalTimestamp":(-?[0-9]+(?:\.[0-9]+)?)', body)
    assert m, body
    ts_text = m.group(1).decode()
    assert re.fullmatch(r"[0-9]+(\.[0-9]{1,3})?", ts_text), \
        "approximateArrivalTimestamp %r: want seconds with at most 3 decimals" % ts_text
    ts = float(ts_text)
    assert t0 - 60 <= ts <= time.time() + 60, (t0, ts)
    p = str(log)
    off = len("first line") + 1
    data = base64.b64encode(line.encode()).decode()
    # eventID: "<path>:<generation>:<offset>", the generation a number naming this content
    gen = reqs[0].json["Records"][0]["eventID"][len(p) + 1:].split(":")[0]
    assert gen.isdigit(), reqs[0].json["Records"][0]["eventID"]
    expected = (
        '{"Records":[{"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":"%s",'
        '"sequenceNumber":"%d","data":"%s","approximateArrivalTimestamp":%s},'
        '"eventSource":"sluice:file","eventVersion":"1.0","eventID":"%s:%s:%d",'
        '"eventName":"sluice:file:record","eventSourceARN":"file://%s","awsRegion":"eu-west-3"}]}'
        % (p, off, data, ts_text, p, gen, off, p)).encode()
    assert body == expected, "\n got: %r\nwant: %r" % (body, expected)
    # the first event too, at offset 0
    assert reqs[0].json["Records"][0]["kinesis"]["sequenceNumber"] == "0"
    assert reqs[0].json["Records"][0]["eventID"] == "%s:%s:0" % (p, gen)
    assert reqs[0].method == "POST" and reqs[0].path == PATH


def test_several_files_in_order_with_offsets(tmp_path, fn, sluice):
    d = tmp_path / "logs"
    d.mkdir()
    want = {}
    for i in range(3):
        ls = ["file%d line %d %s" % (i, j, "x" * (j % 7)) for j in range(50)]
        write_lines(d / ("f%d.ndjson" % i), ls)
        want[str(d / ("f%d.ndjson" % i))] = list(zip(offsets_of(ls), ls))
    write_lines(d / "other.txt", ["not matched"])
    s = sluice(cfg_one(tmp_path, fn, str(d) + "/*.ndjson", batch=7))
    wait_until(lambda: len(fn.records()) >= 150, 15, "150 records", proc=s)
    got = by_file(fn.records())
    assert set(got) == set(want), got.keys()
    for k in want:
        assert got[k] == want[k], k
    assert "not matched" not in fn.lines()
    for r in fn.requests():
        assert len(r.records()) <= 7
        assert len({k for k, _, _ in r.records()}) == 1, "a batch mixes files: %r" % r


def test_batch_size(tmp_path, fn, sluice):
    log = tmp_path / "b.log"
    write_lines(log, ["line %02d" % i for i in range(25)])
    s = sluice(cfg_one(tmp_path, fn, log, batch=10, window=1))
    wait_until(lambda: len(fn.records()) >= 25, 10, "25 records", proc=s)
    sizes = [len(r.records()) for r in fn.requests()]
    assert sizes == [10, 10, 5], sizes
    assert fn.lines() == ["line %02d" % i for i in range(25)]


def test_batching_window_collects(tmp_path, fn, sluice):
    log = tmp_path / "w.log"
    s = sluice(cfg_one(tmp_path, fn, log, batch=1000, window=2))
    write_lines(log, ["a", "b", "c"])
    wait_until(lambda: len(fn.records()) >= 3, 10, "3 records", proc=s)
    # all three were written at once, well inside a 2 s window: one batch
    assert [len(r.records()) for r in fn.requests()] == [3]


def test_partial_last_line_held(tmp_path, fn, sluice):
    log = tmp_path / "p.log"
    with open(log, "wb") as f:
        f.write(b"a\nb\npartial")
    s = sluice(cfg_one(tmp_path, fn, log, batch=10))
    wait_until(lambda: len(fn.records()) >= 2, 10, "a and b", proc=s)
    with open(log, "ab") as f:
        f.write(b"-rest\nc\n")
    wait_until(lambda: "c" in fn.lines(), 10, "line c", proc=s)
    assert fn.lines() == ["a", "b", "partial-rest", "c"]
    recs = fn.records()
    assert [seq for _, seq, _ in recs] == [0, 2, 4, 17]


def test_follows_growth_and_new_files(tmp_path, fn, sluice):
    d = tmp_path / "d"
    d.mkdir()
    write_lines(d / "a.log", ["a0"])
    s = sluice(cfg_one(tmp_path, fn, str(d) + "/*.log", batch=10))
    wait_until(lambda: fn.lines() == ["a0"], 10, "a0", proc=s)
    write_lines(d / "a.log", ["a1", "a2"])
    wait_until(lambda: len(fn.lines()) >= 3, 10, "a1 a2 after growth", proc=s)
    write_lines(d / "b.log", ["b0", "b1"])
    write_lines(d / "c.txt", ["nope"])
    wait_until(lambda: len(fn.lines()) >= 5, 15, "new file b.log picked up", proc=s)
    write_lines(d / "b.log", ["b2"])
    write_lines(d / "a.log", ["a3"])
    wait_until(lambda: len(fn.lines()) >= 7, 10, "b2 a3", proc=s)
    got = by_file(fn.records())
    assert [ln for _, ln in got[str(d / "a.log")]] == ["a0", "a1", "a2", "a3"]
    assert [ln for _, ln in got[str(d / "b.log")]] == ["b0", "b1", "b2"]
    assert "nope" not in fn.lines()


def test_missing_file_then_created(tmp_path, fn, sluice):
    log = tmp_path / "later" / "x.log"
    s = sluice(cfg_one(tmp_path, fn, log, batch=10))
    wait_until(lambda: os.path.exists(s.stderr_path), 5, "sluice log file")
    # sluice must keep running with nothing to read
    log.parent.mkdir()
    write_lines(log, ["x0", "x1"])
    wait_until(lambda: fn.lines() == ["x0", "x1"], 15, "lines of a file created late", proc=s)


def _rotation(tmp_path, fn, sluice, glob):
    d = tmp_path / "rot"
    d.mkdir()
    app = d / "app.log"
    write_lines(app, ["L%04d" % i for i in range(0, 100)])
    s = sluice(cfg_one(tmp_path, fn, glob(d), batch=50))
    wait_until(lambda: len(fn.lines()) >= 100, 10, "first 100", proc=s)
    # the logger writes a few more lines, then rotation renames, then a new file starts
    write_lines(app, ["L%04d" % i for i in range(100, 150)])
    os.rename(app, d / "app.log.1")
    write_lines(d / "app.log.1", ["L%04d" % i for i in range(150, 160)])  # late writer
    write_lines(app, ["L%04d" % i for i in range(160, 200)], mode="w")
    wait_until(lambda: len(fn.lines()) >= 200, 15, "200 lines after rotation", proc=s)
    write_lines(app, ["L%04d" % i for i in range(200, 210)])
    wait_until(lambda: len(fn.lines()) >= 210, 10, "210 lines", proc=s)
    got = fn.lines()
    want = ["L%04d" % i for i in range(210)]
    dups = sorted({x for x in got if got.count(x) > 1})
    assert not dups, "duplicated after rotation: %s" % dups[:20]
    assert sorted(got) == want, "lost: %s" % sorted(set(want) - set(got))[:20]
    return s


def test_rotation_by_rename_glob_matches_both(tmp_path, fn, sluice):
    _rotation(tmp_path, fn, sluice, lambda d: str(d) + "/app.log*")


def test_rotation_by_rename_exact_path(tmp_path, fn, sluice):
    _rotation(tmp_path, fn, sluice, lambda d: d / "app.log")


def test_rotation_survives_restart(tmp_path, fn, sluice):
    """Checkpoints are keyed so a rotated file is not re-read after a restart."""
    d = tmp_path / "rr"
    d.mkdir()
    app = d / "app.log"
    write_lines(app, ["R%03d" % i for i in range(50)])
    cfg = cfg_one(tmp_path, fn, str(d) + "/app.log*", batch=20)
    s = sluice(cfg)
    wait_until(lambda: len(fn.lines()) >= 50, 10, "50", proc=s)
    assert s.stop() == 0
    os.rename(app, d / "app.log.1")
    write_lines(app, ["R%03d" % i for i in range(50, 60)], mode="w")
    s2 = sluice(cfg, args=["--until-idle=1"])
    assert s2.wait(30) == 0, s2.log_tail()
    got = fn.lines()
    assert sorted(got) == ["R%03d" % i for i in range(60)], got


def test_truncation_copytruncate(tmp_path, fn, sluice):
    d = tmp_path / "tr"
    d.mkdir()
    app = d / "app.log"
    old = ["old line number %03d" % i for i in range(100)]
    write_lines(app, old)
    s = sluice(cfg_one(tmp_path, fn, app, batch=50))
    wait_until(lambda: len(fn.lines()) >= 100, 10, "old lines", proc=s)
    shutil.copyfile(app, d / "app.log.1")
    with open(app, "r+b") as f:
        f.truncate(0)
    new = ["new %d" % i for i in range(5)]  # shorter than the old content
    write_lines(app, new)
    wait_until(lambda: len(fn.lines()) >= 105, 15, "lines after truncation", proc=s)
    got = fn.lines()
    assert got == old + new, got[100:]
    assert [seq for _, seq, _ in fn.records()[100:]] == offsets_of(new)


def test_until_idle_exits_zero(tmp_path, fn, sluice):
    log = tmp_path / "i.log"
    write_lines(log, ["i%d" % i for i in range(30)])
    t0 = time.monotonic()
    s = sluice(cfg_one(tmp_path, fn, log, batch=10), args=["--until-idle=1"])
    rc = s.wait(30)
    took = time.monotonic() - t0
    assert rc == 0, s.log_tail()
    assert fn.lines() == ["i%d" % i for i in range(30)]
    assert took >= 0.9, "exited after %.2fs, before 1 s of idleness" % took
    assert took < 15, took


def test_until_idle_default(tmp_path, fn, sluice):
    log = tmp_path / "i.log"
    write_lines(log, ["x"])
    s = sluice(cfg_one(tmp_path, fn, log), args=["--until-idle"])
    assert s.wait(30) == 0, s.log_tail()
    assert fn.lines() == ["x"]


def test_until_idle_waits_for_inflight(tmp_path, fn, sluice):
    log = tmp_path / "i.log"
    write_lines(log, ["slow"])
    fn.push(Reply(200, delay=2.5))
    s = sluice(cfg_one(tmp_path, fn, log), args=["--until-idle=1"])
    assert s.wait(30) == 0, s.log_tail()
    assert fn.lines() == ["slow"]
    assert fn.requests()[0].answered, "sluice exited while the invocation was in flight"


def test_throttles_and_errors_retried(tmp_path, fn, sluice):
    log = tmp_path / "t.log"
    want = ["t%02d" % i for i in range(30)]
    write_lines(log, want)
    fn.push(Reply(429), Reply(503), Reply(500), Reply(429), Reply(502), Reply(404))
    s = sluice(cfg_one(tmp_path, fn, log, batch=10))
    wait_until(lambda: len(fn.lines()) >= 30, 20, "30 records after retries", proc=s)
    reqs = fn.requests()
    assert [r.status for r in reqs[:6]] == [429, 503, 500, 429, 502, 404]
    first = [ln for _, _, ln in reqs[0].records()]
    for r in reqs[:7]:  # the same batch, again and again, never skipped
        assert [ln for _, _, ln in r.records()] == first, r
    assert fn.lines() == want


def test_connection_refused_retried(tmp_path, fn, sluice):
    """A function that is down: transport errors are retried until it comes up."""
    from fnserver import FnServer
    log = tmp_path / "c.log"
    write_lines(log, ["c0", "c1"])
    late = FnServer()
    late.start()
    port = late.port
    late.stop()  # the port is now closed
    s = sluice(base_config(tmp_path, {"hook": http_fn("http://127.0.0.1:%d/x" % port)},
                           [file_mapping(log, "hook")]))
    wait_until(lambda: s.log() != "", 10, "some log output", proc=s)
    late = FnServer(port=port)
    try:
        late.start()
    except OSError:
        return  # port taken by someone else meanwhile; nothing to check
    try:
        wait_until(lambda: late.lines() == ["c0", "c1"], 20, "delivery once up", proc=s)
    finally:
        s.stop()
        late.stop()


def test_hanging_server_times_out_and_retries(tmp_path, fn, sluice):
    log = tmp_path / "h.log"
    write_lines(log, ["h0", "h1"])
    fn.push(Reply(200, hang=True))
    t0 = time.monotonic()
    s = sluice(base_config(tmp_path, {"hook": http_fn(fn.url + PATH, timeout=1)},
                           [file_mapping(log, "hook")]))
    wait_until(lambda: fn.lines() == ["h0", "h1"], 15, "delivery after a timeout", proc=s)
    took = time.monotonic() - t0
    reqs = fn.requests()
    assert len(reqs) >= 2 and not reqs[0].answered
    assert [ln for _, _, ln in reqs[0].records()] == [b"h0", b"h1"]
    assert took >= 0.9, "retried before the 1 s timeout (%.2fs)" % took


def test_latest_vs_trim_horizon(tmp_path, fn, sluice):
    log = tmp_path / "lt.log"
    old = ["old%d" % i for i in range(5)]
    write_lines(log, old)
    cfg = base_config(tmp_path, {"th": http_fn(fn.url + "/th"), "lt": http_fn(fn.url + "/lt")},
                      [file_mapping(log, "th", start="TRIM_HORIZON"),
                       file_mapping(log, "lt", start="LATEST")])
    s = sluice(cfg)
    wait_until(lambda: fn.lines(path="/th") == old, 10, "TRIM_HORIZON gets old lines", proc=s)
    # LATEST starts at the end of the file when first seen; we do not know that moment, so
    # keep appending until the LATEST mapping receives something
    n = [0]

    def append_and_check():
        write_lines(log, ["new%d" % n[0]])
        n[0] += 1
        return fn.lines(path="/lt")

    wait_until(append_and_check, 20, "LATEST mapping receives new lines", proc=s)
    write_lines(log, ["new%d" % n[0]])
    n[0] += 1
    allnew = ["new%d" % i for i in range(n[0])]
    wait_until(lambda: fn.lines(path="/th") == old + allnew, 10, "TRIM_HORIZON all", proc=s)
    wait_until(lambda: fn.lines(path="/lt")[-1:] == [allnew[-1]], 10, "LATEST last", proc=s)
    lt = fn.lines(path="/lt")
    assert not set(lt) & set(old), "LATEST delivered old lines: %s" % lt
    k = allnew.index(lt[0])
    assert lt == allnew[k:], "LATEST must be a contiguous suffix: %s" % lt


def test_two_mappings_same_file(tmp_path, fn, sluice):
    log = tmp_path / "two.log"
    want = ["two%03d" % i for i in range(120)]
    write_lines(log, want)
    cfg = base_config(tmp_path, {"a": http_fn(fn.url + "/a"), "b": http_fn(fn.url + "/b")},
                      [file_mapping(log, "a", batch=25), file_mapping(log, "b", batch=40)])
    s = sluice(cfg, args=["--until-idle=1"])
    assert s.wait(30) == 0, s.log_tail()
    assert fn.lines(path="/a") == want
    assert fn.lines(path="/b") == want
    assert max(len(r.records()) for r in fn.requests("/a")) == 25
    assert max(len(r.records()) for r in fn.requests("/b")) == 40


def test_headers_with_env_expansion(tmp_path, fn, sluice):
    log = tmp_path / "hd.log"
    write_lines(log, ["h"])
    cfg = base_config(tmp_path, {"hook": http_fn(fn.url + PATH,
                                                 headers={"X-Token": "${HOOK_TOKEN}"})},
                      [file_mapping(log, "hook")])
    s = sluice(cfg, args=["--until-idle=1"], env_extra={"HOOK_TOKEN": "s3cr3t-tok"})
    assert s.wait(30) == 0, s.log_tail()
    r = fn.requests()[0]
    assert r.header("X-Token") == "s3cr3t-tok"
    assert "application/json" in (r.header("Content-Type") or "")
    assert json.loads(r.body)["Records"][0]["eventSource"] == "sluice:file"
    assert "s3cr3t-tok" not in s.log(), "a header secret leaked into the log"


def test_keepalive_reuses_connection(tmp_path, fn, sluice):
    log = tmp_path / "ka.log"
    write_lines(log, ["k%d" % i for i in range(20)])
    s = sluice(cfg_one(tmp_path, fn, log, batch=2), args=["--until-idle=1"])
    assert s.wait(30) == 0, s.log_tail()
    peers = {r.peer for r in fn.requests()}
    assert len(fn.requests()) == 10
    assert len(peers) <= 2, "no keep-alive: %d connections for 10 requests" % len(peers)
