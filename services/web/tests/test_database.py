"""The database probes' plumbing without a database (stack/database.py): psycopg imported
only once a pool opens, the password read from its file, the probes mounted only with a
database, and a database that cannot be reached answered as a JSON 503 within the wait.
tests/test_database*.py prove the rest against Postgres and PgBouncer."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stack import database
from stack.settings import settings_from_env

WEB = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_pool_left_open():
    yield
    database.close_pool()


def closed_port():
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("module", ["stack.wsgi", "gunicorn.conf"])
def test_nothing_the_master_imports_imports_psycopg(module, marked_environ):
    """psycopg picks how it waits when first imported; under gunicorn's gevent worker that must
    happen after the worker patched the standard library, never in the master."""
    if module == "gunicorn.conf":
        code = "import runpy, sys; runpy.run_path('gunicorn.conf.py'); print('psycopg' in sys.modules)"
    else:
        code = f"import sys, {module}; print('psycopg' in sys.modules)"
    environ = {**marked_environ, "APP_DB_HOST": "db.invalid", "APP_PROBES": "on", "APP_METRICS": "off"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=WEB, env=environ, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "False", result.stdout + result.stderr


def test_the_password_comes_from_its_file_without_the_newline(tmp_path):
    secret = tmp_path / "db_password"
    secret.write_text("s3cret value\n")
    settings = {**settings_from_env({"APP_DB_HOST": "pgbouncer"}), "DB_PASSWORD_FILE": str(secret)}
    arguments = database.connection_arguments(settings)
    assert arguments["password"] == secret.read_text().removesuffix("\n")
    assert arguments["host"] == "pgbouncer" and arguments["port"] == 5432
    # Transaction pooling hands each transaction any server connection: nothing is prepared.
    assert arguments["prepare_threshold"] is None


def test_the_database_settings_parse_and_refuse_what_does_not(tmp_path):
    assert settings_from_env({})["DB_HOST"] is None
    assert not database.configured(settings_from_env({}))
    settings = settings_from_env({"APP_DB_HOST": "pgbouncer", "APP_DB_PORT": "6432", "APP_DB_POOL_SIZE": "4"})
    assert database.configured(settings) and settings["DB_PORT"] == 6432 and settings["DB_POOL_SIZE"] == 4
    for name, value in (("APP_DB_PORT", "0"), ("APP_DB_POOL_SIZE", "0"), ("APP_DB_POOL_TIMEOUT", "soon")):
        with pytest.raises(ValueError, match=name):
            settings_from_env({name: value})


def test_without_a_database_the_database_probes_are_not_mounted(wrapped):
    answer = wrapped(DB_HOST=None).get("/api/db/sleep/10")
    assert answer.status_code == 404


def test_an_unreachable_database_is_a_json_503_within_the_pools_wait(wrapped, tmp_path):
    secret = tmp_path / "db_password"
    secret.write_text("unused")
    client = wrapped(DB_HOST="127.0.0.1", DB_PORT=closed_port(), DB_PASSWORD_FILE=str(secret), DB_POOL_TIMEOUT=1)
    for path, send in (("/api/db/sleep/10", client.get), ("/api/db/writes", client.post)):
        started = time.monotonic()
        answer = send(path, headers={"X-Request-ID": "unit-db-down-0001"})
        waited = time.monotonic() - started
        assert answer.status_code == 503, answer.text
        assert answer.json["error"] == "database_unavailable" and answer.headers["Retry-After"] == "1"
        assert answer.json["request_id"] == "unit-db-down-0001"
        assert waited < 3, waited
    # The other probes and /healthz do not wait for it.
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/whoami").status_code == 200


def test_bad_input_to_the_database_probes_is_a_400_before_any_connection(wrapped):
    client = wrapped(DB_HOST="127.0.0.1", DB_PORT=closed_port(), DB_PASSWORD_FILE=os.devnull)
    for path in ("/api/db/sleep/x", "/api/db/sleep/-5", "/api/db/sleep/10000000000"):
        answer = client.get(path)
        assert answer.status_code == 400 and answer.json["error"] == "bad_request", path
