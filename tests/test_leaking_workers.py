"""Workers are recycled, under load and without a failed request, for the two reasons the stack
has: memory over GUNICORN_MAX_WORKER_MEMORY_MB (a leaking app stays bounded) and a share of
requests, GUNICORN_MAX_REQUESTS plus gunicorn's jitter (so workers do not all go at once).

Both stacks pin their worker count (GUNICORN_WORKERS=2): what the memory test bounds grows
with the count while what it leaks does not, and the jitter test needs several lifetimes of
each worker; with the count pinned, both prove the same thing on any host."""

import re
import threading
import time
from collections import Counter

import pytest

from load import LoadLoop
from stack import composed_stack, effective_settings

WORKERS = 2
CEILING_MB = 100
LEAK_KIB = 256
REQUESTS = 3000
# The leaking load is capped in rate, whatever the host's speed: each of the 4 clients
# pauses 20 ms after each answer, so at most 200 requests/s arrive.
CLIENTS = 4
PAUSE_S = 0.02
MAX_RATE = CLIENTS / PAUSE_S
# What a worker told to stop still takes in: gevent's worker looks at its stop flag once a
# second and accepts new connections until then (gunicorn's ggevent.py), and it answers
# one more request on each keep-alive connection nginx holds to it (32 per nginx worker).
STOP_LAG_S = 1.25
KEEPALIVE_CONNECTIONS = 64
LAST_REQUESTS_MB = (MAX_RATE * STOP_LAG_S + KEEPALIVE_CONNECTIONS) * LEAK_KIB / 1024
# The allocator's slack above what was leaked.
SLACK_MB = 10
# Resident memory of a worker that has just booted (its replacement runs beside it briefly).
FRESH_WORKER_MB = 50


@pytest.fixture(scope="module")
def leaky_stack():
    env = {
        "NGINX_LIMITS": "off",
        "APP_FAULT_INJECTION": "on",
        "GUNICORN_WORKERS": str(WORKERS),
        "GUNICORN_MAX_WORKER_MEMORY_MB": str(CEILING_MB),
        # Isolate the memory ceiling: no recycling by request count.
        "GUNICORN_MAX_REQUESTS": "0",
    }
    with composed_stack("leaky", env=env) as composed:
        yield composed


# Each process's high-water mark of resident memory (VmHWM, kB), by pid; the kernel keeps
# the peak, so a sample taken any time before the process exits sees it.
READ_PEAKS = "grep -H VmHWM /proc/[0-9]*/status 2>/dev/null"
# The replica's cgroup: the most memory its processes held together, kept by the kernel
# (cgroup v2's memory.peak, or v1's max_usage_in_bytes where the host runs cgroup v1).
READ_CGROUP_PEAK = ["sh", "-c", "cat /sys/fs/cgroup/memory.peak 2>/dev/null"
                    " || cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes"]


class PeakSampler:
    """Reads every process's VmHWM in the replica until stopped, keeping the last per pid."""

    def __init__(self, container, interval_s=0.2):
        self.container = container
        self.interval_s = interval_s
        self.peak_kib = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(self.interval_s):
            output = self.container.exec_run(["sh", "-c", READ_PEAKS]).output.decode()
            for pid, kib in re.findall(r"/proc/(\d+)/status:VmHWM:\s+(\d+) kB", output):
                self.peak_kib[int(pid)] = max(self.peak_kib.get(int(pid), 0), int(kib))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(10)


def cgroup_peak_mb(container):
    return int(container.exec_run(READ_CGROUP_PEAK).output) / 2**20


