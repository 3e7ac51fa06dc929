"""Fixtures for sluice's integration tests (see helpers.py for the plain functions)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import helpers  # noqa: E402
from fnserver import FnServer  # noqa: E402


@pytest.fixture(scope="session")
def sluice_bin():
    return helpers.sluice_bin()


@pytest.fixture
def fn():
    """A started http-mode function server; stopped at teardown."""
    srv = FnServer(mode="http").start()
    yield srv
    srv.stop()


@pytest.fixture
def lambda_fn():
    """A started Lambda-Invoke-API-mode function server."""
    srv = FnServer(mode="lambda").start()
    yield srv
    srv.stop()


@pytest.fixture
def kafka():
    """The Kafka broker tests/services started (its services.env); a missing one skips the test
    (fails it under CI=true)."""
    sys.path.insert(0, os.path.join(helpers.REPO, "tests", "services", "kafka-tools"))
    import kafka_tools  # noqa: E402

    env = kafka_tools.services_env()
    if not env.get("KAFKA_BOOTSTRAP") or not env.get("KAFKA_CTL"):
        helpers.missing("a Kafka broker (SERVICES=kafka tests/services/start.sh)")
    return env


@pytest.fixture
def sluice(sluice_bin, tmp_path):
    """Factory: sluice(cfg_dict_or_path, args=[...], env=...) -> started Sluice.

    At teardown every process still running gets SIGTERM and must exit 0 (a crash or a
    sanitizer report fails the test); processes the test SIGKILLed are left alone."""
    made = []

    def start(cfg, args=(), env_extra=None, env=None, start=True, name=None, cwd=None):
        path = cfg if isinstance(cfg, str) else helpers.write_config(tmp_path, cfg)
        e = env if env is not None else helpers.sluice_env(env_extra)
        s = helpers.Sluice(sluice_bin, path, tmp_path, args=args, env=e, cwd=cwd,
                           name=name or "sluice%d" % len(made))
        made.append(s)
        if start:
            s.start()
        return s

    yield start
    errors = []
    for s in made:
        if s.proc is None:
            continue
        running = s.proc.poll() is None
        try:
            rc = s.stop(timeout=30)
        except AssertionError as e:
            errors.append(str(e))
            continue
        if running and rc != 0:
            errors.append("sluice exited %s on SIGTERM at teardown\n%s" % (rc, s.log_tail()))
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)
