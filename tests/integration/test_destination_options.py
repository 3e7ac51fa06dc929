"""A mapping's destination_options reach its on-failure destination's sink in a real run: an
http(s) destination's `timeout` cuts a write the destination is slow to answer, which is then
written again (the sink's default, 30 s, would have waited for the slow answer)."""

import threading

from fnserver import FnServer, Reply
from helpers import (base_config, checkpoint_positions, exit_counters, file_mapping, http_fn,
                     run_until_idle, write_lines)


def test_http_destination_timeout_from_options(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    write_lines(log, ["slow"])
    fn.set_default(Reply(500))
    seen = [0]
    lock = threading.Lock()

    def first_is_slow(rq):
        with lock:
            seen[0] += 1
            first = seen[0] == 1
        return Reply(200, delay=20) if first else None

    with FnServer(hook=first_is_slow) as dest:
        m = file_mapping(log, "hook", batch=1, MaximumRetryAttempts=0)
        m["DestinationConfig"] = {"OnFailure": {"Destination": dest.url + "/dest"}}
        m["destination_options"] = {"timeout": "500ms"}
        config = base_config(tmp_path, {"hook": http_fn(fn.url + "/fn")}, [m])
        s = run_until_idle(sluice, config, timeout=15)
        reqs = dest.requests()
        assert len(reqs) == 2, reqs
        assert not reqs[0].answered and reqs[1].answered, reqs
        assert reqs[0].json == reqs[1].json  # the same invocation record, written again
        assert "after 50" in s.log_tail(), s.log_tail()  # "timed out after 50x milliseconds"
        assert exit_counters(s).get("OnFailureDestinationDeliveredEventCount") == 1
        assert list(checkpoint_positions(tmp_path / "state").values()) == [5]
