"""certbot's command line, as the job runs it. Everything goes through certbot's documented
options: its state (the ACME account, the certificates and their history) under the state
volume, its scratch files and logs on /tmp, HTTP-01 answered from the webroot nginx serves."""

import os
import subprocess
from dataclasses import dataclass

from renewal import settings as paths

# Longer than certbot needs for an order with a few names (validation, finalization,
# download), bounded so one hung request never stops the daily job for good.
CERTBOT_TIMEOUT_S = 600


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    output: str


def command(settings, force=False):
    args = [
        # The venv's console script, on PATH (the image's Dockerfile).
        "certbot",
        "certonly",
        "--non-interactive",
        "--agree-tos",
        "--config-dir",
        str(paths.CERTBOT_CONFIG_DIR),
        "--work-dir",
        str(paths.CERTBOT_SCRATCH_DIR / "work"),
        "--logs-dir",
        str(paths.CERTBOT_SCRATCH_DIR / "logs"),
        "--server",
        settings.directory,
        "--cert-name",
        paths.CERT_NAME,
        "--webroot",
        "--webroot-path",
        str(paths.WEBROOT),
        "--preferred-challenges",
        "http",
        # One certificate, `site`, for ACME_DOMAINS as they are now: when the list changes,
        # certbot replaces the names of the certificate it names instead of asking.
        "--expand",
    ]
    for domain in settings.domains:
        args += ["--domain", domain]
    if settings.email:
        args += ["--email", settings.email, "--no-eff-email"]
    else:
        args += ["--register-unsafely-without-email"]
    # certbot's own rule otherwise: keep a certificate that is not yet due (--keep-until-expiring
    # is its non-interactive default), so a restart never re-issues and spends the CA's limits.
    args += ["--force-renewal"] if force else ["--keep-until-expiring"]
    return args


def environment():
    env = dict(os.environ)
    if paths.CA_ROOT_FILE.is_file() and paths.CA_ROOT_FILE.stat().st_size > 0:
        # requests (certbot's HTTP client) trusts this bundle instead of the public roots.
        env["REQUESTS_CA_BUNDLE"] = str(paths.CA_ROOT_FILE)
    return env


def run(settings, force=False):
    try:
        result = subprocess.run(
            command(settings, force),
            env=environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CERTBOT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as expired:
        # Its captured output comes as bytes here, text=True or not.
        stderr = expired.stderr.decode(errors="replace") if isinstance(expired.stderr, bytes) else expired.stderr
        return Outcome(False, f"certbot did not finish within {CERTBOT_TIMEOUT_S} s: {stderr or ''}")
    except OSError as error:
        return Outcome(False, f"certbot could not be run: {error}")
    return Outcome(result.returncode == 0, (result.stdout + result.stderr).strip())


def live_pair():
    """The chain and key certbot holds for the lineage now (its live/ links)."""
    live = paths.CERTBOT_CONFIG_DIR / "live" / paths.CERT_NAME
    return (live / "fullchain.pem").read_bytes(), (live / "privkey.pem").read_bytes()
