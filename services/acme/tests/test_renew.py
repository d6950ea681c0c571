"""What one renewal run keeps and reports, certbot and nginx replaced by what they answered."""

from renewal import renew


def test_the_reason_keeps_the_lines_that_name_the_cause():
    output = "\n".join(
        [
            "Saving debug log to /tmp/certbot/logs/letsencrypt.log",
            "Requesting a certificate for shop.test",
            "Certbot failed to authenticate some domains (authenticator: webroot).",
            "  Domain: shop.test",
            "  Type:   connection",
            "  Detail: 10.0.0.9: Fetching http://shop.test/.well-known/acme-challenge/x: Connection refused",
            "Ask for help or search for solutions at https://community.letsencrypt.org.",
        ]
    )
    reason = renew.reason(output)
    assert "Connection refused" in reason
    assert "failed to authenticate" in reason
    assert "Saving debug log" not in reason


def test_the_reason_of_an_output_naming_nothing_is_its_last_lines():
    assert renew.reason("one\ntwo\n") == "one | two"
