"""Scaling, rolling deploys, a killed replica and an nginx reload, each under continuous load:
zero failed requests (every scenario prints its '0 failed of N' line)."""

import io
import re
import tarfile
import threading
import time
import uuid

import pytest

from composed import wait_for
from load import LoadLoop, one_request

pytestmark = pytest.mark.worker_count

# A quick request and one that is still in flight when a replica stops.
MIXED_PATHS = ["/api/whoami", "/api/whoami", "/api/whoami", "/api/sleep/800"]


def attempts(field):
    """An nginx log field listing each attempt of a request: ", " between the tries of one
    pass, " : " before the pass that proxies again to the replicas nginx knows now (the
    *_try_the_new_replica_list locations)."""
    return re.split(r", | : ", field)


def assert_no_failures(load, scenario, minimum_requests=200, excused=()):
    """`excused`: request ids of failures the scenario proved to be a documented limit."""
    load.report(scenario)
    assert len(load.outcomes) >= minimum_requests, f"too little load to prove anything: {len(load.outcomes)}"
    unexcused = [o for o in load.failures if o.request_id not in excused]
    assert not unexcused, "\n".join(f"{o.path} -> {o.status} {o.error or o.body}" for o in unexcused[:10])


def test_scaling_down_and_up_under_load_loses_nothing(busy_stack):
    busy_stack.make("scale", "N=3")
    before = busy_stack.replicas_answering(3)
    started = int(time.time())
    with LoadLoop(busy_stack.base_url, MIXED_PATHS, clients=6) as load:
        load.wait_for_requests(50)
        busy_stack.make("scale", "N=1")
        (survivor,) = busy_stack.running("web")
        busy_stack.make("scale", "N=3")
        busy_stack.replicas_answering(3)
        load.wait_for_requests(len(load.outcomes) + 50)
    assert survivor.id[:12] in before
    slept = [o for o in load.outcomes if o.path.startswith("/api/sleep")]
    assert slept and all(o.status == 200 for o in slept)
    # The drain really happened, to this test's own requests: replicas that were stopping
    # answered 503 and nginx passed the request on to a replica that answered it.
    ours = busy_stack.nginx_access_log(since=started, request_id_prefix=load.request_id_prefix)
    assert len(ours) == len(load.outcomes), (len(ours), len(load.outcomes))
    # Two replicas drain at once, so a request may meet both before a serving one.
    drained = [line for line in ours if re.fullmatch(r"(503, )+200", line["upstream_status"]) and line["status"] == 200]
    assert drained, "no request of this test was drained (503) and passed to another replica"
    assert_no_failures(load, "scale 3 -> 1 -> 3 (make scale)")


def test_rolling_deploy_replaces_every_replica_and_loses_nothing(busy_stack):
    busy_stack.make("scale", "N=3")
    old = busy_stack.replicas_answering(3)
    version = f"rollout-{uuid.uuid4().hex[:8]}"
    with LoadLoop(busy_stack.base_url, MIXED_PATHS, clients=6) as load:
        load.wait_for_requests(50)
        output = busy_stack.make("rollout", env={"APP_VERSION": version}).stdout
        load.wait_for_requests(len(load.outcomes) + 50)
    new = busy_stack.replicas_answering(3)
    assert not (new & old), "every replica must have been replaced"
    assert "3 replica(s) replaced" in output
    versions_in_order = [o.body.get("version") for o in load.outcomes if o.path == "/api/whoami"]
    assert versions_in_order[0] != version
    assert set(versions_in_order[-20:]) == {version}, "the last answers must all come from the new image"
    assert_no_failures(load, "rolling deploy of 3 replicas (make rollout)")


