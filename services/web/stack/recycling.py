"""Workers recycled for their request count, one at a time, or for their memory, at once.

gunicorn's own max_requests is off (gunicorn_settings.py): a worker reaching it stops at
once, and two workers serving alike reach it within seconds of each other, which left a
replica accepting nothing while both were replaced (recycle_turns.py says what was
measured). Instead gunicorn.conf.py calls Recycler from gunicorn's documented hooks: each
worker draws its share of requests as gunicorn would (GUNICORN_MAX_REQUESTS plus up to
GUNICORN_MAX_REQUESTS_JITTER) when it starts, and after each request compares what it
served with its share, and its resident memory with GUNICORN_MAX_WORKER_MEMORY_MB (the job
of uWSGI's reload-on-rss). Past either, the hook sets the worker's `alive` to False,
gunicorn's own way to stop a worker after its requests in flight, and the master starts a
fresh one.
"""

import itertools
import os
import random

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class ResidentMemory:
    """This process's resident set size, from a /proc/self/statm descriptor kept open and
    read again after each request: opening the file for each request cost a noticeable
    share of a trivial request (bench/README.md, "Tunings"); reading it again is cheap.

    /proc/self names the process that opened it, so a process forked since (a worker, from
    the master) opens its own: Recycler.start does so before the worker serves, so its
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


class Recycler:
    """Made in gunicorn.conf.py, in the master; each forked worker has its own copy, so its
    share and count are its own. `turn` (recycle_turns.RecycleTurn) is shared by them all."""

    def __init__(self, max_requests, jitter, ceiling_bytes, turn, memory=None):
        self.max_requests = max_requests
        self.jitter = jitter
        self.ceiling_bytes = ceiling_bytes
        self.turn = turn
        self.memory = memory or ResidentMemory()
        self.share = None
        self.served = itertools.count(1)
        # Why due() last said True: "memory" or "max_requests" (counted in metrics.py).
        self.reason = None

    def start(self, log, pid):
        """In post_worker_init: draw this worker's share, and open its memory counter."""
        self.turn.pass_on_if_gone()
        self.served = itertools.count(1)
        if self.max_requests:
            self.share = self.max_requests + random.randint(0, self.jitter)  # noqa: S311 not for security
            # Logged so that the share and its spread can be checked against the composed stack.
            log.info("worker %s recycles after %s requests (GUNICORN_MAX_REQUESTS with jitter)", pid, self.share)
        if self.ceiling_bytes:
            self.memory()

    def due(self, log, pid):
        """In post_request: True when this worker should stop after its requests in flight.
        next() on a count is atomic, so a gthread worker's threads each count once."""
        served = next(self.served)
        rss = self.memory() if self.ceiling_bytes else None
        if rss is not None and rss > self.ceiling_bytes:
            # Memory comes first: recycle now, taking the turn if it is free so that no worker
            # recycles for its request count meanwhile, but never waiting for it.
            self.turn.take(pid)
            self.reason = "memory"
            reason = f"holds {rss // 2**20} MiB, over the {self.ceiling_bytes // 2**20} MiB ceiling"
        elif self.share and served >= self.share:
            if not self.turn.take(pid):
                # Another worker is recycling: serve on, and ask again after the next request.
                return False
            self.reason = "max_requests"
            reason = f"served {served} requests (GUNICORN_MAX_REQUESTS)"
        else:
            return False
        log.warning("worker %s %s: recycling it after its requests in flight", pid, reason)
        return True
