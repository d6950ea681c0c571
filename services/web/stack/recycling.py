"""Workers recycled for their request count (gunicorn's own max_requests) or their memory.

gunicorn's own max_requests and max_requests_jitter stop a worker after its share of
requests (GUNICORN_MAX_REQUESTS plus up to GUNICORN_MAX_REQUESTS_JITTER, drawn when it
starts), after its requests in flight, and the master starts a fresh one. The stack adds
what gunicorn has no setting for: a ceiling on a worker's resident memory
(GUNICORN_MAX_WORKER_MEMORY_MB, the job of uWSGI's reload-on-rss). Past it, the
post_request hook sets the worker's `alive` to False, gunicorn's own way to stop a worker
after its requests in flight. The hook also logs each worker's share when it starts and
the recycle when it comes, and says why for the metrics, reading the worker's own
`max_requests` (its share).

The stack once made workers take turns to recycle for their count; measured at the
shipped defaults, gunicorn's own setting failed no request and never left a replica
accepting nothing for a second (docs/configuration.md, "Recycling", has the measurement).
"""

import itertools
import os
import sys

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
    counts are its own."""

    def __init__(self, ceiling_bytes, memory=None):
        self.ceiling_bytes = ceiling_bytes
        self.memory = memory or ResidentMemory()
        self.completed = itertools.count(1)
        self.said = itertools.count()

    def start(self, log, worker):
        """In post_worker_init: log the worker's share, and open its memory counter."""
        self.completed = itertools.count(1)
        self.said = itertools.count()
        if worker.max_requests < sys.maxsize:  # gunicorn's "never" when max_requests is 0
            # Logged so that the share and its spread can be checked against the composed stack.
            log.info(
                "worker %s recycles after %s requests (GUNICORN_MAX_REQUESTS with jitter)",
                worker.pid,
                worker.max_requests,
            )
        if self.ceiling_bytes:
            self.memory()

    def due(self, log, worker):
        """In post_request: why this worker stops after its requests in flight, "max_requests"
        or "memory", the first time it is so; None otherwise. next() on a count is atomic,
        so a gthread worker's threads each count once, and it is said once."""
        completed = next(self.completed)
        if completed >= worker.max_requests:
            # gunicorn has already set worker.alive to False, when the request that reached
            # the share began; this is the first to finish with the share served.
            reason, why = "max_requests", f"served {completed} requests (GUNICORN_MAX_REQUESTS)"
        elif self.ceiling_bytes and (rss := self.memory()) > self.ceiling_bytes:
            reason, why = "memory", f"holds {rss // 2**20} MiB, over the {self.ceiling_bytes // 2**20} MiB ceiling"
        else:
            return None
        if next(self.said):
            return None
        log.warning("worker %s %s: recycling it after its requests in flight", worker.pid, why)
        return reason
