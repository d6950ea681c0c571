"""Workers are recycled, under load and without a failed request, for the two reasons the stack
has: memory over GUNICORN_MAX_WORKER_MEMORY_MB (a leaking app stays bounded) and a share of
requests, GUNICORN_MAX_REQUESTS plus gunicorn's jitter (so workers do not all go at once).

Both stacks pin their worker count (GUNICORN_WORKERS=2): what the memory test bounds grows
with the count while what it leaks does not, and the jitter test needs several lifetimes of
each worker; with the count pinned, both prove the same thing on any host."""

import re
import threading
from dataclasses import dataclass
from datetime import datetime

import pytest

from composed import composed_stack, effective_settings, log_entries, wait_for
from load import LoadLoop

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
# one more request on each idle keep-alive connection nginx holds to it. nginx keeps up to
# NGINX_UPSTREAM_KEEPALIVE of those per nginx worker process, one process per CPU: the
# stack pins it low, so that on a many-core host the bound still sits below the leak.
STOP_LAG_S = 1.25
UPSTREAM_KEEPALIVE = 8
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
        "NGINX_UPSTREAM_KEEPALIVE": str(UPSTREAM_KEEPALIVE),
    }
    with composed_stack("leaky", env=env) as composed:
        yield composed


# Each process's high-water mark of resident memory (VmHWM, kB) and its present size
# (VmRSS), by pid. The kernel keeps the high-water mark, so a sample taken any time before
# the process exits sees its peak.
READ_MEMORY = "grep -H -E '^Vm(HWM|RSS):' /proc/[0-9]*/status 2>/dev/null"
# The replica's cgroup: the most memory its processes held together, kept by the kernel
# (cgroup v2's memory.peak, from Linux 5.19, or v1's max_usage_in_bytes); empty without.
READ_CGROUP_PEAK = [
    "sh",
    "-c",
    "cat /sys/fs/cgroup/memory.peak 2>/dev/null"
    " || cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes 2>/dev/null || true",
]


class PeakSampler:
    """Reads every process's memory in the replica until stopped: the highest VmHWM per pid,
    and the largest sum of VmRSS over one sample (for kernels that keep no cgroup peak)."""

    def __init__(self, container, interval_s=0.2):
        self.container = container
        self.interval_s = interval_s
        self.peak_kib = {}
        self.largest_total_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(self.interval_s):
            output = self.container.exec_run(["sh", "-c", READ_MEMORY]).output.decode()
            total = 0
            for pid, field, kib in re.findall(r"/proc/(\d+)/status:Vm(HWM|RSS):\s+(\d+) kB", output):
                if field == "HWM":
                    self.peak_kib[int(pid)] = max(self.peak_kib.get(int(pid), 0), int(kib))
                else:
                    total += int(kib)
            self.largest_total_kib = max(self.largest_total_kib, total)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(10)


def cgroup_peak_mb(container):
    """The replica's peak as the kernel kept it, or None where the kernel keeps none."""
    output = container.exec_run(READ_CGROUP_PEAK).output.strip()
    return int(output) / 2**20 if output else None


def resident_total_mb(container):
    output = container.exec_run(["sh", "-c", READ_MEMORY]).output.decode()
    return sum(int(kib) for kib in re.findall(r"VmRSS:\s+(\d+) kB", output)) / 1024


def nginx_worker_processes(stack):
    (nginx,) = stack.running("nginx")
    output = nginx.exec_run(["sh", "-c", "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n'"]).output
    return output.decode().count("nginx: worker process")


