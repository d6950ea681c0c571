"""`make scale N=3` spreads requests over every replica; nginx follows live, never restarted;
`make scale N=1` lets the requests in flight on the replicas it stops finish."""

import threading
import time
import uuid
from collections import Counter

import pytest

from composed import log_entries, wait_for
from hostile import assert_json_error, assert_security_headers
from load import one_request, record

pytestmark = pytest.mark.worker_count


def make_scale(stack, replicas):
    stack.make("scale", f"N={replicas}", timeout=300)


def hostnames_answering(stack, requests_count):
    return {stack.get("/api/whoami").json()["hostname"] for _ in range(requests_count)}


def nginx_identity(stack):
    (nginx,) = stack.running("nginx")
    nginx.reload()
    return nginx.id, nginx.attrs["State"]["StartedAt"], nginx.attrs["RestartCount"]


def test_scaling_up_is_picked_up_without_restarting_nginx(stack):
    nginx_before = nginx_identity(stack)
    try:
        make_scale(stack, 3)
        scaled_at = time.monotonic()
        replicas = {c.id[:12] for c in stack.running("web")}
        assert len(replicas) == 3

        seen = set()

        def every_replica_answered():
            seen.update(hostnames_answering(stack, 6))
            return seen == replicas

        wait_for(every_replica_answered, deadline_s=15, interval_s=0.1, message="all 3 replicas answering")
        picked_up_after_s = time.monotonic() - scaled_at
        print(f"new replicas answered {picked_up_after_s:.1f}s after `make scale N=3` returned")
        assert picked_up_after_s < 10
        assert nginx_identity(stack) == nginx_before
    finally:
        make_scale(stack, 1)


def test_requests_are_spread_over_three_replicas(stack):
    try:
        make_scale(stack, 3)
        replicas = {c.id[:12] for c in stack.running("web")}
        wait_for(lambda: hostnames_answering(stack, 9) == replicas, deadline_s=15, message="round robin over 3")
        counts = Counter(stack.get("/api/whoami").json()["hostname"] for _ in range(60))
        assert set(counts) == replicas
        # Round robin: no replica gets more than twice its fair share.
        assert max(counts.values()) <= 2 * 60 / 3, counts
    finally:
        make_scale(stack, 1)


def test_no_replica_left_is_a_json_502_with_the_security_headers_and_service_returns(stack):
    try:
        make_scale(stack, 0)

        def nginx_answers_502():
            response = stack.get("/api/whoami")
            # A Response is falsy for error statuses: wrap it to hand it back.
            return [response] if response.status_code == 502 else None

        (response,) = wait_for(nginx_answers_502, deadline_s=15, message="502 with no replicas")
        assert_json_error(response, 502, "bad_gateway")
        assert_security_headers(response)
    finally:
        make_scale(stack, 1)
    wait_for(lambda: stack.get("/api/whoami").status_code == 200, deadline_s=15, message="service back")


class FollowedLogs:
    """Each container's log as Docker streams it, kept after the container is removed: `make
    scale` stops a replica and removes it at once, so reading its log afterwards finds
    nothing. A stream ends when its container stops; the others are closed on exit."""

    def __init__(self, containers):
        self.text = {container.id[:12]: [] for container in containers}
        # A read that ended in an error (closing a stream on exit ends its read so).
        self.errors = {}
        self._streams = {c.id[:12]: c.logs(stream=True, follow=True, stdout=True, stderr=True) for c in containers}
        self._threads = [threading.Thread(target=self._read, args=(key,), daemon=True) for key in self._streams]

    def _read(self, key):
        try:
            for chunk in self._streams[key]:
                self.text[key].append(chunk)
        except Exception as error:
            self.errors[key] = error

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def ended(self, key, timeout_s):
        """True once the container's stream has ended, read to its end (it stopped), within
        timeout_s."""
        (thread,) = [t for k, t in zip(self._streams, self._threads, strict=True) if k == key]
        thread.join(timeout_s)
        assert key not in self.errors, f"reading {key}'s log: {self.errors[key]!r}"
        return not thread.is_alive()

    def entries(self, key):
        return log_entries(b"".join(self.text[key]).decode("utf-8", "replace"))

    def __exit__(self, *exc_info):
        for stream in self._streams.values():
            stream.close()
        for thread in self._threads:
            thread.join(10)


