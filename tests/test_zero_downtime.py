"""Scaling, rolling deploys, a killed replica and an nginx reload, each under continuous load:
zero failed requests (every scenario prints its '0 failed of N' line)."""

import io
import tarfile
import threading
import uuid

from load import LoadLoop, one_request
from stack import wait_for

# A quick request and one that is still in flight when a replica stops.
MIXED_PATHS = ["/api/whoami", "/api/whoami", "/api/whoami", "/api/sleep/800"]


def replicas_answering(stack, expected, deadline_s=20):
    """Wait until nginx spreads requests over exactly the `expected` running replicas."""
    running = {c.id[:12] for c in stack.running("web")}
    assert len(running) == expected, running
    seen = set()

    def all_seen():
        seen.update(stack.get("/api/whoami").json()["hostname"] for _ in range(3 * expected))
        return seen >= running

    wait_for(all_seen, deadline_s=deadline_s, interval_s=0.1, message=f"{expected} replicas answering")
    return running


def assert_no_failures(load, scenario, minimum_requests=200):
    load.report(scenario)
    assert len(load.outcomes) >= minimum_requests, f"too little load to prove anything: {len(load.outcomes)}"
    assert not load.failures, load.describe_failures()


def test_scaling_down_and_up_under_load_loses_nothing(busy_stack):
    busy_stack.make("scale", "N=3")
    before = replicas_answering(busy_stack, 3)
    with LoadLoop(busy_stack.base_url, MIXED_PATHS, clients=6) as load:
        load.wait_for_requests(50)
        busy_stack.make("scale", "N=1")
        (survivor,) = busy_stack.running("web")
        busy_stack.make("scale", "N=3")
        replicas_answering(busy_stack, 3)
        load.wait_for_requests(len(load.outcomes) + 50)
    assert survivor.id[:12] in before
    slept = [o for o in load.outcomes if o.path.startswith("/api/sleep")]
    assert slept and all(o.status == 200 for o in slept)
    # The drain really happened: stopping replicas answered 503 and nginx retried elsewhere.
    assert '"upstream_status":"503, 200"' in busy_stack.flushed_logs("nginx")
    assert_no_failures(load, "scale 3 -> 1 -> 3 (make scale)")


def test_rolling_deploy_replaces_every_replica_and_loses_nothing(busy_stack):
    busy_stack.make("scale", "N=3")
    old = replicas_answering(busy_stack, 3)
    version = f"rollout-{uuid.uuid4().hex[:8]}"
    with LoadLoop(busy_stack.base_url, MIXED_PATHS, clients=6) as load:
        load.wait_for_requests(50)
        output = busy_stack.make("rollout", env={"APP_VERSION": version}).stdout
        load.wait_for_requests(len(load.outcomes) + 50)
    new = replicas_answering(busy_stack, 3)
    assert not (new & old), "every replica must have been replaced"
    assert "3 replica(s) replaced" in output
    versions_in_order = [o.body.get("version") for o in load.outcomes if o.path == "/api/whoami"]
    assert versions_in_order[0] != version
    assert set(versions_in_order[-20:]) == {version}, "the last answers must all come from the new image"
    assert_no_failures(load, "rolling deploy of 3 replicas (make rollout)")


def test_a_replica_killed_with_sigkill_fails_no_get_and_runs_no_post_twice(busy_stack):
    busy_stack.make("scale", "N=3")
    replicas_answering(busy_stack, 3)
    request_ids = [f"sigkill-{uuid.uuid4().hex[:12]}" for _ in range(6)]
    posts, gets = {}, []

    def post(request_id):
        posts[request_id] = one_request(
            busy_stack.base_url, "/api/faults/side-effect/3000", method="POST",
            headers={"X-Request-ID": request_id})

    def slow_get():
        gets.append(one_request(busy_stack.base_url, "/api/sleep/3000"))

    with LoadLoop(busy_stack.base_url, ["/api/whoami"], clients=4) as load:
        load.wait_for_requests(50)
        in_flight = [threading.Thread(target=post, args=(rid,)) for rid in request_ids]
        in_flight += [threading.Thread(target=slow_get) for _ in range(6)]
        for thread in in_flight:
            thread.start()
        wait_for(lambda: busy_stack.logs("web").count("side effect executed") >= len(request_ids), deadline_s=10,
                 interval_s=0.05, message="every POST started")
        victim = busy_stack.running("web")[0]
        victim.kill(signal="SIGKILL")
        for thread in in_flight:
            thread.join(30)
        load.wait_for_requests(len(load.outcomes) + 50)

    executions = {rid: busy_stack.logs("web").count(f"side effect executed request_id={rid} ") for rid in request_ids}
    victim_log = victim.logs().decode()
    on_victim = [rid for rid in request_ids if rid in victim_log]
    assert on_victim, "no POST was in flight on the killed replica: the scenario proved nothing"
    assert all(count == 1 for count in executions.values()), f"a POST ran more than once: {executions}"
    for rid in request_ids:
        # A POST lost with its replica is reported, never silently resent elsewhere.
        assert posts[rid].status == (502 if rid in on_victim else 200), (rid, posts[rid])
    assert all(o.status == 200 for o in gets), [(o.status, o.error) for o in gets]
    load.outcomes.extend(gets)
    lost = len(on_victim)
    assert_no_failures(load, f"SIGKILL of a replica: GETs ({lost} of 6 POSTs in flight on it failed, none ran twice)")
    victim.remove(force=True)


def put_file(container, path, content):
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        data = content.encode()
        info = tarfile.TarInfo(path.rsplit("/", 1)[1])
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
    assert container.put_archive(path.rsplit("/", 1)[0], archive.getvalue())


def test_nginx_reload_after_a_config_change_loses_nothing(busy_stack):
    (nginx,) = busy_stack.running("nginx")
    snippet = "/etc/nginx/snippets/response-headers.conf"
    original = nginx.exec_run(["cat", snippet]).output.decode()
    generation = uuid.uuid4().hex[:8]
    assert "X-Config-Generation" not in busy_stack.get("/api/whoami").headers
    try:
        with LoadLoop(busy_stack.base_url, MIXED_PATHS, clients=6) as load:
            load.wait_for_requests(50)
            put_file(nginx, snippet, original + f"add_header X-Config-Generation {generation} always;\n")
            busy_stack.make("nginx-reload")
            wait_for(lambda: busy_stack.get("/api/whoami").headers.get("X-Config-Generation") == generation,
                     deadline_s=10, message="the reloaded config in effect")
            load.wait_for_requests(len(load.outcomes) + 250)
        assert_no_failures(load, "nginx reload after a config change (make nginx-reload)")
    finally:
        put_file(nginx, snippet, original)
        busy_stack.make("nginx-reload")
