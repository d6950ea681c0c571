"""The database connections of the stack's database probes (probes/database.py): one
psycopg pool per worker process, opened after gunicorn's fork (gunicorn.conf.py's
post_worker_init) or at the first request under another server, and closed at the worker's
exit.

psycopg is imported here, inside open_pool, never at a module's top: psycopg picks its way
of waiting on the socket when it is first imported, and it cooperates with gevent only if
gevent has patched the standard library by then. gunicorn's gevent worker patches when the
worker starts, after the fork, so an import in the master (gunicorn.conf.py, or the app under
GUNICORN_PRELOAD) would leave every query blocking the whole worker (docs/database.md).
"""

import socket
import threading
import time
from contextlib import contextmanager

_pool = None
_opening = threading.Lock()


class Unavailable(Exception):
    """No connection could be had within the pool's wait: the request's answer is a 503."""


def configured(settings):
    return bool(settings["DB_HOST"])


def read_password(path):
    """The password from its secret file (Compose and Swarm mount them under /run/secrets)."""
    with open(path, encoding="utf-8") as secret:
        return secret.read().strip()


def connection_arguments(settings):
    """What psycopg connects with: libpq's own parameters."""
    return {
        "host": settings["DB_HOST"],
        "port": settings["DB_PORT"],
        "dbname": settings["DB_NAME"],
        "user": settings["DB_USER"],
        "password": read_password(settings["DB_PASSWORD_FILE"]),
        # Which replica a server connection serves, in pg_stat_activity and PgBouncer's SHOW CLIENTS.
        "application_name": socket.gethostname(),
        # A host that does not answer fails the attempt in seconds, never a worker's lifetime.
        "connect_timeout": 3,
        # PgBouncer in transaction mode hands each transaction any server connection, which
        # has not prepared this connection's statements: psycopg must never prepare them.
        "prepare_threshold": None,
    }


def open_pool(settings):
    """This process's pool, opened once; its connections are made in the background."""
    global _pool
    with _opening:
        if _pool is None:
            from psycopg_pool import ConnectionPool

            _pool = ConnectionPool(
                kwargs=connection_arguments(settings),
                # One connection kept open: the first request after a quiet spell needs no handshake.
                min_size=1,
                max_size=settings["DB_POOL_SIZE"],
                timeout=settings["DB_POOL_TIMEOUT"],
                name=f"stack-{socket.gethostname()}",
                open=False,
            )
            # Not waiting: a database that is down must not stop the worker from serving
            # the routes that do not need it (docs/database.md, "When the database fails").
            _pool.open(wait=False)
        return _pool


def close_pool():
    """Close this process's connections (gunicorn's worker_exit): Postgres sees them go at once."""
    global _pool
    with _opening:
        if _pool is not None:
            _pool.close(timeout=1)
            _pool = None


@contextmanager
def connection(settings):
    """A connection of this process's pool, in a transaction committed when the block ends
    without an exception. Waiting out the pool's timeout, or the database failing while the
    block runs, raises Unavailable: the request's answer is a 503, never a 500."""
    from psycopg import InterfaceError, InternalError, OperationalError
    from psycopg_pool import PoolTimeout

    pool = open_pool(settings)
    try:
        with pool.connection() as conn:
            yield conn
    except PoolTimeout as error:
        raise Unavailable(f"no database connection within {settings['DB_POOL_TIMEOUT']} s") from error
    # The database or PgBouncer going away mid-transaction: a lost connection (Operational),
    # one already closed (Interface), or a reply that no longer fits the protocol's exchange
    # (Internal: PgBouncer answering for a server connection that crashed). The pool drops
    # such a connection when it comes back. An error in the SQL itself stays a 500: a bug.
    except (OperationalError, InterfaceError, InternalError) as error:
        raise Unavailable(f"the database could not be reached: {_first_line(error)}") from error


def _first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def run(settings, work):
    """`work(conn)` in a transaction of its own, its result returned once committed. A
    transaction that failed because the database went away (a restart, a failover) is run
    again on a fresh connection, after a short pause, until APP_DB_POOL_TIMEOUT has passed:
    a restart of Postgres is a wait, not an error. Only for work that may run twice: the
    probes' are, since a write is keyed by its request's id (docs/database.md)."""
    deadline = time.monotonic() + settings["DB_POOL_TIMEOUT"]
    pause = 0.1
    while True:
        try:
            with connection(settings) as conn:
                result = work(conn)
                conn.commit()
                return result
        except Unavailable:
            if time.monotonic() + pause >= deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, 1.0)
