"""Fingerprinted static URLs: /static/<name>.<hash>.<ext>, so they can be cached forever.

nginx serves /static/ in production (its image holds a copy of each file under its
fingerprinted name, marked immutable); the route here serves the same URLs when the
app runs without nginx.
"""

import hashlib
import re
from functools import lru_cache
from pathlib import Path

from flask import abort, send_from_directory

STATIC_DIR = Path(__file__).parent / "static"
# 12 hex digits of sha256: the pattern nginx's fingerprinted-static location matches.
FINGERPRINT_LENGTH = 12
FINGERPRINTED = re.compile(
    r"(?P<stem>.+)\.(?P<digest>[0-9a-f]{%d})(?P<suffix>\.[A-Za-z0-9]+)" % FINGERPRINT_LENGTH  # noqa: UP031 keeps the regex braces unescaped
)


@lru_cache(maxsize=256)
def fingerprint(filename):
    """Return filename with a content hash before its extension, e.g. site.3f2a9c81d0be.css."""
    path = STATIC_DIR / filename
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:FINGERPRINT_LENGTH]
    return f"{path.with_suffix('').relative_to(STATIC_DIR).as_posix()}.{digest}{path.suffix}"


def static_url(filename):
    return f"/static/{fingerprint(filename)}"


def serve_static(filename):
    match = FINGERPRINTED.fullmatch(filename)
    plain = match["stem"] + match["suffix"] if match else filename
    # Like nginx: a fingerprint that is not the file's current hash is a 404.
    if not _is_file(plain) or (match and fingerprint(plain) != filename):
        abort(404)
    return send_from_directory(STATIC_DIR, plain)


def _is_file(filename):
    path = (STATIC_DIR / filename).resolve()
    return path.is_relative_to(STATIC_DIR.resolve()) and path.is_file()


def init_app(app):
    app.add_url_rule("/static/<path:filename>", "static", serve_static)
    app.jinja_env.globals["static_url"] = static_url
