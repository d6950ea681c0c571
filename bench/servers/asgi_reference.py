"""The ASGI reference: the web app's benchmarked endpoints in Starlette, served by uvicorn.

It does the same work as the Flask app (same JSON, same sha256 rounds, same static file,
a fresh upstream connection per outbound call), so the benchmark can test the claim that
an ASGI stack is several times faster than Flask on a WSGI server.
"""

import asyncio
import hashlib
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

SLEEP_MAX_MS = 10_000
COMPUTE_MAX_ROUNDS = 1_000_000
STATIC_DIR = Path(os.environ.get("ASGI_STATIC_DIR", "/srv/web/app/static"))
OUTBOUND_URL = os.environ.get("APP_OUTBOUND_URL", "").rstrip("/")


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
        yield


app = Starlette(
    routes=[
        Route("/healthz", healthz),
        Route("/api/sleep/{ms:int}", sleep),
        Route("/api/outbound/{ms:int}", outbound),
        Route("/api/compute/{n:int}", compute),
        Mount("/static", StaticFiles(directory=STATIC_DIR)),
    ],
    lifespan=lifespan,
)
