"""The renewal job: at start and then every ACME_CHECK_INTERVAL, keep the self-signed fallback
fresh while there is no issued certificate, and run one renewal (certbot renews only what is
due); after a failure, try again in ACME_RETRY_INTERVAL; at once when `make acme-renew` asks
(request.py). Serves its metrics meanwhile.
python -m renewal.daemon"""

import signal
import sys
import threading

from renewal import certificate, fallback, metrics, nginx, renew, request, settings
from renewal.log import log


def main():
    stop, wake = threading.Event(), threading.Event()

    def stopping(*_):
        stop.set()
        wake.set()

    # First of all: `make acme-renew` finds this process by its command line and signals it,
    # and a signal with no handler yet would end it. docker stop's SIGTERM ends the wait at
    # once; a certbot run in progress ends with the container (certbot resumes from its own
    # state at the next start).
    signal.signal(signal.SIGTERM, stopping)
    signal.signal(request.WAKE_SIGNAL, lambda *_: wake.set())
    try:
        config = settings.load()
    except settings.SettingsError as error:
        log("error", str(error))
        return 2
    metrics.serve()
    log(
        "info",
        "renewal job started",
        domains=list(config.domains),
        directory=config.directory,
        check_interval_s=config.check_interval_s,
        retry_interval_s=config.retry_interval_s,
    )
    while not stop.is_set():
        # A request waiting from before this pass (or from before a restart) is served now.
        force, request_id = request.take()
        keep_fallback_fresh(config)
        succeeded = renew.run(config, force=force, request_id=request_id)
        wake.wait(config.check_interval_s if succeeded else config.retry_interval_s)
        wake.clear()
    log("info", "renewal job stopped")
    return 0


def keep_fallback_fresh(config):
    """While no certificate is issued, replace a stand-in near its end (and serve it)."""
    try:
        with renew.exclusive():
            written = fallback.ensure(config)
        if written:
            renew.ensure_served(config, certificate.installed(settings.TLS_DIR))
    except (OSError, ValueError, nginx.ReloadError) as error:
        log("error", "could not put a fresh self-signed fallback in service", reason=str(error))


if __name__ == "__main__":
    sys.exit(main())
