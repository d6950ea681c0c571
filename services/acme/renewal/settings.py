"""The acme image's knobs, each default written here once (.env.example and
docs/configuration.md list them). A value that cannot be right stops the job with a message
naming the knob, before anything is asked of the ACME server."""

import os
import re
from dataclasses import dataclass
from pathlib import Path

# Let's Encrypt's production directory: the default, as for any certbot user. Its staging
# directory (docs/operations.md) is for trying a setup without spending production's limits.
DEFAULT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"
# A day, as the issue of renewing unattended asks; certbot itself decides whether a
# certificate is due (30 days before expiry, or what the CA's renewal info says).
DEFAULT_CHECK_INTERVAL_S = 86400
# After a failure, an hour: soon enough that a fixed firewall or DNS record is noticed the
# same day, rare enough to stay far under the CA's failed-validation limit.
DEFAULT_RETRY_INTERVAL_S = 3600

# Where things are inside the containers (compose.acme.yaml mounts them): fixed, not knobs.
STATE_DIR = Path("/var/lib/acme")
CERTBOT_CONFIG_DIR = STATE_DIR / "certbot"
STATUS_FILE = STATE_DIR / "status.json"
LOCK_FILE = STATE_DIR / "renewal.lock"
WEBROOT = Path("/var/lib/acme-challenges")
TLS_DIR = Path("/var/lib/acme-tls")
# Mounted from ACME_CA_ROOT on the host; empty (/dev/null) when the CA's TLS certificate is
# signed by a public root, as Let's Encrypt's is.
CA_ROOT_FILE = Path("/etc/acme/ca-root.pem")
# certbot's scratch and logs: on /tmp, the one writable path of a read-only root.
CERTBOT_SCRATCH_DIR = Path("/tmp/certbot")  # noqa: S108 (the container's own /tmp volume, no other user)
# The name certbot files the certificate under (its "lineage"), whatever the domains.
CERT_NAME = "site"
# Where nginx serves HTTPS on the stack's network, to see which certificate it serves.
NGINX_HTTPS = ("nginx", 8443)
METRICS_PORT = 9120

HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class SettingsError(ValueError):
    """A knob's value the job refuses, with the reason."""


@dataclass(frozen=True)
class Settings:
    domains: tuple[str, ...]
    email: str
    directory: str
    check_interval_s: int
    retry_interval_s: int


def _seconds(name, raw, default):
    raw = raw.strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"{name} must be a whole number of seconds, 1 or more, got {raw!r}")
    return int(raw)


def domains_from(environ):
    """ACME_DOMAINS: host names separated by spaces (as NGINX_SERVER_NAMES, which it sets)."""
    raw = environ.get("ACME_DOMAINS", "").strip()
    if not raw:
        raise SettingsError("ACME_DOMAINS must name the host names to get a certificate for, separated by spaces")
    domains = tuple(dict.fromkeys(raw.lower().split()))
    for domain in domains:
        if domain.startswith("*."):
            raise SettingsError(f"ACME_DOMAINS: {domain} is a wildcard, which HTTP-01 cannot prove (DNS-01 can)")
        if not HOSTNAME.match(domain):
            raise SettingsError(f"ACME_DOMAINS: {domain!r} is not a host name")
    return domains


def load(environ=os.environ):
    email = environ.get("ACME_EMAIL", "").strip()
    if email and not EMAIL.match(email):
        raise SettingsError(f"ACME_EMAIL must be an email address, got {email!r}")
    directory = environ.get("ACME_DIRECTORY", "").strip() or DEFAULT_DIRECTORY
    if not directory.startswith("https://"):
        raise SettingsError(f"ACME_DIRECTORY must be the https:// URL of an ACME directory, got {directory!r}")
    return Settings(
        domains=domains_from(environ),
        email=email,
        directory=directory,
        check_interval_s=_seconds(
            "ACME_CHECK_INTERVAL", environ.get("ACME_CHECK_INTERVAL", ""), DEFAULT_CHECK_INTERVAL_S
        ),
        retry_interval_s=_seconds(
            "ACME_RETRY_INTERVAL", environ.get("ACME_RETRY_INTERVAL", ""), DEFAULT_RETRY_INTERVAL_S
        ),
    )
