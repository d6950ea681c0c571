"""The acme image's knobs: defaults, and values refused with the knob's name."""

import pytest

from renewal import settings


def test_defaults_are_lets_encrypt_production_and_a_daily_check():
    config = settings.load({"ACME_DOMAINS": "shop.example.com"})
    assert config.domains == ("shop.example.com",)
    assert config.directory == "https://acme-v02.api.letsencrypt.org/directory"
    assert config.check_interval_s == 86400
    assert config.retry_interval_s == 3600
    assert config.email == ""


def test_domains_are_separated_by_spaces_lowercased_and_deduplicated():
    config = settings.load({"ACME_DOMAINS": " Shop.Example.com  www.example.com shop.example.com "})
    assert config.domains == ("shop.example.com", "www.example.com")


@pytest.mark.parametrize(
    "environ, named",
    [
        ({}, "ACME_DOMAINS"),
        ({"ACME_DOMAINS": "*.example.com"}, "wildcard"),
        ({"ACME_DOMAINS": "shop.example.com;rm"}, "not a host name"),
        ({"ACME_DOMAINS": "shop.example.com,www.example.com"}, "not a host name"),
        ({"ACME_DOMAINS": "a.test", "ACME_EMAIL": "not-an-address"}, "ACME_EMAIL"),
        ({"ACME_DOMAINS": "a.test", "ACME_DIRECTORY": "http://ca.test/dir"}, "ACME_DIRECTORY"),
        ({"ACME_DOMAINS": "a.test", "ACME_CHECK_INTERVAL": "1d"}, "ACME_CHECK_INTERVAL"),
        ({"ACME_DOMAINS": "a.test", "ACME_RETRY_INTERVAL": "0"}, "ACME_RETRY_INTERVAL"),
    ],
)
def test_a_value_that_cannot_be_right_is_refused_naming_why(environ, named):
    with pytest.raises(settings.SettingsError, match=named):
        settings.load(environ)


def test_set_values_are_taken():
    config = settings.load(
        {
            "ACME_DOMAINS": "a.test",
            "ACME_EMAIL": "ops@example.com",
            "ACME_DIRECTORY": "https://acme-staging-v02.api.letsencrypt.org/directory",
            "ACME_CHECK_INTERVAL": "600",
            "ACME_RETRY_INTERVAL": "60",
        }
    )
    assert (config.email, config.check_interval_s, config.retry_interval_s) == ("ops@example.com", 600, 60)
    assert "staging" in config.directory
