"""The folder where prometheus_client's multiprocess mode keeps each process's values
(PROMETHEUS_MULTIPROC_DIR, set by the image). prometheus_client's documentation asks for it
to be emptied before gunicorn starts, or a restarted container would add its previous
run's counts to this one's; it must exist before prometheus_client is imported, which opens
files in it as metrics are declared."""

import os
import shutil


def folder(environ):
    """The folder's path, or "" when multiprocess mode is off."""
    return environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()


def fresh_directory(environ):
    """Empty (or make) the folder; returns its path, or None when multiprocess mode is off."""
    path = folder(environ)
    if not path:
        return None
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    return path


def prepared(environ):
    """Whether the folder is there: gunicorn.conf.py makes it before the workers start. Under
    another server (flask run, waitress) it is not, and nothing would export the counts."""
    path = folder(environ)
    return bool(path) and os.path.isdir(path)
