"""X-Request-ID: take the proxy's id when well-formed, else make one; echo it back."""

import re
import uuid

from flask import g, request

HEADER = "X-Request-ID"
# Same rule as nginx's: 8 to 128 characters from a safe alphabet (nothing to inject in logs).
WELL_FORMED = re.compile(r"[A-Za-z0-9._-]{8,128}")


def current():
    return g.get("request_id", "")


def _take_or_make():
    supplied = request.headers.get(HEADER, "")
    g.request_id = supplied if WELL_FORMED.fullmatch(supplied) else uuid.uuid4().hex


def _echo(response):
    response.headers[HEADER] = current()
    return response


def init_app(app):
    app.before_request(_take_or_make)
    app.after_request(_echo)
