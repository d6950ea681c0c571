"""What every probe answers with: path numbers parsed within bounds, the request's id, and
JSON errors (so every error on the probes' paths is JSON whatever the user's app does)."""

import os
import socket

from flask import abort, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError


def bounded_int(raw, name, upper):
    """Parse a path parameter as an int in [0, upper], or answer 400 saying why."""
    if not raw.isascii() or not raw.isdigit():
        abort(400, description=f"{name} must be a whole number from 0 to {upper}, got {_cut(raw)!r}")
    # Too many digits is too large, decided before int(), which refuses over 4300 digits.
    digits = raw.lstrip("0") or "0"
    if len(digits) > len(str(upper)) or int(digits) > upper:
        abort(400, description=f"{name} must be at most {upper}, got {_cut(digits)}")
    return int(digits)


def _cut(text, longest=40):
    """The client's value for an error message, cut short: a huge one is not echoed whole."""
    return text if len(text) <= longest else f"{text[:longest]}... ({len(text)} characters)"


def served_by():
    """The replica and worker that answered: the live page counts requests by them."""
    return {"hostname": socket.gethostname(), "pid": os.getpid()}


def request_id():
    """The id the stack's RequestId middleware put in the request (request_id.py)."""
    return request.headers.get("X-Request-ID", "")


def json_error(status, error, message):
    body = jsonify(error=error, status=status, message=message, request_id=request_id())
    body.status_code = status
    return body


def http_error(exc):
    response = json_error(exc.code, _slug(exc.name), exc.description)
    # Keep headers the error carries, such as Allow on a 405.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def unexpected_error(exc):
    if isinstance(exc, HTTPException):
        return http_error(exc)
    # Flask logs an exception only when no handler takes it: this one must, or a 500 leaves
    # no trace in the logs.
    current_app.log_exception((type(exc), exc, exc.__traceback__))
    error = InternalServerError()
    return json_error(error.code, _slug(error.name), "The server could not complete the request.")


def _slug(name):
    return name.lower().replace(" ", "_").replace("'", "")
