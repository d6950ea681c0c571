"""The test-only fault endpoints exist only when APP_PROBES and APP_FAULT_INJECTION are on."""

import logging

import pytest

from stack.probes import faults


@pytest.fixture
def faulty_client(wrapped):
    return wrapped(FAULT_INJECTION=True)


def test_fault_endpoints_do_not_exist_by_default(client):
    assert client.get("/api/faults/leak/1").status_code == 404
    assert client.post("/api/faults/side-effect/0").status_code == 404


def test_fault_endpoints_need_the_probes_on_too(wrapped):
    assert wrapped(FAULT_INJECTION=True, PROBES=False).get("/api/faults/leak/1").status_code == 404


def test_the_leak_keeps_what_it_took(faulty_client, monkeypatch):
    monkeypatch.setattr(faults, "_leaked", [])
    assert faulty_client.get("/api/faults/leak/64").json["leaked_kib"] == 64
    assert faulty_client.get("/api/faults/leak/64").json["leaked_kib"] == 128


def test_the_leak_is_bounded_per_request(faulty_client):
    response = faulty_client.get("/api/faults/leak/99999999")
    assert response.status_code == 400
    assert response.json["error"] == "bad_request"


def test_a_side_effect_is_logged_once_with_the_request_id(faulty_client, caplog):
    with caplog.at_level(logging.INFO, logger="gunicorn.error"):
        response = faulty_client.post("/api/faults/side-effect/0", headers={"X-Request-ID": "sidefx-0001"})
    assert response.json == {"executed": True, "request_id": "sidefx-0001"}
    assert caplog.text.count("side effect executed request_id=sidefx-0001") == 1
