"""The stack with its database (compose.db.yaml): psycopg's pool cooperating with gevent,
writes acknowledged only once committed, the password a secret file, migrations run once
under a lock, backups that restore, and a database outage that costs only the routes that
need it."""

import json
import os
import shutil
import subprocess
import threading
import time
import uuid

import pytest
from database import database_stack, sql

from composed import ROOT, compose_config, wait_for

# Seconds a request may wait for the database (APP_DB_POOL_TIMEOUT's and PgBouncer's
# query_wait_timeout's defaults are 5), with room for a busy machine.
DATABASE_WAIT_S = 5


@pytest.fixture(scope="module")
def db_stack():
    """One replica with one gevent worker, so every request below shares a worker."""
    with database_stack("db", env={"GUNICORN_WORKERS": "1"}) as composed:
        yield composed


def write(stack, write_id, body, **kwargs):
    return stack.post("/api/db/writes", data=body, headers={"X-Request-ID": write_id}, **kwargs)


def test_a_write_is_answered_201_once_committed_and_reads_back(db_stack):
    write_id = f"first-{uuid.uuid4().hex}"
    body = b"a body with \x00 a NUL byte and \xff not UTF-8"
    stored = write(db_stack, write_id, body)
    assert stored.status_code == 201, stored.text + db_stack.logs("web")[-4000:]
    assert stored.json()["id"] == write_id and stored.json()["bytes"] == len(body)
    # In the table as sent, seen from another session than the one that wrote it.
    ((hex_body,),) = sql(db_stack, "SELECT encode(body, 'hex') FROM stack_probe_writes WHERE id = :'id'", id=write_id)
    assert bytes.fromhex(hex_body) == body
    read = db_stack.get(f"/api/db/writes/{write_id}")
    assert read.status_code == 200 and read.json()["sha256"] == stored.json()["sha256"]


def test_a_retried_write_is_stored_once_and_a_different_body_under_its_id_is_refused(db_stack):
    write_id = f"retried-{uuid.uuid4().hex}"
    assert write(db_stack, write_id, b"same").status_code == 201
    assert write(db_stack, write_id, b"same").status_code == 201
    conflict = write(db_stack, write_id, b"other")
    assert conflict.status_code == 409 and conflict.json()["error"] == "conflict", conflict.text
    stored = sql(
        db_stack,
        "SELECT count(*), encode(body, 'escape') FROM stack_probe_writes WHERE id = :'id' GROUP BY body",
        id=write_id,
    )
    assert stored == [["1", "same"]]


def test_bad_database_requests_get_a_clear_json_4xx(db_stack):
    missing = db_stack.get(f"/api/db/writes/never-{uuid.uuid4().hex}")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    for path in ("/api/db/sleep/-1", "/api/db/sleep/abc", "/api/db/sleep/99999999"):
        answer = db_stack.get(path)
        assert answer.status_code == 400 and answer.headers["Content-Type"] == "application/json", (path, answer.text)
    too_large = write(db_stack, f"large-{uuid.uuid4().hex}", b"x" * (1024 * 1024 + 1))
    assert too_large.status_code == 413


def test_a_slow_query_does_not_stall_other_requests_on_the_same_worker(db_stack):
    """One worker (GUNICORN_WORKERS=1): while one request holds a connection 3 s in
    pg_sleep, others on the same worker, database-bound or not, are answered at once."""
    slow = {}
    holder = threading.Thread(target=lambda: slow.update(answer=db_stack.get("/api/db/sleep/3000", timeout=30)))
    holder.start()
    time.sleep(0.5)
    answers, timings = [], []

    def quick(path):
        started = time.monotonic()
        answers.append(db_stack.get(path, timeout=30))
        timings.append(time.monotonic() - started)

    others = [threading.Thread(target=quick, args=(path,)) for path in ["/api/db/sleep/100"] * 5 + ["/api/whoami"] * 5]
    for thread in others:
        thread.start()
    for thread in others:
        thread.join()
    holder.join()
    assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
    assert slow["answer"].status_code == 200
    assert len({answer.json()["pid"] for answer in answers} | {slow["answer"].json()["pid"]}) == 1
    # Each would wait for the 3 s query if the driver blocked the worker.
    assert max(timings) < 1.5, timings


def test_the_password_is_a_secret_file_never_in_an_environment_or_an_image(db_stack):
    for service in ("web", "db", "pgbouncer"):
        (container,) = db_stack.running(service)
        assert db_stack.password not in json.dumps(container.attrs), f"{service}'s inspect shows the password"
        assert db_stack.password not in json.dumps(container.image.attrs), f"{service}'s image holds the password"
        mounted = container.exec_run(["cat", "/run/secrets/db_password"])
        assert mounted.exit_code == 0 and mounted.output.decode().strip() == db_stack.password, service
        environment = container.exec_run(["env"]).output.decode()
        assert db_stack.password not in environment, f"{service}'s processes have the password in their environment"


