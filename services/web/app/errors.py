"""The demo app's errors: JSON on its /api/ paths, Flask's HTML pages elsewhere.

The request id in each JSON error is the one the stack put in the request's X-Request-ID
header; any app can read it the same way, without importing the stack.
"""

from flask import current_app, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

API_PREFIX = "/api/"


def wants_json():
    return request.path.startswith(API_PREFIX)


def json_error(status, error, message):
    body = jsonify(error=error, status=status, message=message, request_id=request.headers.get("X-Request-ID", ""))
    body.status_code = status
    return body


def _http_error(exc):
    if not wants_json():
        return exc
    response = json_error(exc.code, _slug(exc.name), exc.description)
    # Keep headers the error carries, such as Allow on a 405.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _unexpected_error(exc):
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    # Flask logs an exception only when no handler takes it: this one must, or a 500 leaves
    # no trace in the logs.
    current_app.log_exception((type(exc), exc, exc.__traceback__))
    if not wants_json():
        return InternalServerError()
    return json_error(500, "internal_server_error", "The server could not complete the request.")


def _slug(name):
    return name.lower().replace(" ", "_").replace("'", "")


def init_app(app):
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
