"""Application settings read from environment variables, with production defaults."""

import os

DEFAULTS = {
    # nginx in front is exactly one proxy hop; 0 disables ProxyFix (app served directly).
    "TRUSTED_PROXY_HOPS": 1,
    # Must match nginx's client_max_body_size so both layers refuse the same bodies.
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    # Upper bounds for the work endpoints, so no request can hold a worker for long.
    "SLEEP_MAX_MS": 10_000,
    "COMPUTE_MAX_ROUNDS": 1_000_000,
}

ENV_NAMES = {
    "TRUSTED_PROXY_HOPS": "APP_TRUSTED_PROXY_HOPS",
    "MAX_CONTENT_LENGTH": "APP_MAX_BODY_BYTES",
    "SLEEP_MAX_MS": "APP_SLEEP_MAX_MS",
    "COMPUTE_MAX_ROUNDS": "APP_COMPUTE_MAX_ROUNDS",
}


def settings_from_env(environ=None):
    """Return the settings, each taken from its environment variable when set."""
    environ = os.environ if environ is None else environ
    settings = {}
    for key, default in DEFAULTS.items():
        name = ENV_NAMES[key]
        raw = environ.get(name, "").strip()
        if not raw:
            settings[key] = default
            continue
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")
        settings[key] = value
    return settings
