"""A renewal asked for by hand (`make acme-renew`): the request is handed to the running job,
which runs it like its own daily ones, so every run is in the job's log (`docker compose
logs acme`) and its metrics, and two never overlap. The asking process waits for the job's
answer and exits 0 if the renewal succeeded, 1 if not.
python -m renewal.request [--force]"""

import argparse
import fcntl
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path

from renewal import certbot, settings, status
from renewal.log import log

REQUEST_FILE = settings.STATE_DIR / "request.json"
REQUEST_LOCK = settings.STATE_DIR / "request.lock"
DAEMON_MODULE = b"renewal.daemon"
# The job may be in the middle of its own run when asked: room for that one and this one.
ANSWER_TIMEOUT_S = 2 * certbot.CERTBOT_TIMEOUT_S + 60
WAKE_SIGNAL = signal.SIGUSR1


def daemon_pid(proc=Path("/proc")):
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if DAEMON_MODULE in (entry / "cmdline").read_bytes().split(b"\0"):
                return int(entry.name)
        except OSError:
            continue
    raise RuntimeError("the renewal job (python -m renewal.daemon) is not running in this container")


def take(path=REQUEST_FILE):
    """(force, id) of the waiting request, removing it; (False, "") when there is none or it
    cannot be read (the asker then times out and says so)."""
    try:
        text = path.read_text()
        path.unlink()
        request = json.loads(text)
    except (FileNotFoundError, ValueError):
        return False, ""
    if not isinstance(request, dict):
        return False, ""
    return bool(request.get("force")), str(request.get("id", ""))


def _write_request(force, request_id, path=REQUEST_FILE):
    # By rename: the job never reads half a request.
    temporary = path.with_name(f".{path.name}.{request_id}")
    temporary.write_text(json.dumps({"force": force, "id": request_id}))
    os.replace(temporary, path)


def ask(force):
    request_id = uuid.uuid4().hex
    with open(REQUEST_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            _write_request(force, request_id)
            os.kill(daemon_pid(), WAKE_SIGNAL)
            deadline = time.monotonic() + ANSWER_TIMEOUT_S
            while time.monotonic() < deadline:
                record = status.read(settings.STATUS_FILE)
                if record.last_request_id == request_id:
                    return record
                time.sleep(0.5)
        finally:
            # Unanswered (no job, a timeout, Ctrl-C): not left for the job to run later.
            take()
    raise TimeoutError(f"the renewal job did not answer within {ANSWER_TIMEOUT_S} s")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m renewal.request", description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="renew even if the certificate is not due")
    arguments = parser.parse_args(argv)
    try:
        record = ask(arguments.force)
    except (RuntimeError, TimeoutError, OSError) as error:
        log("error", "could not ask the renewal job", reason=str(error))
        return 1
    if record.last_attempt_succeeded:
        log("info", "renewal succeeded (the job's log says what it did: docker compose logs acme)")
        return 0
    log("error", "renewal failed; nginx keeps serving the certificate it has", reason=record.last_error)
    return 1


if __name__ == "__main__":
    sys.exit(main())
