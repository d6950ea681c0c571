"""How the stack's costs grow with load, measured on the containers the benchmark starts:

- nginx's memory while it holds idle keep-alive client connections (1,000, 5,000, 10,000);
- one gevent worker's memory while it serves 1,000 sleeping requests at once;
- throughput and CPU per request with 1, 2 and 4 replicas behind one nginx, in paired rounds.

The fourth, the time from `make scale N=k` to the new replicas taking traffic, runs on the
host (bench/scale_timing.py), since it drives the stack's own Makefile; growth_report.py
puts all four in one report."""

import json
import re
import resource
import socket
import statistics
import time
import urllib.request
from dataclasses import replace

from . import wrk
from .containers import wait_until_serving
from .cpu import MACHINE, CpuMeter, per_request_us
from .plan import STATIC_FILE, TRIVIAL

IDLE_CONNECTION_COUNTS = (1_000, 5_000, 10_000)
SLEEPING_REQUESTS = 1_000
# Long enough that every request is still asleep while the memory is read.
SLEEP_MS = 6_000
REPLICA_COUNTS = (1, 2, 4)
REPLICA_CLIENTS = 64
CONNECT_TIMEOUT_S = 5


def raise_open_file_limit(wanted):
    """Each held connection is a descriptor of this process: lift the soft limit, up to the
    hard one, or say plainly that the hard one is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            raise RuntimeError(f"{wanted} open files needed, and this process may open {hard} at most (ulimit -Hn)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def request_bytes(host, path):
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n".encode()


def read_response(sock):
    """Read one HTTP/1.1 response with a Content-Length; its status, or None if the peer closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next((int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        body += chunk
    return status


def still_open(sock):
    """True while the peer has not closed the connection (nothing to read, no EOF)."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


class Connections:
    """`count` connections of this process's to host:port for `path`, closed on exit."""

    def __init__(self, host, port, path, count):
        self.host, self.port, self.path, self.count = host, port, path, count
        self.sockets = []

    def prepare(self):
        """The request to send on each, and the server's address, looked up once: thousands
        of lookups would measure Docker's DNS, not the server."""
        raise_open_file_limit(self.count + 256)
        return request_bytes(self.host, self.path), (socket.gethostbyname(self.host), self.port)

    def __exit__(self, *exc):
        for sock in self.sockets:
            sock.close()
        self.sockets = []


class HeldConnections(Connections):
    """Each connection has had one request answered and is kept alive, idle. Connections the
    server refused or closed are counted, not held."""

    def __init__(self, host, port, path, count):
        super().__init__(host, port, path, count)
        self.refused = 0

    def __enter__(self):
        request, address = self.prepare()
        try:
            for _ in range(self.count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    sock.settimeout(CONNECT_TIMEOUT_S)
                    sock.connect(address)
                    sock.sendall(request)
                    if read_response(sock) != 200:
                        raise ConnectionError("not answered 200")
                except OSError:
                    sock.close()
                    self.refused += 1
                    continue
                self.sockets.append(sock)
        except BaseException:
            self.__exit__()
            raise
        return self

    def open_now(self):
        return sum(still_open(sock) for sock in self.sockets)


def container_memory(container):
    """A container's memory as `docker stats` shows it (the cgroup's usage less its inactive
    file cache), with the parts of it that grow with connections: anonymous memory (the
    processes' heaps), the kernel's memory and, of that, socket buffers, in bytes (None
    where the cgroup does not report them)."""
    stats = container.stats(stream=False, one_shot=True)["memory_stats"]
    return memory_from_stats(stats)


def memory_from_stats(memory_stats):
    parts = memory_stats.get("stats", {})
    usage = memory_stats["usage"] - parts.get("inactive_file", parts.get("total_inactive_file", 0))
    # cgroup v2 names the kernel's own memory for the cgroup (its sockets' structures among it)
    # and the socket buffers; cgroup v1 counts them in the usage without saying how much: None.
    v2 = "anon" in parts
    return {
        "usage": usage,
        "anon": parts["anon"] if v2 else parts.get("rss", 0),
        "kernel": parts.get("kernel") if v2 else None,
        "sock": parts.get("sock") if v2 else None,
    }


def per_item(before, after, items):
    """Bytes each item added, part by part (None where a part is unknown, or nothing was held)."""
    return {
        part: round((after[part] - before[part]) / items) if items and None not in (before[part], after[part]) else None
        for part in before
    }


def measure_idle_connections(containers, default, counts=IDLE_CONNECTION_COUNTS, settle_s=2):
    """For each count, a fresh nginx (the stack's, limits off) with its memory before and while
    holding that many idle keep-alive clients; each connection first fetches the static file,
    which nginx serves itself, so no replica is involved."""
    server = containers.start_server(default)
    rows = []
    try:
        wait_until_serving("http://web:8000" + TRIVIAL.path, server)
        for count in counts:
            nginx = containers.start_nginx(default)
            try:
                wait_until_serving("http://nginx:8080" + STATIC_FILE, nginx)
                time.sleep(settle_s)
                before = container_memory(nginx)
                with HeldConnections("nginx", 8080, STATIC_FILE, count) as held:
                    time.sleep(settle_s)
                    during = container_memory(nginx)
                    still = held.open_now()
                rows.append(
                    {
                        "connections": count,
                        "held": still,
                        "refused": held.refused,
                        # Answered, then closed by nginx before the memory was read.
                        "closed": count - held.refused - still,
                        "before": before,
                        "during": during,
                        "per_connection": per_item(before, during, still),
                    }
                )
                print(f"growth: nginx holding {still} of {count} idle connections: {during['usage'] / 2**20:.1f} MiB")
            finally:
                containers.stop(nginx)
    finally:
        containers.stop(server)
    return rows


def proc_status_kib(text, field):
    """A field of /proc/<pid>/status in KiB (VmRSS, RssAnon)."""
    match = re.search(rf"^{field}:\s+(\d+) kB$", text, re.MULTILINE)
    if not match:
        raise ValueError(f"no {field} in /proc status")
    return int(match.group(1))


def in_flight(metrics_text):
    """The stack's in-flight gauge summed over its series (prometheus text format)."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("flask_stack_http_requests_in_flight") and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def worker_memory_kib(container, pid):
    result = container.exec_run(["cat", f"/proc/{pid}/status"])
    if result.exit_code != 0:
        raise RuntimeError(f"cannot read the worker's /proc/{pid}/status: {result.output[:200]!r}")
    text = result.output.decode()
    return {"rss": proc_status_kib(text, "VmRSS"), "anon": proc_status_kib(text, "RssAnon")}


def measure_sleeping_worker(containers, default, concurrent=SLEEPING_REQUESTS, sleep_ms=SLEEP_MS):
    """The default configuration with one gevent worker: its memory idle (warmed up) and while
    `concurrent` requests sleep in it at once, with the in-flight gauge as the witness."""
    one_worker = replace(default, env={**default.env, "GUNICORN_WORKERS": "1"})
    server = containers.start_server(one_worker)
    try:
        wait_until_serving("http://web:8000" + TRIVIAL.path, server)
        for _ in range(50):
            urllib.request.urlopen("http://web:8000/api/sleep/1", timeout=5).read()
        with urllib.request.urlopen("http://web:8000/api/whoami", timeout=5) as answer:
            pid = json.load(answer)["pid"]
        time.sleep(1)
        idle = worker_memory_kib(server, pid)
        idle_container = container_memory(server)
        started = time.monotonic()
        with SentRequests("web", 8000, f"/api/sleep/{sleep_ms}", concurrent) as sent:
            # Every request reached the worker, or the gauge says how many did: the memory is
            # read while the first of them still have half their sleep ahead.
            deadline = started + sleep_ms / 2000
            counted = 0.0
            while time.monotonic() < deadline:
                with urllib.request.urlopen("http://web:9464/metrics", timeout=5) as answer:
                    counted = in_flight(answer.read().decode())
                if counted >= concurrent:
                    break
                time.sleep(0.2)
            loaded = worker_memory_kib(server, pid)
            loaded_container = container_memory(server)
            read_at_s = time.monotonic() - started
            statuses = sent.statuses()
        answered_after_s = time.monotonic() - started
    finally:
        containers.stop(server)
    ok = statuses.count(200)
    print(f"growth: one gevent worker with {counted:.0f} sleeping requests: RSS {loaded['rss'] / 1024:.1f} MiB")
    return {
        "concurrent": concurrent,
        "sleep_ms": sleep_ms,
        "in_flight": counted,
        "read_at_s": round(read_at_s, 2),
        "answered_200": ok,
        "all_answered_after_s": round(answered_after_s, 2),
        "idle_kib": idle,
        "loaded_kib": loaded,
        "container_idle": idle_container,
        "container_loaded": loaded_container,
        # Per request the gauge saw in flight: fewer asleep than sent must not flatter the figure.
        "per_request_bytes": {
            part: round((loaded[part] - idle[part]) * 1024 / counted) if counted else None for part in idle
        },
    }


class SentRequests(Connections):
    """A request sent at once on each connection; the answers read later."""

    def __enter__(self):
        request, address = self.prepare()
        try:
            for _ in range(self.count):
                sock = socket.create_connection(address, timeout=CONNECT_TIMEOUT_S)
                self.sockets.append(sock)
                sock.sendall(request)
        except BaseException:
            self.__exit__()
            raise
        return self

    def statuses(self, timeout_s=30):
        statuses = []
        for sock in self.sockets:
            sock.settimeout(timeout_s)
            try:
                statuses.append(read_response(sock))
            except OSError:
                statuses.append(None)
        return statuses


def replica_alias(count):
    return f"replicas-{count}"


def measure_replicas(containers, default, duration, rounds, counts=REPLICA_COUNTS, clients=REPLICA_CLIENTS):
    """max(counts) replicas of the default configuration and one nginx per count, each in front
    of the first `count` replicas (a network alias per set). Rounds measure the nginxes in
    turn, every other round in reverse, so each count meets the machine's noise alike. The
    replicas outside a set sit idle: they cost memory, not CPU."""
    largest = max(counts)
    servers, nginxes = [], {}
    try:
        for index in range(largest):
            aliases = [replica_alias(count) for count in counts if index < count]
            servers.append(containers.start_server(default, alias=f"web-{index + 1}", extra_aliases=aliases))
        for server in servers:
            wait_until_serving(f"http://{server.name}:8000" + TRIVIAL.path, server)
        for count in counts:
            nginxes[count] = containers.start_nginx(default, alias=f"nginx-{count}", upstream=replica_alias(count))
        for count, nginx in nginxes.items():
            wait_until_serving(f"http://nginx-{count}:8080" + TRIVIAL.path, nginx)
            spread_over(f"http://nginx-{count}:8080/api/whoami", count)
        runs = {count: [] for count in counts}
        for number in range(rounds):
            order = counts if number % 2 == 0 else tuple(reversed(counts))
            for count in order:
                meter = CpuMeter({"servers": Together(servers), "nginx": nginxes[count]})
                before, since = meter.snapshot(), time.monotonic()
                measured = wrk.run(f"http://nginx-{count}:8080" + TRIVIAL.path, clients, duration)
                after, took_s = meter.snapshot(), time.monotonic() - since
                measured["cpu_us"] = per_request_us(before, after, measured["requests"])
                # Over the whole interval the counters cover (wrk's start and stop included).
                measured["machine_busy"] = round((after[MACHINE] - before[MACHINE]) / took_s, 2)
                runs[count].append(measured)
                print(f"growth: {count} replica(s), round {number + 1}: {measured['rps']:,.0f} requests/s", flush=True)
    finally:
        for container in [*nginxes.values(), *servers]:
            containers.stop(container)
    return summarize_replicas(runs)


class Together:
    """Several containers' CPU counters read as one (CpuMeter reads `.stats`)."""

    def __init__(self, containers):
        self.containers = containers

    def stats(self, stream=False, one_shot=True):
        total = sum(
            c.stats(stream=stream, one_shot=one_shot)["cpu_stats"]["cpu_usage"]["total_usage"] for c in self.containers
        )
        return {"cpu_stats": {"cpu_usage": {"total_usage": total}}}


def spread_over(url, count, deadline_s=30):
    """Wait until nginx's answers name `count` different replicas."""
    seen = set()
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=5) as answer:
            seen.add(json.load(answer)["hostname"])
        if len(seen) >= count:
            return seen
        time.sleep(0.05)
    raise RuntimeError(f"{url} reached {len(seen)} replicas, not {count}, within {deadline_s}s")


def summarize_replicas(runs):
    """Per replica count: the median requests/s, its ratio to the fewest replicas', the median
    CPU per request by part and how busy the machine was (cores' worth), and the rounds."""
    rows = []
    baseline = None
    for count, measured in runs.items():
        rps = statistics.median(run["rps"] for run in measured)
        baseline = baseline or rps
        parts = sorted({part for run in measured for part in run["cpu_us"]})
        rows.append(
            {
                "replicas": count,
                "rps": round(rps, 1),
                "ratio": round(rps / baseline, 2) if baseline else None,
                "rounds_rps": [round(run["rps"], 1) for run in measured],
                "p99_ms": round(statistics.median(run["p99_ms"] for run in measured), 1),
                "errors": sum(sum(run["errors"].values()) for run in measured),
                "cpu_us": {
                    part: round(statistics.median(run["cpu_us"][part] for run in measured), 1) for part in parts
                },
                "machine_busy": round(statistics.median(run["machine_busy"] for run in measured), 2),
            }
        )
    return rows
