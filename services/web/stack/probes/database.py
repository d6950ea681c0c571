"""The database probes (docs/configuration.md, "Probes"): IO-bound work that waits in
Postgres itself, and writes the tests count after rollouts, scaling, crashes and restarts.
Mounted when APP_PROBES is on and APP_DB_HOST names a database.

- GET /api/db/sleep/<ms>: holds a pooled connection <ms> milliseconds in the database
  (pg_sleep), bounded by APP_SLEEP_MAX_MS like /api/sleep;
- POST /api/db/writes: stores the request's X-Request-ID and body; 201 only once committed.
  The id is the key, so a retry of the same request stores nothing twice, whether the
  client's or the stack's own after a lost connection (database.run);
- GET /api/db/writes/<id>: reads one back, 404 if absent.

The table is the stack's, made by the first migration (migrations/versions/).
"""

import hashlib
import time

from flask import Blueprint, abort, current_app, jsonify, request

from .. import database
from .answers import bounded_int, json_error, request_id, served_by

blueprint = Blueprint("database_probes", __name__)


def _unavailable(error):
    """The database could not answer in time: a retryable 503, as JSON like every probe error."""
    response = json_error(503, "database_unavailable", str(error))
    response.headers["Retry-After"] = "1"
    return response


blueprint.register_error_handler(database.Unavailable, _unavailable)


@blueprint.get("/api/db/sleep/<ms>")
def db_sleep(ms):
    wait_ms = bounded_int(ms, "ms", current_app.config["SLEEP_MAX_MS"])
    started = time.perf_counter()
    database.run(current_app.config, lambda conn: conn.execute("SELECT pg_sleep(%s)", (wait_ms / 1000,)))
    return jsonify(
        slept_ms=wait_ms,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
        **served_by(),
    )


@blueprint.post("/api/db/writes")
def store_write():
    write_id = request_id()
    body = request.get_data(cache=False)

    def store(conn):
        # A retry of a write that was stored (its answer lost on the way) stores nothing again.
        conn.execute(
            "INSERT INTO stack_probe_writes (id, body) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
            (write_id, body),
        )
        return conn.execute("SELECT body FROM stack_probe_writes WHERE id = %s", (write_id,)).fetchone()

    stored = database.run(current_app.config, store)
    if bytes(stored[0]) != body:
        abort(409, description=f"a different body is already stored under the id {write_id}")
    # Committed above: the 201 is sent only for a write that is in the database.
    response = jsonify(id=write_id, **_described(body), **served_by())
    response.status_code = 201
    return response


@blueprint.get("/api/db/writes/<write_id>")
def read_write(write_id):
    query = "SELECT body FROM stack_probe_writes WHERE id = %s"
    row = database.run(current_app.config, lambda conn: conn.execute(query, (write_id,)).fetchone())
    if row is None:
        abort(404, description="no write is stored under that id")
    return jsonify(id=write_id, **_described(bytes(row[0])))


def _described(body):
    return {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
