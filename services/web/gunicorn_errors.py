"""gunicorn's own error responses as JSON, like every other error of the stack.

gunicorn answers a request head it cannot accept (a control character in a header value,
say) before the app sees it, with an HTML page. nginx passes such heads on, so without
this, clients of the JSON API would get HTML.
"""

import json

from gunicorn import util


def write_json_error(sock, status_int, reason, mesg):
    """Same signature and framing as gunicorn.util.write_error, with a JSON body."""
    body = json.dumps({
        "error": reason.lower().replace(" ", "_"),
        "status": status_int,
        "message": mesg,
        # gunicorn refused the head before reading it: the id is in nginx's X-Request-ID header.
        "request_id": None,
    }).encode() + b"\n"
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install():
    """Make gunicorn's workers (which call util.write_error) answer in JSON."""
    util.write_error = write_json_error