def test_leaking_workers_are_recycled_and_memory_stays_bounded(leaky_stack):
    (replica,) = leaky_stack.running("web")
    assert int(effective_settings(replica)["workers"]) == WORKERS
    # Booted, with its page cache: the replica's peak before any leak.
    booted_mb = cgroup_peak_mb(replica)
    with PeakSampler(replica) as peaks, LoadLoop(
        leaky_stack.base_url, [f"/api/faults/leak/{LEAK_KIB}"], clients=CLIENTS, pause_s=PAUSE_S,
        max_requests=REQUESTS, max_seconds=240,
    ) as load:
        load.wait_for_requests(REQUESTS, deadline_s=240)
    peak_mb = cgroup_peak_mb(replica)

    leaked_mb = REQUESTS * LEAK_KIB / 1024
    recycled = leaky_stack.logs("web").count(f"over the {CEILING_MB} MiB ceiling")
    worker_peaks_mb = {pid: kib / 1024 for pid, kib in peaks.peak_kib.items()}
    load.report(f"leaking workers ({leaked_mb:.0f} MiB leaked, {recycled} recycles, replica peak {peak_mb:.0f} MiB "
                f"from {booted_mb:.0f} at boot, largest worker {max(worker_peaks_mb.values()):.0f} MiB)")
    assert len(load.outcomes) >= REQUESTS
    assert not load.failures, load.describe_failures()
    # A worker is told to stop after the request that crossed the ceiling: no process ever
    # holds more than the ceiling and what it takes in before it stops accepting.
    over = {pid: mb for pid, mb in worker_peaks_mb.items() if mb > CEILING_MB + LAST_REQUESTS_MB + SLACK_MB}
    assert not over, over
    # The replica as a whole (the kernel's peak, nothing sampled): what it held at boot, plus
    # for each worker slot a worker at that most and, briefly, its fresh replacement.
    # Without the ceiling it would hold all it leaked.
    bound_mb = booted_mb + WORKERS * (CEILING_MB + LAST_REQUESTS_MB + SLACK_MB + FRESH_WORKER_MB)
    assert peak_mb < bound_mb < leaked_mb, (peak_mb, bound_mb, leaked_mb)
    assert recycled >= leaked_mb / CEILING_MB / 2, recycled
    pids = {o.body["pid"] for o in load.outcomes}
    assert len(pids) > WORKERS, "recycled workers come back as new processes"


MAX_REQUESTS = 40
JITTER = 40
# Long enough for several lifetimes of each worker: a gevent worker recycles one at a time
# and takes a few seconds to be replaced (see recycle_turns.py).
COUNTING_SECONDS = 15


@pytest.fixture(scope="module")
def counted_stack():
    env = {
        "NGINX_LIMITS": "off",
        "GUNICORN_WORKERS": str(WORKERS),
        "GUNICORN_MAX_REQUESTS": str(MAX_REQUESTS),
        "GUNICORN_MAX_REQUESTS_JITTER": str(JITTER),
        # Isolate recycling by request count: no memory ceiling.
        "GUNICORN_MAX_WORKER_MEMORY_MB": "0",
    }
    with composed_stack("counted", env=env) as composed:
        yield composed


def test_workers_recycle_after_their_jittered_share_of_requests(counted_stack):
    # Paced, so that each lifetime takes a second or more: recycling, not the load, sets the pace.
    with LoadLoop(counted_stack.base_url, ["/api/whoami"], clients=2, pause_s=PAUSE_S,
                  max_seconds=COUNTING_SECONDS) as load:
        load.wait_for_requests(100)
        time.sleep(COUNTING_SECONDS)
    logs = counted_stack.logs("web")
    shares = {int(pid): int(share) for pid, share in re.findall(r"worker (\d+) recycles after (\d+) requests", logs)}
    served = {int(pid): int(count) for pid, count in
              re.findall(r"worker (\d+) served (\d+) requests \(GUNICORN_MAX_REQUESTS\)", logs)}
    answered_by = Counter(o.body.get("pid") for o in load.outcomes)
    load.report(f"workers recycled by request count ({MAX_REQUESTS} + up to {JITTER} jitter): "
                f"{len(served)} recycles, shares {sorted(shares.values())}")

    assert not load.failures, load.describe_failures()
    # Several lifetimes of each worker.
    assert len(served) >= 3 * WORKERS, served
    assert set(served) <= set(shares), "every recycled worker had logged its share at boot"
    # gunicorn drew each worker's share from max_requests to max_requests + jitter, and the
    # draws differ: workers that started together do not recycle together.
    assert all(MAX_REQUESTS <= share <= MAX_REQUESTS + JITTER for share in shares.values()), shares
    assert len(set(shares.values())) >= 3, f"no jitter in the shares drawn: {shares}"
    # A worker recycles only once it has served its share (its turn may keep it longer).
    for pid, count in served.items():
        assert count >= shares[pid], (pid, count, shares[pid])
    assert len(answered_by) > WORKERS, "recycled workers come back as new processes"
