"""An endpoint whose work is a call to another HTTP service: the most common IO wait.

Mounted only when APP_PROBES is on and APP_OUTBOUND_URL names that service; the benchmark points it at a
slow upstream of its own, to compare worker models on network IO as well as on sleep.
"""

import time
import urllib.error
import urllib.request

from flask import Blueprint, abort, current_app, jsonify

from .answers import bounded_int

blueprint = Blueprint("outbound", __name__)

# Seconds the upstream may take beyond the wait it was asked for.
UPSTREAM_GRACE_SECONDS = 5


@blueprint.get("/api/outbound/<ms>")
def outbound(ms):
    """Ask the upstream to wait `ms` milliseconds (GET <APP_OUTBOUND_URL>/sleep/<ms>)."""
    wait_ms = bounded_int(ms, "ms", current_app.config["SLEEP_MAX_MS"])
    url = f"{current_app.config['OUTBOUND_URL'].rstrip('/')}/sleep/{wait_ms}"
    started = time.perf_counter()
    try:
        # A plain blocking call, as most apps make: the worker model decides what waits.
        with urllib.request.urlopen(url, timeout=wait_ms / 1000 + UPSTREAM_GRACE_SECONDS) as response:  # noqa: S310 the URL's scheme is checked in settings
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        abort(502, description=f"the upstream answered {error.code}")
    except (urllib.error.URLError, OSError) as error:
        abort(502, description=f"the upstream could not be reached: {getattr(error, 'reason', error)}")
    return jsonify(
        upstream_status=status,
        waited_ms=wait_ms,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
    )
