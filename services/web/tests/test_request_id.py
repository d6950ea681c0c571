"""Unit tests of X-Request-ID handling (stack/request_id.py), around the probes and the app."""

import re

import pytest


def test_well_formed_request_id_is_kept_and_echoed(client):
    response = client.get("/api/whoami", headers={"X-Request-ID": "abc-123_DEF.456"})
    assert response.headers["X-Request-ID"] == "abc-123_DEF.456"
    assert response.get_json()["request_id"] == "abc-123_DEF.456"


@pytest.mark.parametrize("bad", ["short", "has space in it", "x" * 129, "semi;colon-id", "new\tline-id"])
def test_malformed_request_id_is_replaced(client, bad):
    response = client.get("/healthz", headers={"X-Request-ID": bad})
    assert response.headers["X-Request-ID"] != bad
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_missing_request_id_is_generated_and_unique(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


def test_error_bodies_carry_the_request_id(client):
    response = client.get("/api/nope", headers={"X-Request-ID": "trace-me-please"})
    assert response.get_json()["request_id"] == "trace-me-please"


def test_the_app_sees_the_id_as_its_request_header_and_cannot_send_another(wrapped):
    from flask import Flask, request

    foreign = Flask("foreign")

    @foreign.get("/")
    def index():
        return request.headers["X-Request-ID"], 200, {"X-Request-ID": "the-app-made-this-up"}

    response = wrapped(foreign).get("/", headers={"X-Request-ID": "from-nginx-0001"})
    assert response.text == "from-nginx-0001"
    assert response.headers.getlist("X-Request-ID") == ["from-nginx-0001"]
