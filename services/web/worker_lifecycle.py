"""How gunicorn processes leave without losing a request (wired in by gunicorn.conf.py).

Draining: on SIGTERM the master raises a flag shared with its workers and keeps serving
for `drain_seconds` before the usual graceful stop. While the flag is up, idempotent
requests get a 503 that nginx retries on another replica (proxy_next_upstream http_503),
which also marks this replica as failed so nginx stops choosing it. Requests nginx must
never resend (POST, PATCH, LOCK) are still served. Only then does gunicorn close its
listener, so no connection waits in a closing accept queue.

Recycling: after each request a worker compares the requests it served with its share
(GUNICORN_MAX_REQUESTS with jitter) and its resident memory with the ceiling (the job of
uWSGI's reload-on-rss); past either, and when it is its turn, the worker stops taking
requests, finishes those in flight and exits, and the master starts a fresh one.
"""

import json
import mmap
import os
import time

# Methods nginx does not pass to another replica once sent; a draining replica serves them.
NON_IDEMPOTENT_METHODS = frozenset({"POST", "PATCH", "LOCK"})
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class DrainFlag:
    """One byte of anonymous shared memory: set by the master, read by the forked workers."""

    def __init__(self):
        self._memory = mmap.mmap(-1, 1)

    def raise_(self):
        self._memory[0] = 1

    def is_raised(self):
        return self._memory[0] == 1


class DrainingMiddleware:
    """Answer idempotent requests with a retryable 503 once the drain flag is up."""

    def __init__(self, app, flag, retry_after_s=1):
        self.app = app
        self.flag = flag
        self.retry_after = str(retry_after_s)

    def __call__(self, environ, start_response):
        if not self.flag.is_raised() or environ.get("REQUEST_METHOD") in NON_IDEMPOTENT_METHODS:
            return self.app(environ, start_response)
        body = json.dumps({
            "error": "draining",
            "status": 503,
            "message": "This replica is shutting down; the request can be retried on another.",
            "request_id": environ.get("HTTP_X_REQUEST_ID", ""),
        }).encode() + b"\n"
        start_response("503 Service Unavailable", [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Retry-After", self.retry_after),
        ])
        return [body]


def drain_then_stop(arbiter, flag, drain_seconds, stop):
    """Replacement for the master's SIGTERM handler: raise the flag, serve on, then stop."""
    if not flag.is_raised():
        flag.raise_()
        arbiter.log.info("draining for %ss before the graceful stop", drain_seconds)
        # Blocking the master is harmless here: workers serve on their own meanwhile.
        time.sleep(drain_seconds)
    stop()


class ResidentMemory:
    """This process's resident set size, from a /proc/self/statm descriptor kept open and
    read again after each request. Opening the file for each request cost about 24 µs, a
    twentieth of what a trivial request costs the machine; reading it again costs 2 µs.

    /proc/self names the process that opened it, so a process forked since (a worker, from
    the master) opens its own: gunicorn.conf.py does so before the worker serves, so its
    threads never race to open it."""

    def __init__(self, statm="/proc/self/statm"):
        self.statm = statm
        self.fd = None
        self.opened_by = None

    def __call__(self):
        if self.opened_by != os.getpid():
            if self.fd is not None:
                os.close(self.fd)
            self.fd = os.open(self.statm, os.O_RDONLY | os.O_CLOEXEC)
            self.opened_by = os.getpid()
        return int(os.pread(self.fd, 256, 0).split()[1]) * PAGE_SIZE


resident_memory_bytes = ResidentMemory()


def recycle_when_due(worker, turn, ceiling_bytes, rss_bytes=None):
    """Stop `worker` gracefully after this request when it holds more memory than the ceiling,
    or when it has served its share of requests (gunicorn's max_requests with jitter, kept
    in worker.recycle_after) and it is its turn (recycle_turns.py): one worker at a time.

    Returns True when the worker was told to stop."""
    if not worker.alive:
        return False
    rss = None
    if ceiling_bytes:
        rss = resident_memory_bytes() if rss_bytes is None else rss_bytes
    if rss is not None and rss > ceiling_bytes:
        # Memory comes first: recycle now, taking the turn if it is free so that no worker
        # recycles for its request count meanwhile, but never waiting for it.
        turn.take(worker.pid)
        reason = f"holds {rss // 2**20} MiB, over the {ceiling_bytes // 2**20} MiB ceiling"
    elif worker.nr >= worker.recycle_after:
        if not turn.take(worker.pid):
            # Another worker is recycling: serve on, and ask again after the next request.
            return False
        reason = f"served {worker.nr} requests (GUNICORN_MAX_REQUESTS)"
    else:
        return False
    worker.log.warning("worker %s %s: recycling it after its requests in flight", worker.pid, reason)
    worker.alive = False
    return True