def test_a_replica_killed_with_sigkill_fails_no_get_and_runs_no_post_twice(busy_stack):
    busy_stack.make("scale", "N=3")
    busy_stack.replicas_answering(3)
    post_ids = [f"sigkill-post-{uuid.uuid4().hex[:12]}" for _ in range(6)]
    get_ids = [f"sigkill-get-{uuid.uuid4().hex[:12]}" for _ in range(12)]
    posts, gets = {}, []

    def post(request_id):
        posts[request_id] = one_request(
            busy_stack.base_url, "/api/faults/side-effect/3000", method="POST", headers={"X-Request-ID": request_id}
        )

    def slow_get(request_id):
        gets.append(one_request(busy_stack.base_url, "/api/sleep/3000", headers={"X-Request-ID": request_id}))

    with LoadLoop(busy_stack.base_url, ["/api/whoami"], clients=4) as load:
        load.wait_for_requests(50)
        # Sent in one burst, so nginx's round robin puts some of each on every replica.
        in_flight = [threading.Thread(target=post, args=(rid,)) for rid in post_ids]
        in_flight += [threading.Thread(target=slow_get, args=(rid,)) for rid in get_ids]
        for thread in in_flight:
            thread.start()
        wait_for(
            lambda: busy_stack.logs("web").count("side effect executed") >= len(post_ids),
            deadline_s=10,
            interval_s=0.05,
            message="every POST started",
        )
        # The replica running the most POSTs; the slow GETs, sent in the same burst and as
        # long, are spread like them and in flight too.
        victim = max(busy_stack.running("web"), key=lambda replica: replica.logs().count(b"request_id=sigkill-post-"))
        victim_upstream = f"{busy_stack.address_of(victim)}:8000"
        victim.kill(signal="SIGKILL")
        for thread in in_flight:
            thread.join(30)
        load.wait_for_requests(len(load.outcomes) + 50)

    executions = {rid: busy_stack.logs("web").count(f"side effect executed request_id={rid} ") for rid in post_ids}
    victim_log = victim.logs().decode()
    on_victim = [rid for rid in post_ids if rid in victim_log]
    assert on_victim, "no POST was in flight on the killed replica: the scenario proved nothing"
    assert all(count == 1 for count in executions.values()), f"a POST ran more than once: {executions}"
    for rid in post_ids:
        # A POST lost with its replica is reported, never silently resent elsewhere.
        assert posts[rid].status == (502 if rid in on_victim else 200), (rid, posts[rid])

    # nginx's account of each GET: the replicas it tried, in order, and what each answered.
    logged = {line["request_id"]: line for line in busy_stack.nginx_access_log() if line["request_id"] in get_ids}
    assert set(logged) == set(get_ids), f"GETs missing from nginx's log: {set(get_ids) - set(logged)}"
    retried = [line for line in logged.values() if attempts(line["upstream"])[0] == victim_upstream]
    assert retried, f"no GET was in flight on the killed replica {victim_upstream}: the scenario proved nothing"
    for line in retried:
        tried, answers = attempts(line["upstream"]), attempts(line["upstream_status"])
        # The killed replica answered nothing (502), another replica answered the GET.
        assert answers[0] == "502" and answers[-1] == "200" and tried[-1] != victim_upstream, line
    assert all(o.status == 200 for o in gets), [(o.status, o.error) for o in gets]

    # The one loss no proxy can undo (docs/configuration.md, "What the stack does not
    # promise"): a worker killed between its write of a response's head and its write of the
    # body. nginx has passed the head on, so it cannot retry; the client sees the response cut
    # short. Only a failure that nginx's own log shows to be that is excused, and each load
    # client has at most one request in flight, so there can be no more of them than clients.
    by_id = {line["request_id"]: line for line in busy_stack.nginx_access_log(request_id_prefix=load.request_id_prefix)}
    cut_after_head = {
        o.request_id
        for o in load.failures
        if o.error.startswith("IncompleteRead")
        and by_id.get(o.request_id, {}).get("upstream") == victim_upstream
        and by_id[o.request_id]["upstream_status"] == "200"
    }
    assert len(cut_after_head) <= load.clients, cut_after_head
    load.outcomes.extend(gets)
    assert_no_failures(
        load,
        f"SIGKILL of a replica: GETs ({len(retried)} of {len(get_ids)} slow GETs in flight on it "
        f"retried elsewhere; {len(cut_after_head)} quick GETs cut after their head left it; "
        f"{len(on_victim)} of 6 POSTs on it failed, none ran twice)",
        excused=cut_after_head,
    )
    victim.remove(force=True, v=True)


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
            wait_for(
                lambda: busy_stack.get("/api/whoami").headers.get("X-Config-Generation") == generation,
                deadline_s=10,
                message="the reloaded config in effect",
            )
            load.wait_for_requests(len(load.outcomes) + 250)
        assert_no_failures(load, "nginx reload after a config change (make nginx-reload)")
    finally:
        put_file(nginx, snippet, original)
        busy_stack.make("nginx-reload")
