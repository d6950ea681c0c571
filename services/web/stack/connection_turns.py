"""A gevent worker's connections take turns: one request each, then the next one's
(GUNICORN_CONNECTION_TURNS, on by default).

The gevent worker serves each connection in a greenlet that reads the connection's next
request as soon as it has answered one. Under load that request is already waiting in the
socket, so the read returns at once and the greenlet never switches: one busy keep-alive
connection can hold the worker for seconds while the others, and the accept loop, wait:
a low median but a p99 over a second, and wrk timeouts. Waiting for gevent's loop to go
idle after each response lets every connection that is ready run first, which cut the
p99 at the same throughput (bench/README.md, "Tunings", has the measurement).
gevent.sleep(0) is not enough: it may resume this greenlet before the loop polls for IO,
and a new connection then waited behind the requests queued on another.
Under load, a connection's next request waits behind the work that is ready at that
moment, as in a queue, instead of going ahead of it.
"""


def _no_turns():
    return None


def take_turns(worker_class, switched_on=True):
    """The function post_request should call for this worker class (a no-op without gevent,
    or with the turns switched off)."""
    if worker_class != "gevent" or not switched_on:
        return _no_turns
    import gevent  # only gevent workers have it loaded and patched

    # Resumes once the loop has run every other ready greenlet and polled for IO.
    return gevent.idle
