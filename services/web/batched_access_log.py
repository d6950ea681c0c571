"""gunicorn's access log written in batches: one write to stdout for many lines.

Each write to a container's stdout costs Docker's log pipeline (containerd-shim and dockerd)
CPU of its own: written line by line, a replica served a fifth fewer requests on the trivial
endpoint (make bench-tuning). A line waits about GUNICORN_ACCESS_LOG_FLUSH_SECONDS at most,
like nginx's access log (buffer=4k flush=1s); 0 writes each line at once.
"""

import errno
import logging
import os
import sys
import threading
import time

# A pipe takes a write of up to 4 KiB whole (PIPE_BUF): the workers' batches never mix.
# A single line over 4 KiB (a request line may be 8k) is written alone, and may mix, as
# gunicorn's own handler's would.
BATCH_BYTES = 4096


class BatchedLines(logging.Handler):
    """Holds formatted lines; writes them, whole, when a batch is full or its oldest line
    has waited the interval. A line longer than a batch is written by itself."""

    def __init__(self, write, interval_s, batch_bytes=BATCH_BYTES, clock=time.monotonic):
        super().__init__()
        self.write = write
        self.interval_s = interval_s
        self.batch_bytes = batch_bytes
        self.clock = clock
        self.lines = []
        self.size = 0
        self.oldest = None
        self.stopped = threading.Event()

    def emit(self, record):
        try:
            line = (self.format(record) + "\n").encode("utf-8", "backslashreplace")
            if self.size + len(line) > self.batch_bytes:
                self._write_held()
            self.lines.append(line)
            self.size += len(line)
            if self.oldest is None:
                self.oldest = self.clock()
            if self.size >= self.batch_bytes or self.clock() - self.oldest >= self.interval_s:
                self._write_held()
        except Exception:
            self.handleError(record)

    def flush(self):
        with self.lock:
            try:
                self._write_held()
            except OSError as error:
                # Only when stdout is gone (the container is stopping): nothing to write to.
                if error.errno not in (errno.EPIPE, errno.EBADF):
                    raise

    def close(self):
        self.stopped.set()
        super().close()

    def _write_held(self):
        data = b"".join(self.lines)
        self.lines, self.size, self.oldest = [], 0, None
        while data:
            data = data[self.write(data):]

    def flush_periodically(self):
        """Write held lines once the oldest has waited the interval, also when no request
        comes to push them out. A daemon thread; in a gevent worker (monkey-patched by then)
        a greenlet. It looks four times an interval: a line waits at most 1.25 intervals."""
        threading.Thread(target=self._flush_when_due, name="access-log-flush", daemon=True).start()

    def _flush_when_due(self):
        while not self.stopped.wait(self.interval_s / 4):
            with self.lock:
                if self.oldest is not None and self.clock() - self.oldest >= self.interval_s:
                    self.flush()


def batch_access_log(log, interval_s):
    """In a worker: replace gunicorn's access log handler to stdout with BatchedLines.

    Returns the new handler, or None when the access log goes elsewhere (a file, syslog,
    a logging config) and is left as it is."""
    access_log = getattr(log, "access_log", None)
    stock = next((h for h in getattr(access_log, "handlers", ()) if getattr(h, "_gunicorn", False)), None)
    if not isinstance(stock, logging.StreamHandler) or stock.stream is not sys.stdout:
        return None
    sys.stdout.flush()
    fd = sys.stdout.fileno()
    batched = BatchedLines(lambda data: os.write(fd, data), interval_s)
    batched.setFormatter(stock.formatter)
    # gunicorn finds (and on a reload replaces) its own handlers by this mark.
    batched._gunicorn = True
    access_log.removeHandler(stock)
    access_log.addHandler(batched)
    if interval_s > 0:
        batched.flush_periodically()
    return batched
