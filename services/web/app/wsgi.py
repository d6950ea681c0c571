"""WSGI entry point for gunicorn: `gunicorn app.wsgi:application`."""

from . import create_app

application = create_app()
