"""gunicorn in the web container: effective settings logged once, workers sized to usable CPUs."""

from stack import effective_settings


def usable_cpus(container):
    result = container.exec_run(["python", "-c", "import os; print(len(os.sched_getaffinity(0)))"])
    return int(result.output)


def test_effective_settings_are_logged_once_at_start(stack):
    web = stack.running("web")[0]
    settings = effective_settings(web)
    assert settings["worker_class"] == "gevent"
    assert settings["bind"] == "0.0.0.0:8000"
    assert settings["keepalive"] == "75"
    assert settings["worker_tmp_dir"] == "/dev/shm"
    assert settings["preload_app"] == "False"


def test_workers_match_the_cpus_the_container_may_use(stack):
    web = stack.running("web")[0]
    assert int(effective_settings(web)["workers"]) == usable_cpus(web)


def test_gunicorn_is_pid_1_so_it_receives_sigterm(stack):
    web = stack.running("web")[0]
    cmdline = web.exec_run(["cat", "/proc/1/cmdline"]).output.split(b"\0")
    assert b"gunicorn" in cmdline[0] or b"gunicorn" in cmdline[1], cmdline
