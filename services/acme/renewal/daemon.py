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
    try:
        config = settings.load()
    except settings.SettingsError as error:
        log("error", str(error))
        return 2
    stop, wake = threading.Event(), threading.Event()

    def stopping(*_):
        stop.set()
        wake.set()

    # docker stop's SIGTERM ends the wait at once; a certbot run in progress is ended with the
    # container (it resumes from its own state at the next start).
    signal.signal(signal.SIGTERM, stopping)
    signal.signal(request.WAKE_SIGNAL, lambda *_: wake.set())
    metrics.serve()
    log(
        "info",
        "renewal job started",
        domains=list(config.domains),
        directory=config.directory,
        check_interval_s=config.check_interval_s,
        retry_interval_s=config.retry_interval_s,
    )
    force, request_id = False, ""
    while not stop.is_set():
        try:
            if fallback.ensure(config):
                renew.ensure_served(config, certificate.installed(settings.TLS_DIR))
        except (OSError, nginx.ReloadError) as error:
            log("error", "could not put a fresh self-signed fallback in service", reason=str(error))
        succeeded = renew.run(config, force=force, request_id=request_id)
        wake.wait(config.check_interval_s if succeeded else config.retry_interval_s)
        wake.clear()
        force, request_id = request.take()
    log("info", "renewal job stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