def stop_signals(stack, since, until):
    """When Docker sent each of the project's web containers its stop signal (SIGTERM), by
    container id, from the engine's event log."""
    events = stack.docker.events(
        since=since,
        until=until,
        decode=True,
        filters={
            "type": "container",
            "event": "kill",
            "label": [f"com.docker.compose.project={stack.project}", "com.docker.compose.service=web"],
        },
    )
    sent = {}
    for event in events:
        if event["Actor"]["Attributes"].get("signal") == "15":
            sent.setdefault(event["Actor"]["ID"][:12], event["timeNano"] / 1e9)
    return sent


# Long enough to be in flight through the whole stop: compose sending SIGTERM, the drain
# (GUNICORN_DRAIN_SECONDS) and the start of gunicorn's graceful stop; well under nginx's
# proxy read timeout and the replicas' stop_grace_period.
SLOW_MS = 8000
SLOW_REQUESTS = 6


def test_requests_in_flight_on_the_replicas_a_scale_down_stops_finish(stack):
    try:
        make_scale(stack, 3)
        replicas = {c.id[:12]: c for c in stack.running("web")}
        stack.replicas_answering(3)
        prefix = f"in-flight-{uuid.uuid4().hex[:12]}-"
        answers = {}

        def slow_request(request_id):
            sent_at = time.time()
            outcome = one_request(
                stack.base_url, f"/api/sleep/{SLOW_MS}", headers={"X-Request-ID": request_id}, timeout_s=60
            )
            answers[request_id] = (sent_at, outcome, time.time())

        with FollowedLogs(replicas.values()) as logs:
            # nginx spreads them round robin: two on each replica, so four on the two that go.
            threads = [
                threading.Thread(target=slow_request, args=(f"{prefix}{n}",), daemon=True) for n in range(SLOW_REQUESTS)
            ]
            for thread in threads:
                thread.start()
            # Each is sent by now, and asleep in a replica for seconds more.
            time.sleep(1)
            scale_started = time.time()
            make_scale(stack, 1)
            for thread in threads:
                thread.join(60)
            signals = stop_signals(stack, since=int(scale_started) - 1, until=int(time.time()) + 2)
            removed = set(replicas) - {c.id[:12] for c in stack.running("web")}
            assert len(removed) == 2, removed
            for replica in removed:
                assert logs.ended(replica, timeout_s=30), f"replica {replica} still logging after make scale returned"
            logged = {replica: logs.entries(replica) for replica in replicas}

        assert len(answers) == SLOW_REQUESTS, f"slow requests unanswered within 60s: {SLOW_REQUESTS - len(answers)}"
        failed = {rid: (o.status, o.error or o.body) for rid, (_, o, _) in answers.items() if o.status != 200}
        on_removed = {rid: a for rid, a in answers.items() if a[1].body.get("hostname") in removed}
        record(
            f"scale 3 -> 1 with {SLOW_REQUESTS} requests of {SLOW_MS} ms in flight: {len(failed)} failed of "
            f"{SLOW_REQUESTS} requests, {len(on_removed)} of them answered by the 2 replicas stopped"
        )
        assert not failed, failed
        assert on_removed, f"no slow request was served by a replica the scale-down stopped: {answers}"
        assert set(signals) >= removed, f"no SIGTERM seen for {removed - set(signals)}"
        for request_id, (sent_at, outcome, answered_at) in on_removed.items():
            replica = outcome.body["hostname"]
            # In flight when the replica was told to stop, and answered in full after.
            assert sent_at < signals[replica] < answered_at, (request_id, sent_at, signals[replica], answered_at)
            assert outcome.body["slept_ms"] == SLOW_MS
            # The replica that answered, and only it, logged the request, served 200.
            served = {
                name: [e for e in entries if e.get("request_id") == request_id and "status" in e]
                for name, entries in logged.items()
            }
            assert [e["status"] for e in served[replica]] == [200], (request_id, served[replica])
            assert not any(served[name] for name in replicas if name != replica), (request_id, served)
    finally:
        make_scale(stack, 1)
