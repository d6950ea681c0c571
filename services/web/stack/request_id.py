"""X-Request-ID: take the proxy's id when well-formed, else make one; echo it on the response.

WSGI middleware around the whole application, so the user's app, the probes and
gunicorn's access log (which logs the response header) all see the same id. The app reads
it as any request header: `request.headers["X-Request-ID"]`. The id is also the
context's while the request is served (`current()`), for the log lines it causes
(json_logs.py).
"""

import contextvars
import re
import uuid

from werkzeug.wsgi import ClosingIterator

HEADER = "X-Request-ID"
ENVIRON_KEY = "HTTP_X_REQUEST_ID"
# Same rule as nginx's: 8 to 128 characters from a safe alphabet (nothing to inject in logs).
WELL_FORMED = re.compile(r"[A-Za-z0-9._-]{8,128}")
# Per thread (gthread, sync) or per greenlet (gevent: each has a context of its own).
_serving = contextvars.ContextVar("request_id", default=None)


def current():
    """The id of the request this thread or greenlet is serving, or None between requests."""
    return _serving.get()


class RequestId:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        supplied = environ.get(ENVIRON_KEY, "")
        request_id = supplied if WELL_FORMED.fullmatch(supplied) else uuid.uuid4().hex
        environ[ENVIRON_KEY] = request_id

        def start_with_id(status, headers, exc_info=None):
            headers = [(name, value) for name, value in headers if name.lower() != "x-request-id"]
            headers.append((HEADER, request_id))
            return start_response(status, headers, exc_info)

        _serving.set(request_id)
        try:
            body = self.app(environ, start_with_id)
        except BaseException:
            _serving.set(None)
            raise
        # Until the response is closed: lines logged while its body is sent carry the id too.
        return ClosingIterator(body, lambda: _serving.set(None))
