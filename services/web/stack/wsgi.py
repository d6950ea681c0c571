"""The WSGI entry point gunicorn serves: `stack.wsgi:application`.

The user's Flask app, built by `create_app()` in services/web/app/__init__.py, inside the
stack (wrapping.py), with the settings the environment gives (settings.py).
"""

import os

from app import create_app

from . import metrics_files
from .drain import DrainFlag, flag_path
from .settings import settings_from_env
from .wrapping import wrap

settings = settings_from_env(os.environ)
if not metrics_files.prepared(os.environ):
    # Counted only where they are exported: gunicorn, from gunicorn.conf.py.
    settings = {**settings, "METRICS": False}
application = wrap(create_app(), settings, DrainFlag(flag_path(os.environ)))
