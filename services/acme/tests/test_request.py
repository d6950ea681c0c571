"""A renewal asked for by hand reaches the running job: finding it, and the request file."""

import json

import pytest

from renewal import request


def fake_proc(tmp_path, processes):
    for pid, argv in processes.items():
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cmdline").write_bytes(b"\0".join(argv) + b"\0")
    (tmp_path / "self").mkdir()
    return tmp_path


def test_the_job_is_found_by_its_module_among_nginx_processes(tmp_path):
    proc = fake_proc(
        tmp_path,
        {
            1: [b"nginx: master process nginx -g daemon off;"],
            7: [b"python", b"-m", b"renewal.request", b"--force"],
            9: [b"python", b"-m", b"renewal.daemon"],
        },
    )
    assert request.daemon_pid(proc) == 9


def test_no_job_running_is_said_plainly(tmp_path):
    with pytest.raises(RuntimeError, match="not running"):
        request.daemon_pid(fake_proc(tmp_path, {1: [b"nginx: master process"]}))


def test_a_request_is_taken_once(tmp_path):
    path = tmp_path / "request.json"
    assert request.take(path) == (False, "")
    path.write_text(json.dumps({"force": True, "id": "abc"}))
    assert request.take(path) == (True, "abc")
    assert request.take(path) == (False, "")
