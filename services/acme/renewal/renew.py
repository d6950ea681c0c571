"""One renewal: certbot obtains or renews the certificate if due, a new one is installed for
nginx and nginx reloaded; a failure leaves the served certificate as it was and says why.
The job (daemon.py) runs it, daily and when `make acme-renew` asks (request.py)."""

import fcntl
import time
from contextlib import contextmanager

from renewal import certbot, certificate, nginx, settings, status
from renewal.log import log

# certbot's own log says much; the job's line keeps what names the cause.
REASON_LINES = ("Detail:", "Error", "error", "failed", "Timeout", "timed out")


@contextmanager
def exclusive():
    """One renewal at a time, the daily job's or one started by hand: both write the
    certificate, the status and certbot's state."""
    with open(settings.LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def reason(output):
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    picked = [line for line in lines if line.startswith(REASON_LINES) or any(word in line for word in REASON_LINES)]
    return " | ".join((picked or lines)[-4:])[:1000]


def ensure_served(config, installed):
    """Reload nginx unless it already serves the installed certificate."""
    server_name = config.domains[0]
    try:
        if nginx.served(server_name, settings.NGINX_HTTPS).fingerprint == installed.fingerprint:
            return False
    except OSError:
        pass  # not answering yet: the reload below is still right, and its wait tells
    nginx.reload_until_served(installed.fingerprint, server_name, settings.NGINX_HTTPS)
    return True


def run(config, force=False, request_id="", now=time.time):
    with exclusive():
        record = status.read(settings.STATUS_FILE)
        current = certificate.installed(settings.TLS_DIR)
        switched = bool(
            current
            and not current.self_signed
            and record.issued_by_directory
            and record.issued_by_directory != config.directory
        )
        if switched:
            log(
                "info",
                "ACME_DIRECTORY changed since the certificate was issued: replacing it",
                was=record.issued_by_directory,
            )
        outcome = certbot.run(config, force=force or switched)
        record.attempts += 1
        record.last_attempt_time = now()
        record.last_request_id = request_id
        try:
            if not outcome.succeeded:
                raise RuntimeError(reason(outcome.output))
            chain, key = certbot.live_pair()
            issued = certificate.facts(chain)
            if current is None or issued.fingerprint != current.fingerprint:
                certificate.install(settings.TLS_DIR, chain, key)
                record.issued_by_directory = config.directory
                log("info", "installed a new certificate for nginx", domains=list(config.domains), **issued.describe())
            else:
                log("info", "the certificate is not due for renewal; nothing issued", **issued.describe())
            if ensure_served(config, issued):
                log("info", "nginx reloaded and serves the new certificate", serial=issued.serial)
            succeeded = True
        except Exception as error:  # any failure is reported the same way, then retried
            succeeded = False
            record.failures += 1
            record.last_error = str(error)
            served = certificate.installed(settings.TLS_DIR)
            log(
                "error",
                "certificate renewal failed; nginx keeps serving the certificate it has",
                reason=str(error),
                serving=served.describe() if served else None,
                serving_self_signed=bool(served and served.self_signed),
                certbot_output=outcome.output[-3000:],
            )
        record.last_attempt_succeeded = succeeded
        if succeeded:
            record.last_success_time = record.last_attempt_time
            record.last_error = ""
        status.write(settings.STATUS_FILE, record)
        return succeeded
