"""The self-signed stand-in, so nginx starts serving HTTPS before ACME has issued anything
(or while the ACME server cannot be reached): a one-shot service nginx waits for
(compose.acme.yaml, acme-fallback), and each pass of the daily job. An issued certificate
is never replaced by one. python -m renewal.fallback"""

import sys

from renewal import certificate, renew, settings
from renewal.log import log


def ensure(config):
    """Write a stand-in if one is due; return whether one was written."""
    current = certificate.installed(settings.TLS_DIR)
    if not certificate.fallback_due(current, config.domains):
        if current.self_signed:
            log(
                "warning", "nginx serves the self-signed fallback until ACME issues a certificate", **current.describe()
            )
        else:
            log("info", "nginx serves the certificate ACME issued", **current.describe())
        return False
    chain, key = certificate.fallback_pair(config.domains)
    certificate.install(settings.TLS_DIR, chain, key)
    written = certificate.facts(chain)
    log(
        "warning",
        "no certificate from ACME yet: nginx serves a short-lived self-signed one until it arrives",
        domains=list(config.domains),
        **written.describe(),
    )
    return True


def main():
    try:
        config = settings.load()
    except settings.SettingsError as error:
        log("error", str(error))
        return 2
    # The job may be running (a second `up`): one writer of the certificate at a time.
    with renew.exclusive():
        ensure(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
