"""A replica's workers recycle for their request count (GUNICORN_MAX_REQUESTS) one at a time.

Workers that serve alike reach their share within seconds of each other, jitter or not. A
recycling gevent worker stops accepting when it next looks at its stop flag (about once a
second), then takes a while to exit, and the master starts its replacement only then: two
workers recycling together left a replica accepting nothing for seconds (found by make
bench; bench/README.md, "Tunings", has the measurement). So a worker recycles only when no
other worker of the replica is recycling; until then it serves on and asks again after
its next request. The turn passes on when the recycled worker's replacement starts. A
worker over the memory ceiling recycles at once, taking the turn only if it is free.
"""

import contextlib
import fcntl
import mmap
import os
import struct
import tempfile
import time

# The pid of the worker whose turn it is (0: nobody's), and when it took the turn.
_HOLDER = struct.Struct("qd")


class RecycleTurn:
    """Created in the master before the workers fork: shared memory says whose turn it is,
    and a POSIX lock on an unnamed file (held per process) keeps two workers from taking
    it at once."""

    def __init__(self, stale_after_s, directory=None):
        self._memory = mmap.mmap(-1, _HOLDER.size)
        # In gunicorn's worker_tmp_dir (tmpfs), writable under a read-only root filesystem.
        self._lock_file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 held for the master's lifetime
        # A holder that outlives this (stuck past the graceful timeout) no longer blocks others.
        self.stale_after_s = stale_after_s

    def holder(self):
        return _HOLDER.unpack(self._memory[:])[0]

    def take(self, pid):
        """True when it is now `pid`'s turn: nobody else's, or the holder's is stale. A holder
        that has exited keeps its turn until its replacement starts (pass_on_if_gone)."""
        with self._locked():
            holder, since = _HOLDER.unpack(self._memory[:])
            if holder not in (0, pid) and time.monotonic() - since < self.stale_after_s:
                return False
            self._memory[:] = _HOLDER.pack(pid, time.monotonic())
            return True

    def pass_on_if_gone(self):
        """Called as each worker starts: its predecessor's turn ends when that one has exited."""
        with self._locked():
            holder, _ = _HOLDER.unpack(self._memory[:])
            if holder and not _alive(holder):
                self._memory[:] = _HOLDER.pack(0, 0.0)

    @contextlib.contextmanager
    def _locked(self):
        fcntl.lockf(self._lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(self._lock_file.fileno(), fcntl.LOCK_UN)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    return True
