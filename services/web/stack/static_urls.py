"""Fingerprinted static URLs: /static/<name>.<hash>.<ext>, so they can be cached forever.

The app links its files the usual Flask way, `url_for("static", filename="css/site.css")`;
the stack's url_defaults hook (Flask's documented way to change the values url_for builds
with) turns the name into `css/site.<12 hex of sha256>.css`. nginx's image holds a copy of
each file of the app's static folder under that name, marked immutable, and serves it:
gunicorn never sees it. Without nginx in front, Fingerprints maps the name back to the
file for the app's own static route; a hash that is not the file's current one is a 404,
as it is from nginx.
"""

import hashlib
import re
from functools import lru_cache
from pathlib import Path

# 12 hex digits of sha256: the pattern nginx's fingerprinted-static location matches.
FINGERPRINT_LENGTH = 12
FINGERPRINTED = re.compile(
    r"(?P<stem>.+)\.(?P<digest>[0-9a-f]{%d})(?P<suffix>\.[A-Za-z0-9]+)" % FINGERPRINT_LENGTH  # noqa: UP031 keeps the regex braces unescaped
)


@lru_cache(maxsize=1024)
def fingerprint(static_dir, filename):
    """filename with its content hash before its extension, e.g. site.3f2a9c81d0be.css; the
    name as it is when it is not a file of static_dir."""
    root = Path(static_dir).resolve()
    path = (root / filename).resolve()
    if not path.is_relative_to(root) or not path.is_file() or not path.suffix:
        return filename
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:FINGERPRINT_LENGTH]
    return f"{path.with_suffix('').relative_to(root).as_posix()}.{digest}{path.suffix}"


def init_app(app):
    """Make the Flask app's url_for("static", ...) build fingerprinted names."""
    if not app.has_static_folder:
        return

    def fingerprinted(endpoint, values):
        if endpoint == "static" and "filename" in values:
            values["filename"] = fingerprint(app.static_folder, values["filename"])

    app.url_defaults(fingerprinted)


class Fingerprints:
    """WSGI middleware: /static/<name>.<hash>.<ext> reaches the app as /static/<name>.<ext>
    when the hash is the file's; any other path passes unchanged."""

    def __init__(self, app, static_dir, url_path="/static"):
        self.app = app
        self.static_dir = str(static_dir)
        self.prefix = url_path.rstrip("/") + "/"

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(self.prefix):
            filename = path[len(self.prefix) :]
            match = FINGERPRINTED.fullmatch(filename)
            if match and fingerprint(self.static_dir, match["stem"] + match["suffix"]) == filename:
                environ["PATH_INFO"] = self.prefix + match["stem"] + match["suffix"]
        return self.app(environ, start_response)
