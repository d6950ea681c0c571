"""Shared fixtures of the web app's unit tests."""

import pytest

from app import create_app


@pytest.fixture
def client():
    """Flask's test client for an app built from the default settings."""
    return create_app({"TESTING": True}).test_client()
