"""Shared fixtures of the web service's unit tests: the demo app inside the stack."""

import pytest
from werkzeug.test import Client

from app import create_app
from stack.drain import DrainFlag
from stack.settings import settings_from_env
from stack.wrapping import wrap


@pytest.fixture
def wrapped(tmp_path):
    """wrapped(app=None, **settings): a test client of `app` (the demo app by default) inside
    the stack, with the probes on and the given settings over the defaults."""

    def build(app=None, **settings):
        app = app or create_app({"TESTING": True})
        merged = {**settings_from_env({}), "PROBES": True, **settings}
        return Client(wrap(app, merged, DrainFlag(tmp_path / "draining")))

    return build


@pytest.fixture
def client(wrapped):
    """The demo app inside the stack with the default settings and the probes on."""
    return wrapped()
