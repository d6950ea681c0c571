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
