"""Unit tests of the gunicorn settings logic and of gunicorn.conf.py as gunicorn reads it."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from gunicorn.config import Config

from stack import json_logs
from stack.connection_turns import take_turns
from stack.cpus import cgroup_cpu_quota, usable_cpu_count
from stack.gunicorn_settings import (
    default_workers,
    describe,
    settings_from_env,
)

WEB_DIR = Path(__file__).resolve().parents[1]


def cgroup_v2(tmp_path, cpu_max):
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    return tmp_path


def cgroup_v1(tmp_path, quota, period=100000):
    cpu = tmp_path / "cpu"
    cpu.mkdir()
    (cpu / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (cpu / "cpu.cfs_period_us").write_text(f"{period}\n")
    return tmp_path


def test_cgroup_v2_quota_caps_the_cpu_count(tmp_path):
    assert usable_cpu_count(cgroup_v2(tmp_path, "150000 100000"), affinity=8) == 2


def test_cgroup_v2_without_quota_uses_the_affinity_mask(tmp_path):
    assert usable_cpu_count(cgroup_v2(tmp_path, "max 100000"), affinity=3) == 3


def test_cgroup_v1_quota_caps_the_cpu_count(tmp_path):
    assert usable_cpu_count(cgroup_v1(tmp_path, 50000), affinity=16) == 1


def test_cgroup_v1_unlimited_quota_is_ignored(tmp_path):
    assert cgroup_cpu_quota(cgroup_v1(tmp_path, -1)) is None


def test_affinity_smaller_than_quota_wins(tmp_path):
    assert usable_cpu_count(cgroup_v2(tmp_path, "800000 100000"), affinity=2) == 2


def test_no_cgroup_files_falls_back_to_the_affinity_mask(tmp_path):
    assert usable_cpu_count(tmp_path, affinity=5) == 5


def test_this_process_has_at_least_one_usable_cpu():
    assert 1 <= usable_cpu_count() <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize("worker_class, cpus, expected", [("sync", 2, 5), ("gthread", 2, 2), ("gevent", 4, 4)])
def test_default_workers_follow_the_worker_model(worker_class, cpus, expected):
    assert default_workers(worker_class, cpus) == expected


def test_the_address_and_port_make_the_bind():
    # The ECS task's: nginx shares web's network namespace, so only the loopback is needed.
    assert settings_from_env({"GUNICORN_HOST": "127.0.0.1", "GUNICORN_PORT": "9000"}, cpus=1)["bind"] == (
        "127.0.0.1:9000"
    )


def test_production_defaults():
    settings = settings_from_env({}, cpus=2)
    assert settings["worker_class"] == "gevent"
    assert settings["workers"] == 2
    assert settings["bind"] == "0.0.0.0:8000"
    assert settings["worker_tmp_dir"] == "/dev/shm"
    assert settings["preload_app"] is False
    # Longer than nginx's upstream keepalive_timeout (NGINX_UPSTREAM_KEEPALIVE_TIMEOUT, 5s).
    assert settings["keepalive"] > 5
    assert settings["graceful_timeout"] < 35  # compose's stop_grace_period
    # gunicorn's own recycling, with a jitter as wide as the count, so that workers with equal
    # parts of the load come due far apart (docs/configuration.md, "Recycling").
    assert settings["max_requests"] > 0 and settings["max_requests_jitter"] == settings["max_requests"]
    assert settings["accesslog"] is None
    # JSON lines by default, through gunicorn's logger_class, never logconfig_dict: with one,
    # gunicorn would build an access record per request with the access log off.
    assert settings["logger_class"] == "stack.json_logs.JsonLogger"
    assert "logconfig_dict" not in settings


def test_the_text_log_format_is_gunicorns_own_with_the_time_and_request_id():
    settings = settings_from_env({"GUNICORN_LOG_FORMAT": "text"}, cpus=2)
    assert settings["logger_class"] == "gunicorn.glogging.Logger"
    assert "%(M)s" in settings["access_log_format"] and "x-request-id" in settings["access_log_format"]


def test_an_unknown_log_format_is_refused():
    with pytest.raises(ValueError, match="GUNICORN_LOG_FORMAT"):
        settings_from_env({"GUNICORN_LOG_FORMAT": "xml"}, cpus=2)


def test_the_json_logs_route_gunicorns_loggers_and_the_apps():
    quiet = json_logs.logconfig("info", access_log=False)["loggers"]
    assert quiet["gunicorn.access"]["handlers"] == [] and quiet["gunicorn.error"]["level"] == "INFO"
    config = json_logs.logconfig("warning", access_log=True)
    assert config["loggers"]["gunicorn.access"]["handlers"] == ["stdout"]
    assert config["loggers"]["gunicorn.error"]["level"] == "WARNING"
    assert config["root"]["handlers"] == ["stderr"]


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.parametrize("access_log", ["off", "on"])
def test_gunicorn_builds_access_records_only_with_the_access_log_on(log_format, access_log):
    config = Config()
    environ = {"GUNICORN_LOG_FORMAT": log_format, "GUNICORN_ACCESS_LOG": access_log}
    for name, value in settings_from_env(environ, cpus=2).items():
        config.set(name, value)
    assert config.logger_class(config).access_log_enabled is (access_log == "on")


def test_explicit_worker_count_wins_over_the_cpu_formula():
    assert settings_from_env({"GUNICORN_WORKERS": "7"}, cpus=2)["workers"] == 7


def test_sync_workers_stay_single_threaded():
    settings = settings_from_env({"GUNICORN_WORKER_CLASS": "sync", "GUNICORN_THREADS": "8"}, cpus=1)
    assert settings["threads"] == 1
    assert settings["workers"] == 3


def test_unknown_worker_class_is_refused():
    with pytest.raises(ValueError, match="GUNICORN_WORKER_CLASS must be one of sync, gthread, gevent"):
        settings_from_env({"GUNICORN_WORKER_CLASS": "eventlet"}, cpus=1)


def test_preload_with_gevent_is_refused():
    with pytest.raises(ValueError, match="GUNICORN_PRELOAD cannot be used with"):
        settings_from_env({"GUNICORN_PRELOAD": "true"}, cpus=1)


def test_preload_with_gthread_is_allowed():
    settings = settings_from_env({"GUNICORN_PRELOAD": "yes", "GUNICORN_WORKER_CLASS": "gthread"}, cpus=1)
    assert settings["preload_app"] is True


@pytest.mark.parametrize(
    "name, raw", [("GUNICORN_TIMEOUT", "0"), ("GUNICORN_KEEPALIVE", "soon"), ("GUNICORN_PRELOAD", "maybe")]
)
def test_bad_values_name_the_variable(name, raw):
    with pytest.raises(ValueError, match=name):
        settings_from_env({name: raw, "GUNICORN_WORKER_CLASS": "gthread"}, cpus=1)


def nginx_header_buffers():
    """nginx's large_client_header_buffers (number, bytes each), read from its config template."""
    text = (WEB_DIR.parent / "nginx" / "templates" / "site" / "routes.conf.template").read_text()
    number, kilobytes = re.search(r"^\s*large_client_header_buffers (\d+) (\d+)k;", text, re.MULTILINE).groups()
    return int(number), int(kilobytes) * 1024


