"""The database in the production shape (make prod-up: compose.yaml, compose.db.yaml,
compose.prod.yaml): Postgres and PgBouncer unprivileged, read-only, with no capabilities,
limits and a restart policy, serving writes, and stopping cleanly."""

import time
import uuid

import pytest
from database import database_stack

PROD_DB_FILES = ("compose.yaml", "compose.db.yaml", "compose.prod.yaml")


@pytest.fixture(scope="module")
def prod_db_stack():
    # The probes on, to smoke-test the database through them (the overlay turns them off).
    with database_stack(
        "db-prod", compose_files=PROD_DB_FILES, env={"APP_PROBES": "on", "WEB_REPLICAS": "1"}
    ) as composed:
        yield composed


def database_containers(stack):
    return stack.running("db") + stack.running("pgbouncer")


def test_postgres_and_pgbouncer_run_unprivileged_read_only_without_capabilities(prod_db_stack):
    containers = database_containers(prod_db_stack)
    assert len(containers) == 2
    for container in containers:
        host_config = container.attrs["HostConfig"]
        assert host_config["ReadonlyRootfs"] is True, container.name
        assert host_config["CapDrop"] == ["ALL"] and not host_config["CapAdd"], container.name
        assert "no-new-privileges:true" in host_config["SecurityOpt"], container.name
        assert host_config["RestartPolicy"]["Name"] == "unless-stopped", container.name
        assert host_config["NanoCpus"] > 0 and host_config["Memory"] > 0, container.name
        status = container.exec_run(["cat", "/proc/1/status"]).output.decode()
        assert "CapEff:\t0000000000000000" in status and "NoNewPrivs:\t1" in status, container.name
        assert "Uid:\t999\t999\t999\t999" in status, (container.name, status)


def test_the_production_shape_stores_and_reads_writes(prod_db_stack):
    write_id = f"prod-{uuid.uuid4().hex}"
    stored = prod_db_stack.post("/api/db/writes", data=b"prod", headers={"X-Request-ID": write_id})
    assert stored.status_code == 201, stored.text
    assert prod_db_stack.get(f"/api/db/writes/{write_id}").json()["bytes"] == 4


def test_postgres_and_pgbouncer_stop_cleanly_within_their_grace_periods(prod_db_stack):
    containers = database_containers(prod_db_stack)
    started = time.monotonic()
    prod_db_stack.compose("stop", "pgbouncer", "db", timeout=180)
    elapsed = time.monotonic() - started
    for container in containers:
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 0, (container.name, container.attrs["State"])
    assert elapsed < 30, f"stopping took {elapsed:.1f}s"
