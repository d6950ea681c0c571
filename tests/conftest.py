"""Fixtures for the integration tests: a composed stack per test session, always torn down."""

import subprocess

import pytest

from stack import Stack


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
    """The development stack (compose.yaml) with one web replica."""
    require_docker()
    composed = Stack("dev")
    try:
        composed.up()
        yield composed
    finally:
        composed.down()
