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


# Added to the log line when the CA could not fetch a challenge: the usual cause.
CHALLENGE_HINT = (
    "the CA fetches http://<name>/.well-known/acme-challenge/ on port 80: each name in ACME_DOMAINS "
    "must resolve to this host and port 80 reach nginx (HTTP_BIND=0.0.0.0 HTTP_PORT=80)"
)


def _renew(config, record, force):
    """certbot, then the install and the reload; raises with the reason on any failure."""
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
    if not outcome.succeeded:
        raise RenewalFailed(reason(outcome.output), outcome.output)
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


class RenewalFailed(RuntimeError):
    def __init__(self, reason, output=""):
        super().__init__(reason)
        self.output = output


def run(config, force=False, request_id="", now=time.time):
    """One renewal, under the lock; True if it succeeded. Every failure, whatever raised it,
    is logged and counted, and the job goes on."""
    with exclusive():
        record = status.read(settings.STATUS_FILE)
        record.attempts += 1
        record.last_attempt_time = now()
        record.last_request_id = request_id
        try:
            _renew(config, record, force)
            succeeded = True
        except Exception as error:  # any failure is reported the same way, then retried
            succeeded = False
            record.failures += 1
            record.last_error = str(error)
            output = getattr(error, "output", "")
            try:
                served = certificate.installed(settings.TLS_DIR)
            except (OSError, ValueError):
                served = None
            log(
                "error",
                "certificate renewal failed; nginx keeps serving the certificate it has",
                reason=str(error),
                **({"hint": CHALLENGE_HINT} if "challenge" in output.lower() else {}),
                serving=served.describe() if served else None,
                serving_self_signed=bool(served and served.self_signed),
                certbot_output=output[-3000:],
            )
        record.last_attempt_succeeded = succeeded
        if succeeded:
            record.last_success_time = record.last_attempt_time
            record.last_error = ""
        status.write(settings.STATUS_FILE, record)
        return succeeded
