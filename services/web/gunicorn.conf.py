"""gunicorn configuration: every value comes from an environment variable with a
production default (see gunicorn_settings.py and .env.example)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gunicorn_settings import describe, settings_from_env

globals().update(settings_from_env(os.environ))


def on_starting(server):
    # Workers inherit the environment: /api/whoami reports the class actually running.
    os.environ["SERVER_WORKER_CLASS"] = server.cfg.worker_class_str
    server.log.info(describe(server.cfg))
