"""Draining: a stopping replica answers idempotent requests with a 503 that nginx retries.

drain_then_stop.py, the container's first process, raises the flag when the container is
told to stop, and passes the stop on to gunicorn only after GUNICORN_DRAIN_SECONDS.
Meanwhile nginx retries each 503 on another replica (proxy_next_upstream http_503) and
marks this one failed, so it stops choosing it. Requests nginx must never resend (POST,
PATCH, LOCK) are still served. Only then does gunicorn close its listener, so no connection
waits in a closing accept queue.

The flag is a file on tmpfs: gunicorn's worker_tmp_dir, which a read-only root leaves
writable. Looking for it costs each request one stat() of a memory-backed file.
"""

import json
import os
from pathlib import Path

from .gunicorn_settings import worker_tmp_dir

# Methods nginx does not pass to another replica once sent; a draining replica serves them.
NON_IDEMPOTENT_METHODS = frozenset({"POST", "PATCH", "LOCK"})
FLAG_NAME = "stack-draining"


def flag_path(environ):
    """Where the flag is, for the first process and for the workers alike."""
    return Path(worker_tmp_dir(environ)) / FLAG_NAME


class DrainFlag:
    def __init__(self, path):
        self.path = str(path)

    def raise_(self):
        Path(self.path).touch()

    def lower(self):
        Path(self.path).unlink(missing_ok=True)

    def is_raised(self):
        return os.path.exists(self.path)


class DrainingMiddleware:
    """Answer idempotent requests with a retryable JSON 503 while the drain flag is up."""

    def __init__(self, app, flag, retry_after_s=1):
        self.app = app
        self.flag = flag
        self.retry_after = str(retry_after_s)

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") in NON_IDEMPOTENT_METHODS or not self.flag.is_raised():
            return self.app(environ, start_response)
        body = (
            json.dumps(
                {
                    "error": "draining",
                    "status": 503,
                    "message": "This replica is shutting down; the request can be retried on another.",
                    "request_id": environ.get("HTTP_X_REQUEST_ID", ""),
                }
            ).encode()
            + b"\n"
        )
        start_response(
            "503 Service Unavailable",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Retry-After", self.retry_after),
            ],
        )
        return [body]
