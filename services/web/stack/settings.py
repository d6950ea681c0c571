"""The stack's own settings, read from the environment once (see .env.example): its WSGI
wrapper's and probes' (APP_*), and its hooks' around gunicorn (the drain, the memory ceiling
and connection turns), which gunicorn itself knows nothing of. gunicorn's own settings are in
gunicorn_settings.py."""

import os

from . import env

DEFAULTS = {
    # nginx in front is exactly one proxy hop; 0 disables ProxyFix (app served directly).
    "TRUSTED_PROXY_HOPS": 1,
    # Must match nginx's client_max_body_size so both layers refuse the same bodies.
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    # Upper bounds for the probe endpoints, so no request can hold a worker for long.
    "SLEEP_MAX_MS": 10_000,
    "COMPUTE_MAX_ROUNDS": 1_000_000,
    # Host names the app and the probes answer to (Flask answers others with a 400); None = any.
    "TRUSTED_HOSTS": None,
    # The probe endpoints of the test contract (stack/probes/contract.py). Off unless asked for, as
    # in the production overlay: a public /api/sleep/10000 invites anyone to tie up workers.
    "PROBES": False,
    # Test-only endpoints under /api/faults/; never enabled in production.
    "FAULT_INJECTION": False,
    # Base URL (http or https) that /api/outbound/<ms> calls; None = no such endpoint.
    "OUTBOUND_URL": None,
    "APP_VERSION": "dev",
    # Prometheus metrics (metrics.py), served on a port of their own by metrics_exporter.py.
    "METRICS": True,
    "METRICS_PORT": 9464,
    # Seconds a stopping replica serves on before gunicorn's stop (drain_then_stop.py): long
    # enough for nginx to see its 503 and stop choosing it.
    "DRAIN_SECONDS": 3,
    # Resident memory a worker may hold before it is recycled; 0 = no ceiling.
    "MAX_WORKER_MEMORY_MB": 256,
    # A gevent worker's connections take turns after each response (connection_turns.py).
    "CONNECTION_TURNS": True,
    # The database the stack's database probes use (database.py); None = no database. The
    # compose files point it at PgBouncer, which bounds what Postgres sees (docs/database.md).
    "DB_HOST": None,
    "DB_PORT": 5432,
    "DB_NAME": "app",
    "DB_USER": "app",
    # A file, as Compose and Swarm mount secrets: the password is never an environment variable.
    "DB_PASSWORD_FILE": "/run/secrets/db_password",
    # Connections each worker's pool may hold: with PgBouncer in front these are cheap client
    # connections, and PgBouncer's own pool is the bound on Postgres's (docs/database.md).
    "DB_POOL_SIZE": 10,
    # Seconds a request waits for a connection of its worker's pool before its JSON 503.
    "DB_POOL_TIMEOUT": 5,
}
# The hooks' settings, reported by /api/settings and logged at start beside gunicorn's.
HOOKS = ("DRAIN_SECONDS", "MAX_WORKER_MEMORY_MB", "CONNECTION_TURNS")


def settings_from_env(environ=None):
    """Return the settings, each taken from its environment variable when set."""
    environ = os.environ if environ is None else environ
    return {
        "TRUSTED_PROXY_HOPS": env.whole(environ, "APP_TRUSTED_PROXY_HOPS", DEFAULTS["TRUSTED_PROXY_HOPS"]),
        "MAX_CONTENT_LENGTH": env.whole(environ, "APP_MAX_BODY_BYTES", DEFAULTS["MAX_CONTENT_LENGTH"]),
        "SLEEP_MAX_MS": env.whole(environ, "APP_SLEEP_MAX_MS", DEFAULTS["SLEEP_MAX_MS"]),
        "COMPUTE_MAX_ROUNDS": env.whole(environ, "APP_COMPUTE_MAX_ROUNDS", DEFAULTS["COMPUTE_MAX_ROUNDS"]),
        "TRUSTED_HOSTS": env.names(environ, "APP_TRUSTED_HOSTS") or DEFAULTS["TRUSTED_HOSTS"],
        "PROBES": env.switch(environ, "APP_PROBES", DEFAULTS["PROBES"]),
        "FAULT_INJECTION": env.switch(environ, "APP_FAULT_INJECTION", DEFAULTS["FAULT_INJECTION"]),
        "OUTBOUND_URL": env.http_url(environ, "APP_OUTBOUND_URL") or DEFAULTS["OUTBOUND_URL"],
        "APP_VERSION": env.text(environ, "APP_VERSION", DEFAULTS["APP_VERSION"]),
        "METRICS": env.switch(environ, "APP_METRICS", DEFAULTS["METRICS"]),
        "METRICS_PORT": env.whole(environ, "APP_METRICS_PORT", DEFAULTS["METRICS_PORT"], minimum=1),
        "DRAIN_SECONDS": env.whole(environ, "GUNICORN_DRAIN_SECONDS", DEFAULTS["DRAIN_SECONDS"]),
        "MAX_WORKER_MEMORY_MB": env.whole(environ, "GUNICORN_MAX_WORKER_MEMORY_MB", DEFAULTS["MAX_WORKER_MEMORY_MB"]),
        "CONNECTION_TURNS": env.switch(environ, "GUNICORN_CONNECTION_TURNS", DEFAULTS["CONNECTION_TURNS"]),
        "DB_HOST": env.text(environ, "APP_DB_HOST", DEFAULTS["DB_HOST"]),
        "DB_PORT": env.whole(environ, "APP_DB_PORT", DEFAULTS["DB_PORT"], minimum=1),
        "DB_NAME": env.text(environ, "APP_DB_NAME", DEFAULTS["DB_NAME"]),
        "DB_USER": env.text(environ, "APP_DB_USER", DEFAULTS["DB_USER"]),
        "DB_PASSWORD_FILE": env.text(environ, "APP_DB_PASSWORD_FILE", DEFAULTS["DB_PASSWORD_FILE"]),
        "DB_POOL_SIZE": env.whole(environ, "APP_DB_POOL_SIZE", DEFAULTS["DB_POOL_SIZE"], minimum=1),
        "DB_POOL_TIMEOUT": env.whole(environ, "APP_DB_POOL_TIMEOUT", DEFAULTS["DB_POOL_TIMEOUT"], minimum=1),
    }


def hook_settings(settings):
    """The hooks' settings by their reported names (drain_seconds, max_worker_memory_mb, ...)."""
    return {name.lower(): settings[name] for name in HOOKS}
