"""A response's head leaves in the same write as its first body bytes.

gunicorn writes the status line and headers, then the body, in two writes. A worker
killed between the two leaves nginx holding a complete head: nginx has already passed it
on to the client, so it can no longer retry the request on another replica, and the
client gets a response cut short. Held back until the body is ready, the head and body
reach the socket in one write: a worker killed before it has sent nothing, and nginx
retries the request elsewhere (proxy_next_upstream) as for any replica that died.

File responses sent with sendfile still send the head first: the kernel copies the file
straight from disk, so there is nothing to join the head to. A streamed body's later
chunks are separate writes, as they must be; the head goes with the first.
"""

from gunicorn import util
from gunicorn.http import wsgi


def _take_held_head(response):
    head = getattr(response, "_held_head", b"")
    response._held_head = b""
    return head


def _frame(response, data):
    """Body bytes as they go on the wire: a chunk when the response is chunked."""
    if response.chunked:
        return b"%X\r\n%s\r\n" % (len(data), data)
    return data


def hold_head(response):
    """Build the head as gunicorn would, and keep it until the body is written."""
    if response.headers_sent:
        return
    lines = response.default_headers()
    lines.extend(f"{name}: {value}\r\n" for name, value in response.headers)
    response._held_head = ("".join(lines) + "\r\n").encode("latin-1")
    response.headers_sent = True
    if response._omits_body:
        # HEAD, 204 and 304: the head is the whole response, so it goes now, as one write.
        response.sock.sendall(_take_held_head(response))


def emit_body_with_head(response, data):
    response.sock.sendall(_take_held_head(response) + _frame(response, data))


def close_with_head(response):
    response.send_headers()
    # The zero-size chunk ends a chunked body; an unchunked one ends at its length.
    tail = _frame(response, b"") if response.chunked else b""
    message = _take_held_head(response) + tail
    if message:
        response.sock.sendall(message)


def make_sendfile_flush_head(original_sendfile):
    def sendfile(response, respiter):
        # Where gunicorn would not use sendfile, the body goes through write(), with the head.
        if response.cfg.is_ssl or not response.can_sendfile() or not util.has_fileno(respiter.filelike):
            return False
        # The file goes out through the kernel, not _emit_body: the head must go first.
        response.send_headers()
        head = _take_held_head(response)
        if head:
            response.sock.sendall(head)
        return original_sendfile(response, respiter)

    return sendfile


def install():
    """Make gunicorn's Response (used by every worker class) write head and body together."""
    if getattr(wsgi.Response, "_single_write_installed", False):
        return
    wsgi.Response.send_headers = hold_head
    wsgi.Response._emit_body = emit_body_with_head
    wsgi.Response.close = close_with_head
    wsgi.Response.sendfile = make_sendfile_flush_head(wsgi.Response.sendfile)
    wsgi.Response._single_write_installed = True
