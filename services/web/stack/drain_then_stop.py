"""The web container's first process: runs gunicorn, and drains before gunicorn stops.

    python -m stack.drain_then_stop gunicorn --config gunicorn.conf.py stack.wsgi:application

gunicorn's master stops its workers as soon as it gets SIGTERM, and has no hook to run
first. So this process gets the container's SIGTERM instead: it raises the drain flag
(drain.py), which the workers' middleware reads, waits GUNICORN_DRAIN_SECONDS while they
serve on, and only then sends SIGTERM to gunicorn, which stops gracefully. Every other
signal gunicorn acts on (HUP, INT, QUIT, USR1, USR2, TTIN, TTOU, WINCH) is passed on at
once. It exits with gunicorn's status.
"""

import logging
import os
import signal
import subprocess
import sys
import time

from . import env, json_logs
from .drain import DrainFlag, flag_path
from .gunicorn_settings import lifecycle_settings_from_env

PASSED_ON = (
    signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
    signal.SIGTTIN, signal.SIGTTOU, signal.SIGWINCH,
)  # fmt: skip


def make_logger(environ):
    """Lines in gunicorn's format (GUNICORN_LOG_FORMAT): JSON, or text."""
    handler = logging.StreamHandler(sys.stderr)
    if env.text(environ, "GUNICORN_LOG_FORMAT", "json") == "json":
        handler.setFormatter(json_logs.formatter())
    else:
        handler.setFormatter(logging.Formatter("[drain_then_stop] %(message)s"))
    logger = logging.getLogger("stack.drain_then_stop")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def main(command, environ=os.environ):
    if not command:
        raise SystemExit("usage: python -m stack.drain_then_stop COMMAND [ARGUMENTS...]")
    log = make_logger(environ).info
    drain_seconds = lifecycle_settings_from_env(environ)["drain_seconds"]
    flag = DrainFlag(flag_path(environ))
    # A flag left by an earlier run of this container would drain a fresh one.
    flag.lower()
    # The handlers come first: a signal sent as soon as the server is up (the server can be
    # quicker to start than this process is to go on) must not meet Python's defaults.
    started = []

    def pass_on(signum, _frame):
        if started:
            started[0].send_signal(signum)

    def drain_then_stop(_signum, _frame):
        if not started:
            raise SystemExit(128 + signal.SIGTERM)  # nothing to drain yet: stop now
        if flag.is_raised():
            return  # a second SIGTERM while draining: the stop is already on its way
        flag.raise_()
        log(f"draining for {drain_seconds}s before the graceful stop")
        # Blocking here is harmless: gunicorn's workers serve on meanwhile.
        time.sleep(drain_seconds)
        started[0].send_signal(signal.SIGTERM)

    for signum in PASSED_ON:
        signal.signal(signum, pass_on)
    signal.signal(signal.SIGTERM, drain_then_stop)
    server = subprocess.Popen(command)  # noqa: S603 the image's own command line
    started.append(server)
    # wait() resumes after each handler has run (PEP 475) until gunicorn has exited.
    status = server.wait()
    flag.lower()
    # Killed by a signal: the shell's convention, 128 + its number.
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
