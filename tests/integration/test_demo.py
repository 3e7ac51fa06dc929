"""The demo from the README: `sluice run --until-idle config/demo.json` from the repo root."""

import os
import subprocess

import pytest

from helpers import REPO, sluice_env


def test_demo_runs(sluice_bin):
    demo = os.path.join(REPO, "config", "demo.json")
    if not os.path.exists(demo):
        pytest.skip("config/demo.json is missing")
    try:
        r = subprocess.run([sluice_bin, "run", "--until-idle", "config/demo.json"], cwd=REPO,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=120, env=sluice_env())
    except subprocess.TimeoutExpired:
        pytest.fail("the demo did not finish within 120 s")
    assert r.returncode == 0, "demo exited %d\n%s\n%s" % (r.returncode, r.stdout, r.stderr)
    r2 = subprocess.run([sluice_bin, "validate", "config/demo.json"], cwd=REPO,
                        capture_output=True, text=True, timeout=30, env=sluice_env())
    assert r2.returncode == 0, r2.stderr
