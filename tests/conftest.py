"""Fixtures for the integration tests: a composed stack per test session, always torn down."""

import subprocess

import pytest

from composed import composed_stack
from load import REPORTS


def require_docker():
    try:
        subprocess.run(["docker", "info"], capture_output=True, check=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        pytest.exit(
            "Docker engine not reachable: start it, or run `make docker-host` (as root, on Debian) first",
            returncode=2,
        )


@pytest.fixture(scope="session")
def stack():
    """compose.yaml alone (the images as built, without compose.override.yaml's mounts) with
    one web replica."""
    require_docker()
    with composed_stack("dev") as composed:
        yield composed


def pytest_terminal_summary(terminalreporter):
    """Print each reliability scenario's '0 failed of N' line at the end of the run."""
    if REPORTS:
        terminalreporter.section("reliability: requests failed of requests sent, per scenario")
        for line in REPORTS:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def busy_stack():
    """A stack for the reliability scenarios: no per-client limits (all test traffic comes
    from one address, like a benchmark) and the test-only fault endpoints on."""
    require_docker()
    with composed_stack("busy", env={"NGINX_LIMITS": "off", "APP_FAULT_INJECTION": "on"}) as composed:
        yield composed