def test_gunicorn_takes_every_request_head_nginx_passes_on():
    number, size = nginx_header_buffers()
    settings = settings_from_env({}, cpus=1)
    # A request line or header line fills at most one nginx buffer, its CRLF included.
    assert settings["limit_request_line"] >= size - 2
    # nginx appends ", <client address>" (up to 41 characters for IPv6) to X-Forwarded-For.
    assert settings["limit_request_field_size"] >= size - 2 + 41
    # The shortest header line, "a:" and CRLF, is 4 bytes.
    assert settings["limit_request_fields"] >= number * size // 4


def effective_config(**env):
    """gunicorn's own view of gunicorn.conf.py (`--print-config`), as a dict of strings."""
    output = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--print-config", "stack.wsgi:application"],
        cwd=WEB_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return {
        name.strip(): value.strip()
        for name, _, value in (line.partition("=") for line in output.splitlines() if "=" in line)
    }


def test_gunicorn_reads_the_config_file_with_environment_overrides():
    config = effective_config(GUNICORN_WORKER_CLASS="gthread", GUNICORN_WORKERS="3", GUNICORN_THREADS="6")
    assert config["worker_class"] == "gthread"
    assert config["workers"] == "3"
    assert config["threads"] == "6"
    assert config["keepalive"] == "75"
    assert config["worker_tmp_dir"] == "/dev/shm"
    assert config["control_socket_disable"] == "True"
    assert config["limit_request_line"] == "8190"
    assert config["limit_request_field_size"] == "16384"
    assert config["limit_request_fields"] == "32768"


