"""A STAND-IN for AWS's API, answered locally by moto's server: never AWS itself. It lets
the tests run the real AWS CLI's ECR login against something that answers like ECR."""

import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from composed import free_loopback_port
from ecs_stand_in import STAND_IN_SETTINGS

VENV_BIN = Path(sys.executable).parent


@contextmanager
def aws_api_stand_in(folder):
    """moto's server on a free loopback port; yields the environment that points the AWS
    CLI and SDKs at it (AWS_ENDPOINT_URL) with stand-in credentials."""
    port = free_loopback_port()
    folder.mkdir(parents=True, exist_ok=True)
    log = (folder / "moto.log").open("w")
    process = subprocess.Popen(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(endpoint, timeout=2)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"moto server did not start: {(folder / 'moto.log').read_text()}") from None
                time.sleep(0.2)
        yield {**STAND_IN_SETTINGS, "AWS_ENDPOINT_URL": endpoint}
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
