"""File source robustness (issue 8): lines read before a truncation are delivered, LATEST
remembers where it started, event ids never repeat across file generations."""

import base64
import os

from fnserver import Reply
from helpers import base_config, file_mapping, http_fn, wait_until, write_lines

PATH = "/events"


def cfg_one(tmp_path, fn, glob, **mkw):
    return base_config(tmp_path, {"hook": http_fn(fn.url + PATH, timeout=10)},
                       [file_mapping(glob, "hook", **mkw)])


def event_ids(fn):
    """[(eventID, sequenceNumber, line)] of every successfully delivered record, in order."""
    out = []
    for rq in fn.requests():
        if not rq.ok or not isinstance(rq.json, dict):
            continue
        for r in rq.json.get("Records") or []:
            out.append((r["eventID"], int(r["kinesis"]["sequenceNumber"]),
                        base64.b64decode(r["kinesis"]["data"]).decode()))
    return out


def test_truncation_delivers_lines_read_before(tmp_path, fn, sluice):
    """A slow function keeps most of the file's lines in the source's read buffer (a fetch
    takes two batches' worth); the file is truncated in place meanwhile. Every line written
    before the truncation is delivered, then the lines written after it."""
    log = tmp_path / "trunc.log"
    old = ["old line number %04d" % i for i in range(300)]
    write_lines(log, old)
    fn.set_default(Reply(delay=0.3))
    s = sluice(cfg_one(tmp_path, fn, log, batch=5))
    wait_until(lambda: fn.count() >= 1, 10, "the first batch", proc=s)
    with open(log, "r+b") as f:
        f.truncate(0)
    new = ["new %d" % i for i in range(4)]  # much shorter than what was read
    write_lines(log, new)
    wait_until(lambda: "truncated" in s.log(), 10, "the truncation is seen", proc=s)
    fn.set_default(Reply())
    wait_until(lambda: len(fn.lines()) >= len(old) + len(new), 30,
               "every line, old and new", proc=s)
    got = fn.lines()
    assert got == old + new, (len(got), got[-10:])
    seqs = [seq for _, seq, _ in fn.records()[len(old):]]
    assert seqs == [0, 6, 12, 18], seqs


def test_latest_start_is_remembered(tmp_path, fn, sluice):
    """LATEST, stopped before any new line: the start is the checkpoint, so the lines appended
    while sluice was down are delivered by the next run."""
    log = tmp_path / "latest.log"
    write_lines(log, ["before %d" % i for i in range(3)])
    cfg = cfg_one(tmp_path, fn, log, start="LATEST")
    s = sluice(cfg)
    wait_until(lambda: "reading from offset" in s.log(), 10, "the file is opened", proc=s)
    assert s.stop() == 0, s.log_tail()
    assert fn.lines() == []
    write_lines(log, ["after 1", "after 2"])
    s2 = sluice(cfg, args=["--until-idle=1"])
    assert s2.wait(30) == 0, s2.log_tail()
    assert fn.lines() == ["after 1", "after 2"], s2.log_tail()


def test_event_ids_differ_across_rotation_and_rewrite(tmp_path, fn, sluice):
    """Offset 0 of one path in three contents: the first file, the file that replaced it by
    rotation (another inode), and that file rewritten in place. Three eventIDs."""
    log = tmp_path / "app.log"
    write_lines(log, ["first 0", "first 1"])
    s = sluice(cfg_one(tmp_path, fn, log))
    wait_until(lambda: len(fn.lines()) == 2, 10, "the first file", proc=s)
    os.rename(log, tmp_path / "app.log.1")
    write_lines(log, ["second 0"])
    wait_until(lambda: len(fn.lines()) == 3, 10, "the rotated-in file", proc=s)
    with open(log, "r+b") as f:
        f.truncate(0)
        f.write(b"third 00\n")
    wait_until(lambda: len(fn.lines()) == 4, 10, "the rewritten file", proc=s)
    recs = event_ids(fn)
    assert [ln for _, _, ln in recs] == ["first 0", "first 1", "second 0", "third 00"]
    zero = [eid for eid, seq, _ in recs if seq == 0]
    assert len(zero) == 3 and len(set(zero)) == 3, zero
    for eid, seq, _ in recs:
        path, gen, off = eid.rsplit(":", 2)
        assert path == str(log) and gen.isdigit() and off == str(seq), eid


def test_event_id_kept_when_delivered_again(tmp_path, fn, sluice):
    """A batch in flight when sluice is killed is delivered again by the next run with the
    same eventIDs, so a consumer can deduplicate it."""
    log = tmp_path / "again.log"
    write_lines(log, ["line 0", "line 1"])
    fn.push(Reply(hang=True))
    cfg = cfg_one(tmp_path, fn, log)
    s = sluice(cfg)
    wait_until(lambda: fn.count() >= 1, 10, "the first attempt", proc=s)
    first = [r["eventID"] for r in fn.requests()[0].json["Records"]]
    s.kill9()
    s2 = sluice(cfg, args=["--until-idle=1"])
    assert s2.wait(30) == 0, s2.log_tail()
    again = [eid for eid, _, _ in event_ids(fn)]
    assert again == first, (first, again)


def _holds(pid, path):
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == str(path):
                return True
        except OSError:
            pass
    return False


def test_closed_file_rotated_is_read_to_its_end(tmp_path, fn, sluice):
    """An idle file's descriptor is given back; a line appended just before it is rotated away
    (renamed out of the glob within its directory) is still delivered: the file is found again
    by its inode."""
    log = tmp_path / "app.log"
    write_lines(log, ["r0"])
    s = sluice(cfg_one(tmp_path, fn, log, rescan_interval="1s"))
    wait_until(lambda: fn.lines() == ["r0"], 10, "the first line", proc=s)
    wait_until(lambda: not _holds(s.pid, log), 10, "the idle file is closed", proc=s)
    # append through a second link outside the watched directory, so that no event names the
    # file: only the rescan can find what happened to it
    other = tmp_path / "elsewhere"
    other.mkdir()
    os.link(log, other / "link")
    with open(other / "link", "ab") as f:
        f.write(b"r1\n")
    os.rename(log, tmp_path / "app.log.1")
    write_lines(log, ["n0"])
    wait_until(lambda: sorted(fn.lines()) == ["n0", "r0", "r1"], 15, "every line", proc=s)


def test_closed_file_truncated_is_read_again(tmp_path, fn, sluice):
    """A file truncated and rewritten while sluice holds no descriptor on it (read to its end
    and idle) is read again from 0, with new eventIDs."""
    log = tmp_path / "ct.log"
    write_lines(log, ["old line %d" % i for i in range(5)])
    s = sluice(cfg_one(tmp_path, fn, log))
    wait_until(lambda: len(fn.lines()) == 5, 10, "the old lines", proc=s)
    wait_until(lambda: not _holds(s.pid, log), 10, "the idle file is closed", proc=s)
    with open(log, "r+b") as f:
        f.truncate(0)
        f.write(b"new 0\nnew 1\n")
    wait_until(lambda: len(fn.lines()) == 7, 10, "the new lines", proc=s)
    recs = event_ids(fn)
    assert [ln for _, _, ln in recs[5:]] == ["new 0", "new 1"]
    assert [seq for _, seq, _ in recs[5:]] == [0, 6]
    assert recs[0][0] != recs[5][0], (recs[0], recs[5])
