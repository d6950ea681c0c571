"""Unit tests of the stack's environment-driven settings (stack/settings.py, stack/env.py)."""

import pytest

from stack import env
from stack.gunicorn_settings import settings_from_env as gunicorn_settings_from_env
from stack.settings import DEFAULTS, settings_from_env


def test_defaults_apply_when_nothing_is_set():
    assert settings_from_env({}) == DEFAULTS


def test_environment_overrides_defaults():
    settings = settings_from_env({"APP_TRUSTED_PROXY_HOPS": "2", "APP_MAX_BODY_BYTES": "10"})
    assert settings["TRUSTED_PROXY_HOPS"] == 2
    assert settings["MAX_CONTENT_LENGTH"] == 10


@pytest.mark.parametrize("raw, message", [("two", "whole number"), ("-1", "at least 0")])
def test_bad_values_fail_with_the_variable_name(raw, message):
    with pytest.raises(ValueError, match=f"APP_SLEEP_MAX_MS.*{message}"):
        settings_from_env({"APP_SLEEP_MAX_MS": raw})


def test_trusted_hosts_are_a_comma_separated_list():
    assert settings_from_env({"APP_TRUSTED_HOSTS": " example.com, .example.org ,"})["TRUSTED_HOSTS"] == [
        "example.com",
        ".example.org",
    ]


@pytest.mark.parametrize("raw, expected", [("on", True), ("off", False), ("true", True), ("0", False)])
def test_fault_injection_is_a_switch(raw, expected):
    assert settings_from_env({"APP_FAULT_INJECTION": raw})["FAULT_INJECTION"] is expected


def test_a_misspelt_switch_is_refused():
    with pytest.raises(ValueError, match="APP_FAULT_INJECTION must be on or off"):
        settings_from_env({"APP_FAULT_INJECTION": "yes please"})


def test_the_version_comes_from_the_image():
    assert settings_from_env({"APP_VERSION": "v2.1"})["APP_VERSION"] == "v2.1"


def test_the_outbound_url_is_taken_when_it_is_http():
    assert settings_from_env({"APP_OUTBOUND_URL": "http://upstream:9000"})["OUTBOUND_URL"] == "http://upstream:9000"


@pytest.mark.parametrize("raw", ["file:///etc/passwd", "ftp://upstream/", "upstream:9000"])
def test_an_outbound_url_that_is_not_http_is_refused(raw):
    with pytest.raises(ValueError, match="APP_OUTBOUND_URL must be an http"):
        settings_from_env({"APP_OUTBOUND_URL": raw})


def test_the_probes_are_off_unless_switched_on():
    assert settings_from_env({})["PROBES"] is False
    assert settings_from_env({"APP_PROBES": "on"})["PROBES"] is True


@pytest.mark.parametrize("raw", ["1", "true", "YES", " on "])
def test_every_switch_takes_the_same_spellings_of_on(raw):
    # One reader for the app's knobs and gunicorn's: a spelling one takes, the other takes too.
    assert settings_from_env({"APP_FAULT_INJECTION": raw})["FAULT_INJECTION"] is True
    assert gunicorn_settings_from_env({"GUNICORN_ACCESS_LOG": raw}, cpus=1)["accesslog"] == "-"


@pytest.mark.parametrize("raw", ["0", "false", "No", "OFF", ""])
def test_every_switch_takes_the_same_spellings_of_off(raw):
    assert settings_from_env({"APP_FAULT_INJECTION": raw})["FAULT_INJECTION"] is False
    assert gunicorn_settings_from_env({"GUNICORN_ACCESS_LOG": raw}, cpus=1)["accesslog"] is None


@pytest.mark.parametrize("name", ["APP_PROBES", "GUNICORN_ACCESS_LOG", "GUNICORN_PRELOAD"])
def test_a_switch_that_is_neither_is_refused_naming_the_knob(name):
    with pytest.raises(ValueError, match=f"{name} must be on or off"):
        env.switch({name: "maybe"}, name, False)


def test_a_whole_number_below_its_minimum_is_refused():
    with pytest.raises(ValueError, match="GUNICORN_TIMEOUT must be at least 1, got 0"):
        gunicorn_settings_from_env({"GUNICORN_TIMEOUT": "0"}, cpus=1)
