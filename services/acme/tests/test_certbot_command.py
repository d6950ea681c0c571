"""The certbot command line the job runs: certbot's own options, nothing else."""

from renewal import certbot, settings


def config(**environ):
    return settings.load({"ACME_DOMAINS": "shop.test www.shop.test", **environ})


def test_a_due_only_run_keeps_a_valid_certificate_and_answers_http_01_from_the_webroot():
    args = certbot.command(config(ACME_EMAIL="ops@example.com"))
    assert args[:2] == ["certbot", "certonly"]
    assert "--keep-until-expiring" in args and "--force-renewal" not in args
    assert args[args.index("--webroot-path") + 1] == str(settings.WEBROOT)
    assert args[args.index("--server") + 1] == settings.DEFAULT_DIRECTORY
    assert args[args.index("--email") + 1] == "ops@example.com"
    assert [args[i + 1] for i, arg in enumerate(args) if arg == "--domain"] == ["shop.test", "www.shop.test"]
    assert "--non-interactive" in args


def test_forced_and_without_email():
    args = certbot.command(config(), force=True)
    assert "--force-renewal" in args and "--keep-until-expiring" not in args
    assert "--register-unsafely-without-email" in args and "--email" not in args
