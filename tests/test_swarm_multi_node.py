"""The stack on a real multi-node Docker Swarm (tests/swarm_cluster.py: a manager and two
workers, each a Docker engine of its own, pulling from a registry by digest), driven with
the make targets a user runs, under a bounded client loop that reports `F failed of N`.
The scenarios build on each other and run in this file's order, on one swarm."""

import os
import secrets
import subprocess
import threading
import time
from pathlib import Path

import pytest
from database import WriteLoop

from composed import ROOT, wait_for
from load import LoadLoop, one_request, record
from registry import read_env_file
from swarm_cluster import swarm_cluster

pytestmark = pytest.mark.swarm

STACK = "flask-stack"
WEB_SERVICE = f"{STACK}_web"
# The node the database is pinned to (by its label): a worker, and not the one a later
# scenario stops.
DB_NODE = 1


class Deployment:
    """The swarm, the images pushed to its registry, and the make targets pointed at it."""

    def __init__(self, cluster, folder):
        self.cluster = cluster
        self.images_file = folder / "pushed-images.env"
        docker_config = folder / "docker-config"
        docker_config.mkdir()
        self.env = {
            **os.environ,
            "DOCKER_CONFIG": str(docker_config),
            "PUSHED_IMAGES_FILE": str(self.images_file),
            # Every request comes from this one machine, like a benchmark's: no per-client limits.
            "NGINX_LIMITS": "off",
            # The load and the checks use /api/whoami, a probe (off by default on a swarm).
            "APP_PROBES": "on",
            # make swarm-deploy's password (make db-password writes it) and the database's
            # digests (make swarm-push-db), the test's own.
            "DB_PASSWORD_FILE": str(folder / "secrets" / "db_password"),
            "SWARM_DB_IMAGES_FILE": str(folder / "db-images.env"),
        }
        self.base_url = f"http://{cluster.node_ips[0]}:8080"

    def host_docker(self, *args, manager=False, check=True, timeout=300, stdin=None):
        env = {**self.env, **({"DOCKER_HOST": self.cluster.manager_host} if manager else {})}
        result = subprocess.run(
            ["docker", *args], env=env, capture_output=True, text=True, timeout=timeout, input=stdin
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)}: {result.stdout}{result.stderr}")
        return result

    def make(self, *args, check=True, timeout=600, **overrides):
        env = {**self.env, "DOCKER_HOST": self.cluster.manager_host, **overrides}
        result = subprocess.run(
            ["make", "--no-print-directory", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"make {' '.join(args)} ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def push_variant(self, tag, dockerfile_text):
        """Build a web image from Dockerfile text (no context), push it, return its digest reference."""
        repository = f"{self.cluster.registry}/flask-stack/web"
        self.host_docker("build", "--quiet", "--tag", f"{repository}:{tag}", "-", stdin=dockerfile_text, timeout=600)
        self.host_docker("push", "--quiet", f"{repository}:{tag}")
        digests = self.host_docker(
            "image", "inspect", "--format", "{{range .RepoDigests}}{{println .}}{{end}}", f"{repository}:{tag}"
        ).stdout.split()
        return next(reference for reference in digests if reference.startswith(f"{repository}@sha256:"))

    def web_tasks(self, desired="running"):
        """(task name, node, image) of web's tasks in that desired state."""
        lines = self.host_docker(
            "service",
            "ps",
            WEB_SERVICE,
            "--filter",
            f"desired-state={desired}",
            "--format",
            "{{.Name}} {{.Node}} {{.Image}} {{.CurrentState}}",
            manager=True,
        ).stdout
        return [line.split()[:4] for line in lines.splitlines()]

    def running_web_nodes(self):
        return sorted(task[1] for task in self.web_tasks() if task[3] == "Running")

    def web_image(self):
        return self.host_docker(
            "service", "inspect", WEB_SERVICE, "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", manager=True
        ).stdout.strip()

    def update_state(self):
        return self.host_docker(
            "service",
            "inspect",
            WEB_SERVICE,
            "--format",
            "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
            manager=True,
        ).stdout.strip()

    def versions_answering(self, count=30):
        return {one_request(self.base_url, "/api/whoami", timeout_s=10).body.get("version") for _ in range(count)}

    def sql(self, statement, **values):
        """Rows of `statement`, run with psql in the db task's container on its node, over its
        socket as the database's owner. Each of `values` is a psql variable (:'name')."""
        containers = self.cluster.node_docker(
            DB_NODE, "ps", "--quiet", "--filter", f"label=com.docker.swarm.service.name={STACK}_db"
        ).stdout.split()
        assert len(containers) == 1, f"db containers running on node{DB_NODE + 1}: {containers}"
        variables = [f"--set={name}={value}" for name, value in values.items()]
        result = subprocess.run(
            ["docker", "exec", "-i", self.cluster.node_name(DB_NODE), "docker", "exec", "-i", containers[0],
             "psql", "--username=app", "--dbname=app", "--no-align", "--tuples-only", "--field-separator=|",
             "--set=ON_ERROR_STOP=1", *variables, "--file=-"],
            input=statement, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql: {result.stdout}{result.stderr}")
        return [line.split("|") for line in result.stdout.splitlines() if line]

    def stored(self, prefix):
        """{id: rows} of the writes whose ids start with `prefix`."""
        rows = self.sql(
            "SELECT id, count(*) FROM stack_probe_writes WHERE starts_with(id, :'prefix') GROUP BY id", prefix=prefix
        )
        return {write_id: int(count) for write_id, count in rows}

    def has_column(self, column):
        return self.sql(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'stack_probe_writes' AND column_name = :'column'",
            column=column,
        ) == [["1"]]

    def db_task(self):
        return self.host_docker(
            "service", "ps", f"{STACK}_db", "--filter", "desired-state=running", "--format", "{{.ID}}", manager=True
        ).stdout.split()

    def migration_job_left(self):
        return self.host_docker(
            "service", "ls", "--quiet", "--filter", f"name={STACK}_migrate", manager=True
        ).stdout.strip()


def with_migration(base, version, revision, down_revision, statements):
    """A web image's Dockerfile: `base` plus one Alembic revision whose upgrade runs
    `statements` (Python, with `op` and `sa`), answering as `version`."""
    body = "\n    ".join(statements)
    migration = f'''"""The swarm test's migration {revision}."""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade():
    {body}


def downgrade():
    pass
'''
    return (
        f"FROM {base}\n"
        f"COPY <<'MIGRATION' /srv/web/migrations/versions/{revision}_swarm_test.py\n{migration}MIGRATION\n"
        f"ENV APP_VERSION={version}\n"
    )


def add_column(name):
    return f'op.add_column("stack_probe_writes", sa.Column("{name}", sa.Text(), nullable=True))'


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("swarm")
    started = time.monotonic()
    with swarm_cluster(folder) as cluster:
        deployed = Deployment(cluster, folder)
        deployed.host_docker(
            "login", cluster.registry, "--username", cluster.user, "--password-stdin", stdin=cluster.password
        )
        pushed = subprocess.run(
            # SBOM=off: the SBOMs are test_registry_push.py's; here the swarm's registry, whose
            # TLS root only the nodes' engines trust, would need it handed to oras as well.
            ["make", "push", f"REGISTRY={cluster.registry}", "ALLOW_DIRTY=1", "SBOM=off"],
            cwd=ROOT,
            env=deployed.env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        deployed.pushed = read_env_file(deployed.images_file)
        # Built by this machine's engine, as make push builds.
        pushed_db = subprocess.run(
            ["make", "swarm-push-db", f"REGISTRY={cluster.registry}"],
            cwd=ROOT,
            env=deployed.env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert pushed_db.returncode == 0, pushed_db.stdout + pushed_db.stderr
        deployed.host_docker("node", "update", "--label-add", "flask-stack.db=true", f"node{DB_NODE + 1}", manager=True)
        yield deployed
        record(f"swarm: the multi-node test took {time.monotonic() - started:.0f}s, swarm and images included")


def run_under_load(deployment, scenario, action, paths=("/api/whoami",), minimum_requests=50):
    with LoadLoop(deployment.base_url, paths, clients=4, max_seconds=420) as load:
        load.wait_for_requests(20)
        result = action()
        load.wait_for_requests(len(load.outcomes) + 20)
    load.report(f"swarm: {scenario}")
    assert len(load.outcomes) >= minimum_requests, f"too little load to prove anything: {len(load.outcomes)}"
    assert not load.failures, load.describe_failures()
    return result


def test_deploy_spreads_web_over_the_three_nodes_and_every_replica_answers(deployment):
    deployment.make("swarm-deploy")
    assert deployment.running_web_nodes() == ["node1", "node2", "node3"]
    assert deployment.web_image() == deployment.pushed["PUSHED_WEB_IMAGE"]
    # Across nodes, over the overlay: nginx on the manager reaches every task.
    hostnames = {one_request(deployment.base_url, "/api/whoami").body.get("hostname") for _ in range(30)}
    assert len(hostnames) == 3, hostnames
    # A deploy of what already runs changes nothing and loses nothing.
    run_under_load(deployment, "deploy again (3 replicas on 3 nodes)", lambda: deployment.make("swarm-deploy"))


def test_the_password_is_a_swarm_secret_file_in_no_environment(deployment):
    password = Path(deployment.env["DB_PASSWORD_FILE"]).read_text().strip()
    services = deployment.host_docker(
        "service", "ls", "--quiet", "--filter", f"label=com.docker.stack.namespace={STACK}", manager=True
    ).stdout.split()
    specs = deployment.host_docker("service", "inspect", *services, manager=True).stdout
    assert len(services) == 4 and password not in specs
    assert (
        f"{STACK}_db_password" in deployment.host_docker("secret", "ls", "--format", "{{.Name}}", manager=True).stdout
    )
    # In a web task: a file of web's user alone, holding the password.
    web = deployment.cluster.node_docker(
        0, "ps", "--quiet", "--filter", f"label=com.docker.swarm.service.name={WEB_SERVICE}"
    ).stdout.split()[0]
    assert password not in deployment.cluster.node_docker(0, "inspect", web).stdout
    found = deployment.cluster.node_docker(0, "exec", web, "stat", "-c", "%a %u", "/run/secrets/db_password").stdout
    assert found.split() == ["400", "10001"], found
    assert deployment.cluster.node_docker(0, "exec", web, "cat", "/run/secrets/db_password").stdout.strip() == password


def test_scaling_3_to_6_to_2_loses_nothing(deployment):
    def scale():
        deployment.make("swarm-deploy", WEB_REPLICAS="6")
        assert len(deployment.running_web_nodes()) == 6
        deployment.make("swarm-deploy", WEB_REPLICAS="2")
        assert len(deployment.running_web_nodes()) == 2

    run_under_load(deployment, "scale 3 -> 6 -> 2", scale)


def test_a_rolling_update_to_a_new_image_loses_nothing(deployment):
    base = deployment.pushed["PUSHED_WEB_IMAGE"]
    new_image = deployment.push_variant("swarm-v2", f"FROM {base}\nENV APP_VERSION=swarm-v2\n")
    deployment.new_image = new_image
    run_under_load(
        deployment,
        "rolling update to a new image (3 replicas)",
        lambda: deployment.make("swarm-update", PUSHED_WEB_IMAGE=new_image),
    )
    assert deployment.web_image() == new_image
    assert deployment.versions_answering() == {"swarm-v2"}


def test_make_swarm_rollback_puts_the_previous_image_back_losing_nothing(deployment):
    run_under_load(deployment, "make swarm-rollback to the previous image", lambda: deployment.make("swarm-rollback"))
    assert deployment.web_image() == deployment.pushed["PUSHED_WEB_IMAGE"]
    assert deployment.versions_answering() == {deployment.pushed["PUSHED_TAGS"].split(",")[0]}


def test_an_update_whose_health_check_fails_rolls_itself_back(deployment):
    before = deployment.web_image()
    versions_before = deployment.versions_answering()
    # A release that listens on the wrong port: its health check never passes.
    broken = deployment.push_variant("swarm-broken", f"FROM {deployment.new_image}\nENV GUNICORN_PORT=8001\n")

    def update():
        return deployment.make("swarm-update", check=False, PUSHED_WEB_IMAGE=broken)

    result = run_under_load(deployment, "update to an image failing its health check, rolled back", update)
    # The release did not go out: a script or CI job running make swarm-update must see so.
    assert result.returncode != 0, (
        f"make swarm-update exited {result.returncode} after Swarm rolled the update back:\n"
        f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    )
    # Saying so, and which tasks of which image failed, once the rollback has ended (docker
    # stack deploy can return while Swarm is still rolling back).
    assert f"Swarm rolled {WEB_SERVICE} back" in result.stderr, result.stderr[-2000:]
    assert broken in result.stderr, result.stderr[-2000:]
    assert deployment.update_state() == "rollback_completed"
    assert deployment.web_image() == before
    assert deployment.versions_answering() == versions_before


def test_an_update_whose_migration_adds_a_column_loses_no_request_and_no_row(deployment):
    # Rows written before the release: every one must be there after it.
    before = f"swarm-before-{secrets.token_hex(4)}-"
    for index in range(20):
        outcome = one_request(
            deployment.base_url,
            "/api/db/writes",
            method="POST",
            headers={"X-Request-ID": f"{before}{index}", "Content-Type": "application/octet-stream"},
            body=b"before the release",
        )
        assert outcome.status == 201, (outcome.status, outcome.body or outcome.error)
    image = deployment.push_variant(
        "swarm-v3", with_migration(deployment.new_image, "swarm-v3", "0002", "0001", [add_column("note")])
    )
    db_task = deployment.db_task()
    paths = ("/api/whoami", "/api/db/sleep/20")
    with (
        LoadLoop(deployment.base_url, paths, clients=4, max_seconds=420) as load,
        WriteLoop(deployment.base_url, clients=2, max_seconds=420, retries=3) as writes,
    ):
        load.wait_for_requests(20)
        result = deployment.make("swarm-update", PUSHED_WEB_IMAGE=image)
        load.wait_for_requests(len(load.outcomes) + 20)
    load.report("swarm: update whose migration adds a column (reads, database reads)")
    first_tries = writes.failures
    record(
        f"swarm: update whose migration adds a column (writes): {len(first_tries)} first tries failed "
        f"{[o.status for o in first_tries]} of {len(writes.outcomes)}, {len(writes.unacknowledged())} after retries"
    )
    assert "Running upgrade 0001 -> 0002" in result.stdout + result.stderr, result.stdout[-2000:]
    assert not load.failures, load.describe_failures()
    assert not first_tries, [(o.status, o.body or o.error) for o in first_tries][:10]
    assert not writes.unacknowledged(), [(o.status, o.body) for o in writes.unacknowledged()][:10]
    stored = deployment.stored(writes.request_id_prefix)
    assert writes.acknowledged() <= set(stored), sorted(writes.acknowledged() - set(stored))[:10]
    assert set(stored.values()) <= {1}, stored
    # State is sacred: the rows from before the release, all of them, once each.
    assert deployment.stored(before) == {f"{before}{index}": 1 for index in range(20)}
    assert deployment.sql("SELECT version_num FROM alembic_version") == [["0002"]]
    assert deployment.has_column("note")
    assert deployment.web_image() == image
    assert deployment.versions_answering() == {"swarm-v3"}
    assert not deployment.migration_job_left()
    # A release of the app leaves the database's task alone.
    assert deployment.db_task() == db_task
    # The later scenarios roll out this release: its migrations are the database's.
    deployment.new_image = image


def test_an_update_whose_migration_fails_stops_with_the_old_release_serving(deployment):
    serving = deployment.web_image()
    versions = deployment.versions_answering()
    rows = deployment.sql("SELECT count(*) FROM stack_probe_writes")
    # Its first step would add a column; its second fails, so neither is applied.
    broken = deployment.push_variant(
        "swarm-bad-migration",
        with_migration(
            serving,
            "swarm-bad-migration",
            "0003",
            "0002",
            [add_column("never"), 'op.execute("SELECT no_such_column FROM stack_probe_writes")'],
        ),
    )

    def update():
        return deployment.make("swarm-update", check=False, PUSHED_WEB_IMAGE=broken)

    result = run_under_load(
        deployment, "update whose migration fails", update, paths=("/api/whoami", "/api/db/sleep/20")
    )
    assert result.returncode != 0, result.stdout[-2000:]
    assert "the migration failed: nothing of the new release was deployed" in result.stderr, result.stderr[-2000:]
    assert "no_such_column" in result.stdout + result.stderr, result.stderr[-2000:]
    assert deployment.web_image() == serving
    assert deployment.versions_answering() == versions
    assert deployment.sql("SELECT version_num FROM alembic_version") == [["0002"]]
    assert not deployment.has_column("never")
    assert deployment.sql("SELECT count(*) FROM stack_probe_writes") == rows
    assert not deployment.migration_job_left()


def test_a_worker_node_stopped_under_load_fails_no_get_and_its_replicas_move(deployment):
    deployment.make("swarm-update", PUSHED_WEB_IMAGE=deployment.new_image, WEB_REPLICAS="6")
    assert deployment.running_web_nodes().count("node3") >= 1

    def stop_node3():
        # The node's engine gets SIGTERM and stops its containers (each drains) before exiting.
        deployment.cluster.node(2).stop(timeout=60)
        wait_for(
            lambda: len(deployment.running_web_nodes()) == 6 and "node3" not in deployment.running_web_nodes(),
            180,
            interval_s=2,
            message="six web replicas running on the two nodes left",
        )

    run_under_load(
        deployment, "worker node stopped, its replicas rescheduled", stop_node3, paths=("/api/whoami", "/healthz")
    )
    assert set(deployment.running_web_nodes()) == {"node1", "node2"}


def test_removing_the_stack_lets_requests_in_flight_finish_and_leaves_nothing(deployment):
    in_flight = []

    def slow_request():
        in_flight.append(one_request(deployment.base_url, "/api/sleep/2000", timeout_s=30))

    threads = [threading.Thread(target=slow_request) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    deployment.make("swarm-remove")
    for thread in threads:
        thread.join(timeout=60)
    failed = [outcome for outcome in in_flight if outcome.status != 200]
    record(f"swarm: stack removed with requests in flight: {len(failed)} failed of {len(in_flight)} requests")
    assert len(in_flight) == 4 and not failed, [(o.status, o.error) for o in in_flight]
    assert deployment.host_docker("stack", "ls", "--format", "{{.Name}}", manager=True).stdout.strip() == ""
    # The services are gone at once; their containers, each stopping gracefully, soon after.
    for index in (0, 1):
        wait_for(
            lambda index=index: (
                not deployment.cluster.node_docker(
                    index, "ps", "--all", "--quiet", "--filter", f"label=com.docker.stack.namespace={STACK}"
                ).stdout.strip()
            ),
            60,
            interval_s=1,
            message=f"node{index + 1} without the stack's containers",
        )
