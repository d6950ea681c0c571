"""Clients sending HTTPS requests, each on a new connection (a full handshake, so each shows
the certificate being served), below the per-client rate limit and bounded in time: the load
under which tests/test_tls.py and tests/test_acme.py swap the certificate nginx serves."""

import http.client
import threading
import time


class HttpsLoad:
    """`request(client_index)` sends one request and returns (status, served serial); each
    outcome is (started, finished, status or error, serial)."""

    def __init__(self, request, clients=2, pause_s=0.15, max_seconds=60):
        self.request = request
        self.clients, self.pause_s, self.max_seconds = clients, pause_s, max_seconds
        self.outcomes = []
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def _client(self, index):
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                status, serial = self.request(index)
                outcome = (started, time.monotonic(), status, serial)
            except (OSError, http.client.HTTPException) as exc:
                outcome = (started, time.monotonic(), f"{type(exc).__name__}: {exc}", None)
            with self._lock:
                self.outcomes.append(outcome)
            time.sleep(self.pause_s)

    def __enter__(self):
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
