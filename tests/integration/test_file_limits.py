"""Descriptor headroom (issue 8): many files under a low RLIMIT_NOFILE. The file source holds at
most max_open_files descriptors (by default a quarter of the soft limit), opens the others as
slots free up, and --until-idle does not stop while files wait; every record arrives."""

import base64
import json
import os
import resource
import subprocess
import time

from helpers import base_config, file_mapping, http_fn, sluice_env, wait_until, \
    write_config, write_lines

NOFILE = 128
N_FILES = 400


def make_files(d):
    d.mkdir()
    for i in range(N_FILES):
        write_lines(d / ("f%03d.log" % i), ["line of file %03d" % i])
    return sorted("line of file %03d" % i for i in range(N_FILES))


def run_limited(binary, cfg_path, tmp_path, watch_dir):
    """Runs sluice --until-idle under RLIMIT_NOFILE=NOFILE; returns (rc, stderr, the most
    descriptors it held on files of watch_dir at once)."""
    def lower():
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))

    err_path = tmp_path / "limited.stderr"
    with open(err_path, "wb") as err:
        p = subprocess.Popen([binary, "run", "--until-idle=2", cfg_path], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=err, env=sluice_env(),
                             cwd=str(tmp_path), preexec_fn=lower)
    most = [0]
    prefix = str(watch_dir) + "/"

    def sample():
        n = 0
        try:
            fds = os.listdir("/proc/%d/fd" % p.pid)
        except OSError:
            fds = []
        for fd in fds:
            try:
                if os.readlink("/proc/%d/fd/%s" % (p.pid, fd)).startswith(prefix):
                    n += 1
            except OSError:
                pass
        most[0] = max(most[0], n)
        return p.poll() is not None

    try:
        wait_until(sample, 120, "sluice --until-idle to exit")
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(10)
    return p.returncode, err_path.read_text(errors="replace"), most[0]


def test_many_files_low_nofile_http(tmp_path, fn, sluice_bin):
    d = tmp_path / "many"
    want = make_files(d)
    cfg = base_config(tmp_path, {"hook": http_fn(fn.url + "/events")},
                      [file_mapping(str(d) + "/*.log", "hook", MaximumRetryAttempts=0)])
    rc, log, most = run_limited(sluice_bin, write_config(tmp_path, cfg), tmp_path, d)
    assert rc == 0, log[-3000:]
    assert sorted(fn.lines()) == want, (len(fn.lines()), log[-3000:])
    assert 0 < most <= NOFILE // 4, "held %d descriptors on the files (cap %d)" % (
        most, NOFILE // 4)


def test_many_files_low_nofile_exec(tmp_path, sluice_bin):
    d = tmp_path / "many"
    want = make_files(d)
    out = tmp_path / "out"
    out.mkdir()
    # each invocation writes its event to a file of its own
    cmd = ["/bin/sh", "-c", 'cat > "$(mktemp "$OUT/ev.XXXXXX")"']
    cfg = base_config(tmp_path, {"sink": {"type": "exec", "command": cmd, "timeout": 30,
                                          "env": {"OUT": str(out)}}},
                      [file_mapping(str(d) + "/*.log", "sink", MaximumRetryAttempts=0)])
    rc, log, most = run_limited(sluice_bin, write_config(tmp_path, cfg), tmp_path, d)
    got = []
    for name in os.listdir(out):
        with open(out / name, "rb") as f:
            ev = json.loads(f.read() or b"{}")
        for r in ev.get("Records", []):
            got.append(base64.b64decode(r["kinesis"]["data"]).decode())
    assert rc == 0, log[-3000:]
    assert most <= NOFILE // 4, "held %d descriptors on the files" % most
    assert sorted(got) == want, (len(got), log[-3000:])





def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def test_watched_directory_sees_changes_without_polling(tmp_path, fn, sluice):
    """With the slowest poll and rescan, a line appended to a file and a new file are still
    delivered at once: the directory's watch reports them."""
    d = tmp_path / "w"
    d.mkdir()
    write_lines(d / "a.log", ["a0"])
    s = sluice(base_config(tmp_path, {"hook": http_fn(fn.url + "/events")},
                           [file_mapping(str(d) + "/*.log", "hook", poll_interval="60s",
                                         rescan_interval="1h")]))
    wait_until(lambda: fn.lines() == ["a0"], 10, "the first line", proc=s)
    write_lines(d / "a.log", ["a1"])
    wait_until(lambda: fn.lines() == ["a0", "a1"], 10, "an appended line", proc=s)
    write_lines(d / "b.log", ["b0"])
    wait_until(lambda: fn.lines() == ["a0", "a1", "b0"], 10, "a new file", proc=s)


def test_idle_files_cost_no_cpu(tmp_path, fn, sluice):
    """3,000 idle files: sluice uses under 2% of a core once started (a stat of every file every
    poll_interval took about 6%)."""
    d = tmp_path / "idle"
    d.mkdir()
    for i in range(3000):
        write_lines(d / ("f%04d.log" % i), ["line %d" % i])
    s = sluice(base_config(tmp_path, {"hook": http_fn(fn.url + "/events")},
                           [file_mapping(str(d) + "/*.log", "hook", start="LATEST")]))
    wait_until(lambda: s.log().count("reading from offset") == 3000, 30, "every file opened",
               proc=s)
    t0, c0 = time.monotonic(), cpu_seconds(s.pid)
    wait_until(lambda: time.monotonic() - t0 >= 5, 10, "5 s of idling", proc=s)
    used = (cpu_seconds(s.pid) - c0) / (time.monotonic() - t0)
    assert used < 0.02, "idle files cost %.1f%% of a core" % (100 * used)
    fds = len(os.listdir("/proc/%d/fd" % s.pid))
    assert fds < 100, "%d descriptors held for idle files" % fds
