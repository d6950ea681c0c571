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
    # Host names the app answers to (Flask answers others with a 400); None = any.
    "TRUSTED_HOSTS": None,
    # Test-only endpoints under /api/faults/; never enabled in production.
    "FAULT_INJECTION": False,
    # Base URL (http or https) that /api/outbound/<ms> calls; None = no such endpoint.
    "OUTBOUND_URL": None,
    "APP_VERSION": "dev",
}

INT_SETTINGS = {
    "TRUSTED_PROXY_HOPS": "APP_TRUSTED_PROXY_HOPS",
    "MAX_CONTENT_LENGTH": "APP_MAX_BODY_BYTES",
    "SLEEP_MAX_MS": "APP_SLEEP_MAX_MS",
    "COMPUTE_MAX_ROUNDS": "APP_COMPUTE_MAX_ROUNDS",
}
SWITCHES = {"FAULT_INJECTION": "APP_FAULT_INJECTION"}


def _whole_number(name, raw):
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def _switch(name, raw):
    if raw.lower() in ("on", "true", "1"):
        return True
    if raw.lower() in ("off", "false", "0"):
        return False
    raise ValueError(f"{name} must be on or off, got {raw!r}")


def _http_url(name, raw):
    # urllib would also open file:// and ftp:// URLs: only plain web calls are allowed.
    if not raw.lower().startswith(("http://", "https://")):
        raise ValueError(f"{name} must be an http:// or https:// URL, got {raw!r}")
    return raw


def settings_from_env(environ=None):
    """Return the settings, each taken from its environment variable when set."""
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    for key, name in INT_SETTINGS.items():
        if raw := environ.get(name, "").strip():
            settings[key] = _whole_number(name, raw)
    for key, name in SWITCHES.items():
        if raw := environ.get(name, "").strip():
            settings[key] = _switch(name, raw)
    if hosts := [host.strip() for host in environ.get("APP_TRUSTED_HOSTS", "").split(",") if host.strip()]:
        settings["TRUSTED_HOSTS"] = hosts
    if url := environ.get("APP_OUTBOUND_URL", "").strip():
        settings["OUTBOUND_URL"] = _http_url("APP_OUTBOUND_URL", url)
    settings["APP_VERSION"] = environ.get("APP_VERSION", "").strip() or DEFAULTS["APP_VERSION"]
    return settings
