"""The ASGI reference: the web app's benchmarked endpoints in Starlette, served by uvicorn.

It does the same work as the Flask app (same JSON, same sha256 rounds, same static file,
a fresh upstream connection per outbound call, the same database wait: a connection of this
worker's pool held in Postgres, through PgBouncer, in a transaction committed at the end), so
the benchmark can test the claim that an ASGI stack is several times faster than Flask on a
WSGI server.
"""

import asyncio
import hashlib
import os
import socket
import time
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from psycopg import OperationalError
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

SLEEP_MAX_MS = 10_000
COMPUTE_MAX_ROUNDS = 1_000_000
STATIC_DIR = Path(os.environ.get("ASGI_STATIC_DIR", "/srv/web/app/static"))
OUTBOUND_URL = os.environ.get("APP_OUTBOUND_URL", "").rstrip("/")
# The stack's own database settings and defaults (services/web/stack/settings.py); no host, no
# database endpoint.
DB_HOST = os.environ.get("APP_DB_HOST", "")


def db_connection_arguments():
    """What psycopg connects with, as the stack's (stack/database.py): libpq's parameters, the
    password from its file, and no prepared statements (PgBouncer in transaction mode)."""
    with open(os.environ.get("APP_DB_PASSWORD_FILE", "/run/secrets/db_password"), encoding="utf-8") as secret:
        password = secret.read().strip()
    return {
        "host": DB_HOST,
        "port": int(os.environ.get("APP_DB_PORT", "5432")),
        "dbname": os.environ.get("APP_DB_NAME", "app"),
        "user": os.environ.get("APP_DB_USER", "app"),
        "password": password,
        "application_name": socket.gethostname(),
        "connect_timeout": 3,
        "prepare_threshold": None,
    }


def bounded(value, name, upper):
    if value > upper:
        return JSONResponse({"error": "bad_request", "message": f"{name} must be at most {upper}"}, status_code=400)
    return None


async def healthz(request):
    return JSONResponse({"status": "ok"})


async def sleep(request):
    wait_ms = request.path_params["ms"]
    if refusal := bounded(wait_ms, "ms", SLEEP_MAX_MS):
        return refusal
    started = time.perf_counter()
    await asyncio.sleep(wait_ms / 1000)
    return JSONResponse({"slept_ms": wait_ms, "elapsed_ms": round((time.perf_counter() - started) * 1000, 3)})


async def outbound(request):
    wait_ms = request.path_params["ms"]
    if refusal := bounded(wait_ms, "ms", SLEEP_MAX_MS):
        return refusal
    started = time.perf_counter()
    try:
        response = await request.app.state.http.get(f"{OUTBOUND_URL}/sleep/{wait_ms}")
    except httpx.HTTPError as error:
        return JSONResponse({"error": "bad_gateway", "message": str(error)}, status_code=502)
    if response.status_code != 200:
        message = f"the upstream answered {response.status_code}"
        return JSONResponse({"error": "bad_gateway", "message": message}, status_code=502)
    return JSONResponse(
        {
            "upstream_status": response.status_code,
            "waited_ms": wait_ms,
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 3),
        }
    )


async def db_sleep(request):
    wait_ms = request.path_params["ms"]
    if refusal := bounded(wait_ms, "ms", SLEEP_MAX_MS):
        return refusal
    started = time.perf_counter()
    try:
        async with request.app.state.db.connection() as conn:
            await conn.execute("SELECT pg_sleep(%s)", (wait_ms / 1000,))
    except (PoolTimeout, OperationalError) as error:
        return JSONResponse({"error": "database_unavailable", "message": str(error)}, status_code=503)
    return JSONResponse({"slept_ms": wait_ms, "elapsed_ms": round((time.perf_counter() - started) * 1000, 3)})


async def compute(request):
    rounds = request.path_params["n"]
    if refusal := bounded(rounds, "n", COMPUTE_MAX_ROUNDS):
        return refusal
    started = time.perf_counter()
    digest = b""
    # Run in the event loop, as a plain `async def` handler would: CPU work blocks it.
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return JSONResponse(
        {
            "rounds": rounds,
            "sha256": digest.hex(),
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 3),
        }
    )


@asynccontextmanager
async def lifespan(app):
    # No idle connections kept: each call opens its own, like the Flask app's urllib call.
    async with httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0), timeout=15) as client:
        app.state.http = client
        if not DB_HOST:
            yield
            return
        # One pool per worker process, sized and timed out as the stack's (APP_DB_POOL_SIZE,
        # APP_DB_POOL_TIMEOUT), opened without waiting for the database.
        pool = AsyncConnectionPool(
            kwargs=db_connection_arguments(),
            min_size=1,
            max_size=int(os.environ.get("APP_DB_POOL_SIZE", "10")),
            timeout=int(os.environ.get("APP_DB_POOL_TIMEOUT", "5")),
            open=False,
        )
        await pool.open(wait=False)
        app.state.db = pool
        try:
            yield
        finally:
            await pool.close(timeout=1)


app = Starlette(
    routes=[
        Route("/healthz", healthz),
        Route("/api/sleep/{ms:int}", sleep),
        Route("/api/outbound/{ms:int}", outbound),
        Route("/api/compute/{n:int}", compute),
        # Only with a database, as the stack mounts its database probes (404 without).
        *([Route("/api/db/sleep/{ms:int}", db_sleep)] if DB_HOST else []),
        Mount("/static", StaticFiles(directory=STATIC_DIR)),
    ],
    lifespan=lifespan,
)
