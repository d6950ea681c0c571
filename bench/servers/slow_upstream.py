"""The benchmark's slow upstream: GET /sleep/<ms> answers "ok" after ms milliseconds.

What /api/outbound/<ms> calls. Asynchronous, so it can hold every caller's request at
once and the wait it adds is the one asked for, whatever the load.
"""

import asyncio

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

SLEEP_MAX_MS = 10_000


async def sleep(request):
    wait_ms = min(request.path_params["ms"], SLEEP_MAX_MS)
    await asyncio.sleep(wait_ms / 1000)
    return PlainTextResponse("ok")


async def healthz(request):
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/sleep/{ms:int}", sleep), Route("/healthz", healthz)])
