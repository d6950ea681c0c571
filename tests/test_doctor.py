"""make doctor: on a ready machine it passes; for each problem it names what to do, without
hanging, even with no Docker engine to ask."""

import os
import socket
import subprocess

import pytest
import requests

from composed import ROOT, free_loopback_port


def doctor(**env):
    result = subprocess.run(
        ["make", "--no-print-directory", "doctor"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode, result.stdout


def test_on_a_ready_machine_every_check_passes_and_names_the_live_page():
    port = free_loopback_port()
    status, output = doctor(HTTP_BIND="127.0.0.1", HTTP_PORT=str(port))
    assert status == 0, output
    for check in (
        "Docker Engine",
        "Docker Compose",
        "buildx",
        f"port {port} on 127.0.0.1 is free",
        "base image",
    ):
        assert any(line.startswith("ok") and check in line for line in output.splitlines()), (check, output)
    # Disk space depends on the machine: a warning at worst, never a failure.
    assert any(line.startswith(("ok", "warn")) and "free on" in line for line in output.splitlines()), output
    assert f"the live page will be on http://127.0.0.1:{port}/" in output


def test_with_docker_host_pointing_nowhere_it_says_what_to_do():
    nowhere = f"tcp://127.0.0.1:{free_loopback_port()}"
    status, output = doctor(DOCKER_HOST=nowhere)
    assert status != 0
    assert f"FAIL  no Docker engine answers at DOCKER_HOST={nowhere}" in output
    assert "-> start the engine there, or unset DOCKER_HOST" in output
    assert "1 problem(s) to fix before make up" in output


def test_a_port_another_program_holds_is_named_with_a_way_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        status, output = doctor(HTTP_BIND="127.0.0.1", HTTP_PORT=str(port))
    assert status != 0
    assert f"FAIL  port {port} on 127.0.0.1 is taken by another program" in output
    assert "HTTP_PORT=8081 make up" in output


def test_a_port_another_stack_holds_names_its_container(stack):
    status, output = doctor(HTTP_BIND="127.0.0.1", HTTP_PORT=str(stack.port))
    assert status != 0
    assert f"FAIL  port {stack.port} on 127.0.0.1 is taken by the container {stack.project}-nginx-1" in output
    assert "make down" in output


def test_the_port_this_checkouts_own_stack_holds_is_fine(stack):
    # The project make up would run here, named as the stack under test is: it is that stack.
    status, output = doctor(HTTP_BIND="127.0.0.1", HTTP_PORT=str(stack.port), COMPOSE_PROJECT_NAME=stack.project)
    assert status == 0, output
    assert f"ok    port {stack.port} on 127.0.0.1 is this checkout's own stack" in output


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another user (setpriv) takes root")
def test_a_user_outside_the_docker_group_is_told_how_to_get_in():
    """The real engine, asked by a user who may not open its socket (nobody, no groups)."""
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", "scripts/doctor.sh"],
        cwd=ROOT,
        env={**os.environ, "HOME": "/tmp"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "FAIL  the Docker engine runs, but nobody may not use it" in result.stdout, result.stdout + result.stderr
    assert "sudo usermod -aG docker nobody" in result.stdout


def test_a_base_image_neither_here_nor_pullable_names_both_ways_out():
    status, output = doctor(PYTHON_IMAGE="flask-stack-test/absent:0", HTTP_PORT=str(free_loopback_port()))
    assert status != 0
    assert "FAIL  base image flask-stack-test/absent:0 is neither present nor pullable" in output
    assert "docker pull flask-stack-test/absent:0 once you are online" in output
    assert "scripts/docker-host/build-base-images.sh" in output


def test_make_up_alone_goes_from_a_checkout_to_the_live_page():
    """The README's second command: make up checks the machine, builds, starts the development
    stack and prints the live page's address, which serves the page."""
    port = free_loopback_port()
    project = f"flaskstack-make-up-{port}"
    compose = [
        "docker",
        "compose",
        "-p",
        project,
        "-f",
        "compose.yaml",
        "-f",
        "compose.db.yaml",
        "-f",
        "compose.override.yaml",
    ]
    env = {**os.environ, "HTTP_BIND": "127.0.0.1", "HTTP_PORT": str(port)}
    try:
        result = subprocess.run(
            ["make", "--no-print-directory", "up", f"COMPOSE=docker compose -p {project}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "doctor: ready for make up" in result.stdout
        (line,) = [line for line in result.stdout.splitlines() if "the live page is on" in line]
        address = line.split("the live page is on ", 1)[1].split()[0]
        assert address == f"http://127.0.0.1:{port}/", line
        page = requests.get(address, timeout=10)
        assert page.status_code == 200
        assert 'id="fire"' in page.text and "text/html" in page.headers["Content-Type"]
        # With its database, migrated: a write is stored and read back.
        write_id = f"make-up-{port}-check"
        stored = requests.post(f"{address}api/db/writes", data=b"hello", headers={"X-Request-ID": write_id}, timeout=10)
        assert stored.status_code == 201, stored.text
        assert requests.get(f"{address}api/db/writes/{write_id}", timeout=10).json()["bytes"] == 5
    finally:
        subprocess.run([*compose, "down", "--volumes", "--timeout", "40"], cwd=ROOT, env=env, capture_output=True)