def test_leaking_workers_are_recycled_and_memory_stays_bounded(leaky_stack):
    (replica,) = leaky_stack.running("web")
    assert int(effective_settings(replica)["workers"]) == WORKERS
    # A worker told to stop takes in up to STOP_LAG_S of the load and one request on each
    # idle connection nginx keeps to the replica.
    keepalive_connections = UPSTREAM_KEEPALIVE * nginx_worker_processes(leaky_stack)
    assert keepalive_connections, "no nginx worker process found"
    last_requests_mb = (MAX_RATE * STOP_LAG_S + keepalive_connections) * LEAK_KIB / 1024
    # Booted: the replica's peak before any leak (with its page cache), or its resident total.
    booted_mb = cgroup_peak_mb(replica) or resident_total_mb(replica)
    with (
        PeakSampler(replica) as memory,
        LoadLoop(
            leaky_stack.base_url,
            [f"/api/faults/leak/{LEAK_KIB}"],
            clients=CLIENTS,
            pause_s=PAUSE_S,
            max_requests=REQUESTS,
            max_seconds=240,
        ) as load,
    ):
        load.wait_for_requests(REQUESTS, deadline_s=240)
    peak_mb = cgroup_peak_mb(replica)
    if peak_mb is None:
        # No cgroup peak on this kernel: the largest sampled total, which can miss a peak.
        peak_source, peak_mb = "sampled", memory.largest_total_kib / 1024
    else:
        peak_source = "kernel's"

    leaked_mb = REQUESTS * LEAK_KIB / 1024
    recycled = leaky_stack.logs("web").count(f"over the {CEILING_MB} MiB ceiling")
    worker_peaks_mb = {pid: kib / 1024 for pid, kib in memory.peak_kib.items()}
    load.report(
        f"leaking workers ({leaked_mb:.0f} MiB leaked, {recycled} recycles, replica peak {peak_mb:.0f} MiB "
        f"({peak_source}; {booted_mb:.0f} at boot), largest worker {max(worker_peaks_mb.values()):.0f} MiB)"
    )
    assert len(load.outcomes) >= REQUESTS
    assert not load.failures, load.describe_failures()
    # A worker is told to stop after the request that crossed the ceiling: no process ever
    # holds more than the ceiling and what it takes in before it stops accepting.
    over = {pid: mb for pid, mb in worker_peaks_mb.items() if mb > CEILING_MB + last_requests_mb + SLACK_MB}
    assert not over, over
    # The replica as a whole (the kernel's peak where it keeps one): what it held at boot
    # (page cache included), plus for each worker slot a worker at that most and, briefly,
    # its fresh replacement. Without the ceiling it would hold all it leaked.
    bound_mb = booted_mb + WORKERS * (CEILING_MB + last_requests_mb + SLACK_MB + FRESH_WORKER_MB)
    assert peak_mb < bound_mb < leaked_mb, (peak_mb, bound_mb, leaked_mb)
    assert recycled >= leaked_mb / CEILING_MB / 2, recycled
    pids = {o.body["pid"] for o in load.outcomes}
    assert len(pids) > WORKERS, "recycled workers come back as new processes"


MAX_REQUESTS = 40
JITTER = 40
# Several lifetimes of each worker. A gevent worker takes a second or more to be replaced
# (docs/configuration.md, "Recycling"), so the load goes on until then.
RECYCLES = 3 * WORKERS


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


@dataclass
class Recycle:
    """A worker recycled for its request count, as the stack logged it."""

    share: int  # the share it drew at boot (GUNICORN_MAX_REQUESTS plus its jitter)
    served: int  # the requests it had served when it was told to stop
    at: datetime  # when it was told to stop


SHARE = re.compile(r"worker (\d+) recycles after (\d+) requests")
RECYCLED = re.compile(r"worker (\d+) served (\d+) requests \(GUNICORN_MAX_REQUESTS\)")


def recycles_logged(entries):
    """The stack's recycling log read: (each worker's share, by pid; each recycle, by pid).
    The one place that knows the lines of stack/recycling.py: the share gunicorn drew, logged
    when the worker starts, and the recycle, logged in gunicorn's post_request hook by the
    first request to finish with the share served, after that request's access line
    (nothing yields between the two), so a recycled worker's access lines up to `at` are
    the requests it counted."""
    shares, recycles = {}, {}
    for entry in entries:
        message = entry.get("message", "")
        if match := SHARE.search(message):
            shares[int(match[1])] = int(match[2])
        if match := RECYCLED.search(message):
            pid, served = int(match[1]), int(match[2])
            recycles[pid] = Recycle(shares.get(pid), served, logged_at(entry))
    return shares, recycles


def logged_at(entry):
    return datetime.fromisoformat(entry["time"])