def test_make_migrate_run_twice_at_once_applies_each_migration_once(db_stack):
    db_stack.compose(
        "run", "--rm", "--no-deps", "--env", "APP_DB_HOST=db", "--env", "APP_DB_PORT=5432",
        "web", "alembic", "downgrade", "base", timeout=300,
    )  # fmt: skip
    assert sql(db_stack, "SELECT to_regclass('stack_probe_writes') IS NULL") == [["t"]]
    results = []
    runs = [threading.Thread(target=lambda: results.append(db_stack.make("migrate", timeout=600))) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert len(results) == 2, "a make migrate failed (see the test's output)"
    output = "".join(result.stdout + result.stderr for result in results)
    applied = [line for line in output.splitlines() if "Running upgrade  -> 0001" in line]
    assert len(applied) == 1, applied
    assert sql(db_stack, "SELECT version_num FROM alembic_version") == [["0001"]]
    assert write(db_stack, f"after-{uuid.uuid4().hex}", b"x").status_code == 201


def test_a_backup_restores_the_rows_it_was_taken_with(db_stack, tmp_path):
    before = [f"kept-{uuid.uuid4().hex}" for _ in range(20)]
    for write_id in before:
        assert write(db_stack, write_id, write_id.encode()).status_code == 201
    dump = tmp_path / "db.dump"
    db_stack.make("db-backup", f"FILE={dump}")
    assert dump.stat().st_size > 0
    after = f"later-{uuid.uuid4().hex}"
    assert write(db_stack, after, b"later").status_code == 201
    sql(
        db_stack,
        "DELETE FROM stack_probe_writes WHERE id = ANY(string_to_array(:'ids', ','))",
        ids=",".join(before[:10]),
    )
    db_stack.make("db-restore", f"FILE={dump}")
    stored = {row[0] for row in sql(db_stack, "SELECT id FROM stack_probe_writes")}
    assert set(before) <= stored and after not in stored
    assert db_stack.get(f"/api/db/writes/{before[0]}").status_code == 200


def test_with_the_database_stopped_only_its_routes_fail_fast_healthz_stays_up_and_it_recovers(db_stack):
    (replica,) = db_stack.running("web")
    started_at = replica.attrs["State"]["StartedAt"]
    db_stack.compose("stop", "db", timeout=120)
    try:
        began = time.monotonic()
        down = db_stack.get("/api/db/sleep/10", timeout=30)
        waited = time.monotonic() - began
        assert down.status_code == 503, down.text
        assert down.json()["error"] == "database_unavailable" and down.headers["Retry-After"] == "1"
        assert waited < 2 * DATABASE_WAIT_S + 2, waited
        assert write(db_stack, f"down-{uuid.uuid4().hex}", b"x", timeout=30).status_code == 503
        # The rest of the stack is untouched, and so is its liveness: no replica restarts.
        for path in ("/healthz", "/api/whoami", "/"):
            assert db_stack.get(path).status_code == 200, path
    finally:
        db_stack.compose("start", "db", timeout=120)
    began = time.monotonic()
    wait_for(lambda: db_stack.get("/api/db/sleep/10", timeout=30).status_code == 200, 30, 0.5, "database routes back")
    recovered = time.monotonic() - began
    replica.reload()
    assert replica.attrs["State"]["StartedAt"] == started_at and replica.attrs["RestartCount"] == 0
    print(f"database stopped: 503 in {waited:.2f}s; back {recovered:.1f}s after db started")


def test_deleting_compose_db_yaml_is_the_one_step_to_a_stack_without_a_database(tmp_path):
    """What an app without a database does: delete compose.db.yaml. The Makefile then names
    no database file and writes no password, and make migrate has nothing to do."""
    for name in ("Makefile", "compose.yaml", "compose.override.yaml", "compose.prod.yaml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    planned = subprocess.run(
        ["make", "-n", "up", "prod-up", "migrate", "COMPOSE=docker compose"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "compose.yaml" in planned and "compose.db.yaml" not in planned and "db-password.sh" not in planned
    project = f"no-db-{uuid.uuid4().hex[:8]}"
    files = f"docker compose -p {project} -f {tmp_path / 'compose.yaml'} -f {tmp_path / 'compose.override.yaml'}"
    migrated = subprocess.run(
        [str(ROOT / "scripts/migrate.sh")], env={**os.environ, "COMPOSE": files},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert migrated.returncode == 0 and "nothing to migrate" in migrated.stdout, migrated.stdout + migrated.stderr
    web = compose_config(str(tmp_path / "compose.yaml"))["services"]["web"]
    assert "APP_DB_HOST" not in web.get("environment", {}) and not web.get("secrets")