def test_describe_lists_each_capacity_setting_once_as_name_value():
    cfg = Config()
    for name, value in settings_from_env({"GUNICORN_WORKER_CLASS": "gthread"}, cpus=3).items():
        cfg.set(name, value)
    line = describe(cfg)
    assert line.startswith("effective settings: ")
    assert "bind=0.0.0.0:8000 worker_class=gthread workers=3 threads=4 " in line
    assert line.count("=") == 15


def test_reload_is_off_unless_asked_for():
    assert settings_from_env({}, cpus=1)["reload"] is False
    assert "reload_extra_files" not in settings_from_env({}, cpus=1)


def test_reload_polls_and_watches_every_file_of_the_app():
    settings = settings_from_env({"GUNICORN_RELOAD": "on"}, cpus=1)
    assert settings["reload"] is True
    assert settings["reload_engine"] == "poll"
    assert settings["reload_extra_files"] == ["app/**/*"]


def test_reload_with_preload_is_refused():
    with pytest.raises(ValueError, match="GUNICORN_RELOAD cannot be used with GUNICORN_PRELOAD"):
        settings_from_env({"GUNICORN_RELOAD": "on", "GUNICORN_PRELOAD": "on", "GUNICORN_WORKER_CLASS": "sync"}, cpus=1)


def assigned_names(path):
    """The names a config file assigns at its top level (inside an `if` too), as gunicorn
    reads a config file: each is a setting when it is one of gunicorn's."""
    names = set()
    statements = list(ast.parse(path.read_text()).body)
    while statements:
        node = statements.pop()
        if isinstance(node, ast.If):
            statements += node.body + node.orelse  # a function's body is not the module's
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return names


CONFIG_VARIANTS = [{}, {"GUNICORN_RELOAD": "on"}, {"GUNICORN_LOG_FORMAT": "text"}, {"GUNICORN_WORKER_CLASS": "sync"}]


@pytest.mark.parametrize("environ", CONFIG_VARIANTS, ids=["defaults", "reload", "text-logs", "sync"])
def test_the_config_file_names_each_setting_it_sets(environ):
    """gunicorn.conf.py writes each of gunicorn's settings as an assignment, as gunicorn's own
    example config does: none computed is left unset, and none is set that the settings
    module does not compute (where its default, reason and test live)."""
    assigned = assigned_names(WEB_DIR / "gunicorn.conf.py")
    computed = set(settings_from_env(environ, cpus=1))
    assert computed <= assigned, f"computed but not set: {sorted(computed - assigned)}"
    ever_computed = set().union(*(settings_from_env(variant, cpus=1) for variant in CONFIG_VARIANTS))
    hooks = {"on_starting", "when_ready", "on_exit", "child_exit", "post_worker_init", "post_request"}
    stray = (assigned & set(Config().settings)) - ever_computed - hooks
    assert not stray, f"gunicorn settings set outside gunicorn_settings.py: {sorted(stray)}"


def test_connection_turns_are_a_setting_of_gevent_workers():
    assert take_turns("gthread", switched_on=True)() is None
    assert take_turns("gevent", switched_on=False)() is None
    assert take_turns("gevent", switched_on=True).__module__.startswith("gevent")
