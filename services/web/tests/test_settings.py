"""Unit tests of the app's environment-driven settings."""

import pytest

from app.settings import DEFAULTS, settings_from_env


def test_defaults_apply_when_nothing_is_set():
    assert settings_from_env({}) == DEFAULTS


def test_environment_overrides_defaults():
    settings = settings_from_env({"APP_TRUSTED_PROXY_HOPS": "2", "APP_MAX_BODY_BYTES": "10"})
    assert settings["TRUSTED_PROXY_HOPS"] == 2
    assert settings["MAX_CONTENT_LENGTH"] == 10


@pytest.mark.parametrize("raw, message", [("two", "whole number"), ("-1", "negative")])
def test_bad_values_fail_with_the_variable_name(raw, message):
    with pytest.raises(ValueError, match=f"APP_SLEEP_MAX_MS.*{message}"):
        settings_from_env({"APP_SLEEP_MAX_MS": raw})


def test_trusted_hosts_are_a_comma_separated_list():
    assert settings_from_env({"APP_TRUSTED_HOSTS": " example.com, .example.org ,"})["TRUSTED_HOSTS"] == [
        "example.com", ".example.org",
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
