"""The stack on a real multi-node Docker Swarm (tests/swarm_cluster.py: a manager and two
workers, each a Docker engine of its own, pulling from a registry by digest), driven with
the make targets a user runs, under a bounded client loop that reports `F failed of N`.
The scenarios build on each other and run in this file's order, on one swarm."""

import os
import subprocess
import threading
import time

import pytest

from composed import ROOT, wait_for
from load import LoadLoop, one_request, record
from registry import read_env_file
from swarm_cluster import swarm_cluster

pytestmark = pytest.mark.swarm

STACK = "flask-stack"
WEB_SERVICE = f"{STACK}_web"


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
            ["make", "push", f"REGISTRY={cluster.registry}", "ALLOW_DIRTY=1"],
            cwd=ROOT,
            env=deployed.env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        deployed.pushed = read_env_file(deployed.images_file)
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
