"""A bounded client loop that keeps the stack busy while a test scales, deploys or kills.

Each client thread sends requests one after another, each on a new connection (so what
is measured is the stack, not a client reusing a connection the server is closing),
until the loop is stopped, a time limit passes or a request budget is spent. Every
answer is kept: the status, the parsed JSON body and when it came. Each request carries an
X-Request-ID that starts with the loop's own prefix, so a test can pick its requests out of
nginx's access log (which logs that id) and nobody else's.
"""

import http.client
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# "scenario: 0 failed of N" lines, printed at the end of the test session.
REPORTS = []


def record(line):
    """Keep a scenario's result line for the end-of-session summary, and show it now."""
    REPORTS.append(line)
    print(line)
    return line


@dataclass
class Outcome:
    path: str
    status: int  # 0 when no HTTP answer came at all
    started: float
    elapsed_s: float
    body: dict = field(default_factory=dict)
    error: str = ""
    request_id: str = ""  # the X-Request-ID sent, to find the request in nginx's log


def one_request(base_url, path, method="GET", headers=None, timeout_s=30.0, body=None):
    """Send one request on a fresh connection; never raises for network errors."""
    target = urlsplit(base_url)
    request_id = (headers or {}).get("X-Request-ID", "")
    started = time.monotonic()
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=timeout_s)
    try:
        connection.request(method, path, body=body, headers={"Connection": "close", **(headers or {})})
        response = connection.getresponse()
        raw = response.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"raw": raw[:200].decode("utf-8", "replace")}
        if not isinstance(body, dict):
            body = {}
        return Outcome(path, response.status, started, time.monotonic() - started, body, request_id=request_id)
    except (OSError, http.client.HTTPException) as exc:
        error = f"{type(exc).__name__}: {exc}"
        return Outcome(path, 0, started, time.monotonic() - started, error=error, request_id=request_id)
    finally:
        connection.close()


class LoadLoop:
    """`with LoadLoop(url, ["/api/whoami"]) as load: ...` then `load.failures`, `load.report(...)`."""

    def __init__(self, base_url, paths=("/api/whoami",), clients=4, max_seconds=180, max_requests=200_000, pause_s=0.0):
        self.base_url = base_url
        self.paths = list(paths)
        self.clients = clients
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.pause_s = pause_s
        # nginx accepts ids of 8 to 128 characters from [A-Za-z0-9._-] and logs them.
        self.request_id_prefix = f"load-{uuid.uuid4().hex[:12]}-"
        self.outcomes = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []

    def _client(self, index):
        deadline = time.monotonic() + self.max_seconds
        turn = index
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if len(self.outcomes) >= self.max_requests:
                    return
            request_id = f"{self.request_id_prefix}{index}-{turn}"
            outcome = one_request(
                self.base_url, self.paths[turn % len(self.paths)], headers={"X-Request-ID": request_id}
            )
            turn += 1
            with self._lock:
                self.outcomes.append(outcome)
            if self.pause_s:
                time.sleep(self.pause_s)

    def __enter__(self):
        for index in range(self.clients):
            thread = threading.Thread(target=self._client, args=(index,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def wait_for_requests(self, count, deadline_s=30):
        """Block until at least `count` answers came (so a scenario starts under real load)."""
        deadline = time.monotonic() + deadline_s
        while len(self.outcomes) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"load loop made only {len(self.outcomes)} requests in {deadline_s}s")
            time.sleep(0.05)

    @property
    def failures(self):
        return [o for o in self.outcomes if o.status != 200]

    def statuses(self):
        return Counter(o.status for o in self.outcomes)

    def report(self, scenario):
        """Record and return the scenario's line: '<scenario>: F failed of N (...)'."""
        slowest = max((o.elapsed_s for o in self.outcomes), default=0.0)
        line = (
            f"{scenario}: {len(self.failures)} failed of {len(self.outcomes)} requests "
            f"(statuses {dict(sorted(self.statuses().items()))}, slowest {slowest:.2f}s)"
        )
        return record(line)

    def describe_failures(self, limit=10):
        return "\n".join(f"{o.path} -> {o.status} {o.error or o.body}" for o in self.failures[:limit])
