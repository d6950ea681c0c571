"""The web container's first process: runs gunicorn, drains before gunicorn stops, reaps.

    python -m stack.drain_then_stop gunicorn --config gunicorn.conf.py stack.wsgi:application

gunicorn's master stops its workers as soon as it gets SIGTERM, and has no hook to run
first. So this process gets the container's SIGTERM instead: it raises the drain flag
(drain.py), which the workers' middleware reads, lets GUNICORN_DRAIN_SECONDS pass while
they serve on, and only then sends SIGTERM to gunicorn, which stops gracefully. Every
other signal gunicorn acts on (HUP, INT, QUIT, USR1, USR2, TTIN, TTOU, WINCH) is passed
on at once.

It is a small state machine, not a sleep in a signal handler: the signals are blocked and
taken one at a time by the main loop (sigtimedwait), whose only timer is the drain's
deadline. So gunicorn exiting at any moment, mid-drain included, ends this process at
once, with gunicorn's status.

It is also the container's init: as PID 1, and as a child subreaper anywhere else
(prctl), it is the parent of every process whose own parent exits first (a backgrounded
`sh -c "cmd &"` the app ran), and reaps each one when it exits, so none stays a zombie.
"""

import signal

PASSED_ON = frozenset({
    signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
    signal.SIGTTIN, signal.SIGTTOU, signal.SIGWINCH,
})  # fmt: skip
TAKEN = PASSED_ON | {signal.SIGTERM, signal.SIGCHLD}
if __name__ == "__main__":
    # Before anything else is imported (the JSON logger alone takes a noticeable time): as
    # PID 1, a signal whose action is still the default is dropped by the kernel, so a stop
    # sent while this process starts would otherwise be lost and wait out the grace period.
    signal.pthread_sigmask(signal.SIG_BLOCK, TAKEN)

import ctypes  # noqa: E402 after the block above
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from . import json_logs  # noqa: E402
from .drain import DrainFlag, flag_path  # noqa: E402
from .gunicorn_settings import log_format_from_env  # noqa: E402
from .settings import settings_from_env  # noqa: E402

# Python ignores SIGPIPE and SIGXFSZ, and an exec keeps ignored signals ignored: reset them
# for the server as subprocess does (restore_signals), with the ones taken here.
DEFAULTED = TAKEN | {signal.SIGPIPE, signal.SIGXFSZ}
# prctl(2): orphaned descendants are reparented to this process rather than to PID 1.
PR_SET_CHILD_SUBREAPER = 36


def make_logger(environ):
    """Lines in gunicorn's format (GUNICORN_LOG_FORMAT): JSON, or text."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format_from_env(environ) == "json":
        handler.setFormatter(json_logs.formatter())
    else:
        handler.setFormatter(logging.Formatter("[drain_then_stop] %(message)s"))
    logger = logging.getLogger("stack.drain_then_stop")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def become_subreaper():
    """Adopt orphaned descendants even when not PID 1 (docker run --init, a test's child)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def reap(server_pid):
    """Reap every child that has exited; return the server's exit code if it is among them."""
    status = None
    while True:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status  # no child left at all
        if pid == 0:
            return status
        if pid == server_pid:
            status = os.waitstatus_to_exitcode(wait_status)


def main(command, environ=os.environ):
    if not command:
        raise SystemExit("usage: python -m stack.drain_then_stop COMMAND [ARGUMENTS...]")
    log = make_logger(environ).info
    drain_seconds = settings_from_env(environ)["DRAIN_SECONDS"]
    flag = DrainFlag(flag_path(environ))
    # Blocked first, so each signal waits for the loop below; a SIGTERM that came before
    # the server starts is found pending and stops this process without starting it.
    signal.pthread_sigmask(signal.SIG_BLOCK, TAKEN)
    become_subreaper()
    # A flag left by an earlier run of this container would drain a fresh one.
    flag.lower()
    if signal.SIGTERM in signal.sigpending():
        log("stopped before the server started")
        return 128 + signal.SIGTERM
    # The server starts with no signal blocked and every handler at its default.
    try:
        server_pid = os.posix_spawnp(command[0], command, environ, setsigmask=(), setsigdef=DEFAULTED)
    except OSError as error:
        log(f"cannot start {command[0]!r}: {error.strerror}")
        # The shell's convention: 127 not found, 126 found but not runnable.
        return 127 if isinstance(error, FileNotFoundError) else 126
    deadline = None  # when the drain ends: set by the first SIGTERM
    stopping = False  # SIGTERM passed on to the server
    while True:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        taken = signal.sigwaitinfo(TAKEN) if timeout is None else signal.sigtimedwait(TAKEN, timeout)
        if taken is None:  # the drain is over
            deadline, stopping = None, True
            os.kill(server_pid, signal.SIGTERM)
        elif taken.si_signo == signal.SIGCHLD:
            status = reap(server_pid)
            if status is not None:
                break
        elif taken.si_signo == signal.SIGTERM:
            if deadline is None and not stopping:  # a second SIGTERM changes nothing
                flag.raise_()
                deadline = time.monotonic() + drain_seconds
                log(f"draining for {drain_seconds}s before the graceful stop")
        else:
            os.kill(server_pid, taken.si_signo)
    flag.lower()
    if deadline is not None:
        log(f"the server exited with status {status} during the drain: stopping now")
    # Killed by a signal: the shell's convention, 128 + its number.
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