def test_workers_recycle_after_their_jittered_share_of_requests(counted_stack):
    # Paced, so that each lifetime takes a second or more: recycling, not the load, sets the pace.
    with LoadLoop(counted_stack.base_url, ["/api/whoami"], clients=2, pause_s=PAUSE_S, max_seconds=150) as load:
        wait_for(
            lambda: len(recycles_logged(log_entries(counted_stack.logs("web")))[1]) >= RECYCLES,
            deadline_s=120,
            interval_s=1,
            message=f"{RECYCLES} recycles by request count",
        )
    # What each worker answered the test's clients, by the pid in its answer.
    answered = {}
    for outcome in load.outcomes:
        if outcome.status == 200:
            answered.setdefault(outcome.body["pid"], set()).add(outcome.request_id)

    def access_lines():
        entries = log_entries(counted_stack.logs("web"))
        return entries, [e for e in entries if e.get("logger") == "gunicorn.access"]

    def every_answer_logged():
        # gunicorn writes the access line just after the answer is sent.
        entries, access = access_lines()
        logged = {e["request_id"] for e in access}
        return (entries, access) if all(ids <= logged for ids in answered.values()) else None

    entries, access = wait_for(every_answer_logged, deadline_s=15, message="every answer in web's access log")
    shares, recycles = recycles_logged(entries)
    served = {pid: recycle.served for pid, recycle in recycles.items()}
    # Each recycled worker's access lines: the requests it answered, by whom they were sent.
    answered_by = {}
    for pid, recycle in recycles.items():
        mine = [e for e in access if e["pid"] == pid]
        clients = {e["request_id"] for e in mine if e["request_id"].startswith(load.request_id_prefix)}
        others = [e["request"] for e in mine if e["request_id"] not in clients]
        counted = [e for e in mine if logged_at(e) <= recycle.at]
        answered_by[pid] = (clients, others, counted)
    load.report(
        f"workers recycled by request count ({MAX_REQUESTS} + up to {JITTER} jitter): "
        f"{len(served)} recycles, shares {sorted(shares.values())}; served at recycle = clients' + health "
        "checks: "
        + ", ".join(
            f"{served[pid]} = {sum(e['request_id'] in clients for e in counted)} + "
            f"{sum(e['request_id'] not in clients for e in counted)}"
            for pid, (clients, _, counted) in answered_by.items()
        )
    )

    assert not load.failures, load.describe_failures()
    assert len(served) >= RECYCLES, served
    assert set(served) <= set(shares), "every recycled worker had logged its share at boot"
    # gunicorn drew each worker's share from max_requests to max_requests + jitter, and the
    # draws differ: workers that started together do not recycle together.
    assert all(MAX_REQUESTS <= share <= MAX_REQUESTS + JITTER for share in shares.values()), shares
    assert len(set(shares.values())) >= 3, f"no jitter in the shares drawn: {shares}"
    # A worker recycles only once it has served its share.
    for pid, count in served.items():
        assert count >= shares[pid], (pid, count, shares[pid])
    assert len({o.body.get("pid") for o in load.outcomes}) > WORKERS, "recycled workers come back as new processes"

    # The log against the clients' own count. Besides the clients, web is sent only health
    # checks: Docker's own of web (on the loopback), nginx's through nginx, and the fixture's
    # first request; all GET /healthz. A recycled worker logged every answer the clients got
    # from it and no other of theirs, and the requests it counted are the clients' and the
    # health checks it answered up to its recycle line; what it took in after (it accepts
    # until it next looks at its stop flag) it did not count.
    for pid, recycle in recycles.items():
        clients, others, counted = answered_by[pid]
        assert clients == answered.get(pid, set()), (pid, len(clients), len(answered.get(pid, ())))
        assert all(request.split()[:2] == ["GET", "/healthz"] for request in others), (pid, others)
        assert len(counted) == recycle.served, (
            f"worker {pid} logged {recycle.served} requests served at its recycle, and had answered "
            f"{len(counted)} by then ({sum(e['request_id'] in clients for e in counted)} of the clients', "
            f"the rest health checks); {len(clients)} of the clients' in all"
        )
