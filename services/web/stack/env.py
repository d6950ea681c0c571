"""The one reader of the stack's environment knobs, for gunicorn.conf.py and the WSGI wrapper.

A knob that is unset or empty takes its default; any other value must parse, or the
process stops at start with a message naming the knob (never a silent fallback).
"""

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


def text(environ, name, default):
    """The knob's value with surrounding spaces removed, or `default` when unset or empty."""
    return environ.get(name, "").strip() or default


def whole(environ, name, default, minimum=0):
    """A whole number of at least `minimum`."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def switch(environ, name, default):
    """on/off, true/false, yes/no or 1/0, in any case."""
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise ValueError(f"{name} must be on or off (or true/false, yes/no, 1/0), got {raw!r}")


def names(environ, name):
    """A comma-separated list, blanks dropped; empty when unset."""
    return [item.strip() for item in environ.get(name, "").split(",") if item.strip()]


def http_url(environ, name):
    """An http:// or https:// URL, or None when unset: urllib would also open file:// and ftp://."""
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    if not raw.lower().startswith(("http://", "https://")):
        raise ValueError(f"{name} must be an http:// or https:// URL, got {raw!r}")
    return raw
