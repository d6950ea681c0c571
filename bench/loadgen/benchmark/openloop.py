"""An open-loop load generator: requests leave on a fixed schedule, whatever the server does.

wrk (and ab) are closed loops: each connection sends its next request only once the last
one is answered, so a server that stalls is sent less, and the requests that would have
been sent meanwhile never appear in a percentile (coordinated omission). Here the request
i is due at start + i / rate. It goes out on the first idle connection of a pool opened
beforehand; when none is idle it waits for one. Its latency is counted from the moment it
was due, not from the moment it left, which is the correction wrk2 makes: a stall then
shows in every request it delayed. The time from leaving to its answer (what a closed loop
reports) is kept beside it, and so is the generator's own lateness, so a run where the
generator could not keep up says so instead of blaming the server.

No tool that does this reaches our machines (wrk2, vegeta and oha come from registries we
cannot reach), hence this one, in the standard library only. It speaks just enough
HTTP/1.1 for the benchmark's own endpoints: GET, keep-alive, Content-Length bodies.

    python -m benchmark.openloop URL --rate R --duration S --connections C [--mix 50:/a ...]

prints one line, `BENCH_RESULT {json}`, as wrk/report.lua does for wrk.
"""

import argparse
import asyncio
import json
import math
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

MARKER = "BENCH_RESULT "
REQUEST_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 10.0
# Connections opened at once while the pool fills: a thousand SYNs together would overflow
# a server's accept queue before the run starts.
CONNECTING_AT_ONCE = 64
# Later than this behind its schedule, the generator itself was the bottleneck.
LAG_TOLERANCE_MS = 10.0


def schedule(rate, duration_s):
    """Offsets in seconds from the start at which each request is due: evenly spaced."""
    if rate <= 0 or duration_s <= 0:
        raise ValueError("rate and duration must be positive")
    return [i / rate for i in range(round(rate * duration_s))]


def paths_for(count, mix, seed=0):
    """`count` paths drawn by weight from `mix` (weight:path pairs), the same every run."""
    weighted = []
    for pair in mix:
        weight, _, path = pair.partition(":")
        if not weight.isdigit() or not path.startswith("/"):
            raise ValueError(f"expected weight:path, got {pair!r}")
        weighted.append((int(weight), path))
    draw = random.Random(seed)  # noqa: S311 (a reproducible mix, not a secret)
    return draw.choices([path for _, path in weighted], weights=[w for w, _ in weighted], k=count)


def percentile(sorted_values, fraction):
    """The nearest-rank percentile of an ascending list (the smallest value with at least
    `fraction` of the values at or below it); 0.0 for an empty list."""
    if not sorted_values:
        return 0.0
    # The tolerance keeps 100 x 0.99 at rank 99 despite the float's last digit.
    rank = min(len(sorted_values), max(1, math.ceil(len(sorted_values) * fraction - 1e-9)))
    return sorted_values[rank - 1]


@dataclass
class Sample:
    due: float  # when the schedule said it should leave (loop clock)
    queued: float  # when the generator put it up for a connection
    sent: float  # when a connection wrote it
    done: float  # when its whole answer was read
    status: int  # 0 when there was no answer
    error: str = ""


class Connection:
    """One keep-alive HTTP/1.1 connection, reopened when the server closes it."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), CONNECT_TIMEOUT_S
        )

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def get(self, path):
        """The status of GET `path`, once the whole answer is read."""
        if self.writer is None:
            await self.open()
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode("ascii"))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" not in headers:
            raise ValueError(f"an answer without Content-Length ({status_line}): not one of the benchmark's endpoints")
        await self.reader.readexactly(int(headers["content-length"]))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status


async def _fill_pool(host, port, size):
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
    errors = []

    async def one():
        connection = Connection(host, port)
        async with gate:
            try:
                await connection.open()
            except (TimeoutError, OSError) as exc:
                errors.append(type(exc).__name__)
                return None
        return connection

    opened = await asyncio.gather(*(one() for _ in range(size)))
    return [c for c in opened if c is not None], errors


async def attack(url, rate, duration_s, connections, mix=(), timeout_s=REQUEST_TIMEOUT_S):
    """Send requests to `url` (or to its host, by `mix`) at `rate` per second for
    `duration_s` over `connections` connections opened beforehand; every sample."""
    target = urlsplit(url)
    host, port = target.hostname, target.port or 80
    offsets = schedule(rate, duration_s)
    paths = paths_for(len(offsets), mix) if mix else [target.path or "/"] * len(offsets)
    pool, connect_errors = await _fill_pool(host, port, connections)
    if not pool:
        raise RuntimeError(f"no connection to {host}:{port} could be opened: {connect_errors[:3]}")
    loop = asyncio.get_running_loop()
    due_queue = asyncio.Queue()
    samples = []

    async def serve(connection):
        while (item := await due_queue.get()) is not None:
            due, queued, path = item
            sent = loop.time()
            try:
                status = await asyncio.wait_for(connection.get(path), timeout_s)
                samples.append(Sample(due, queued, sent, loop.time(), status))
            # TimeoutError first: it is an OSError too.
            except TimeoutError:
                connection.close()
                samples.append(Sample(due, queued, sent, loop.time(), 0, "timeout"))
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                connection.close()
                samples.append(Sample(due, queued, sent, loop.time(), 0, type(exc).__name__))

    servers = [asyncio.create_task(serve(c)) for c in pool]
    start = loop.time()
    next_index = 0
    while next_index < len(offsets):
        now = loop.time()
        # Everything already due goes out now, so a late wake-up sends a batch, not less.
        while next_index < len(offsets) and start + offsets[next_index] <= now:
            due_queue.put_nowait((start + offsets[next_index], now, paths[next_index]))
            next_index += 1
        if next_index < len(offsets):
            await asyncio.sleep(max(0.0, start + offsets[next_index] - loop.time()))
    for _ in servers:
        due_queue.put_nowait(None)
    # Every request already sent gets its timeout; the rest of the queue after that is lost.
    _, pending = await asyncio.wait(servers, timeout=timeout_s + max(1.0, duration_s * 0.5))
    for task in pending:
        task.cancel()
    for connection in pool:
        connection.close()
    unsent = len(offsets) - len(samples)
    return samples, connect_errors, unsent, len(pool)


def summarize(samples, rate, duration_s, connections_open, connect_errors=(), unsent=0):
    """The run as the report reads it: latencies in ms, corrected (from when each request was
    due) and uncorrected (from when it left), errors by kind, and the generator's lateness."""
    ok = [s for s in samples if s.status and not s.error]
    corrected = sorted((s.done - s.due) * 1000 for s in ok)
    uncorrected = sorted((s.done - s.sent) * 1000 for s in ok)
    lag = sorted((s.queued - s.due) * 1000 for s in samples)
    errors = {}
    for s in samples:
        if s.error:
            errors[s.error] = errors.get(s.error, 0) + 1
    refused = sum(1 for s in ok if s.status >= 400)
    if refused:
        errors["status"] = refused
    if unsent:
        errors["unsent"] = unsent
    if connect_errors:
        errors["connect"] = len(connect_errors)
    statuses = {}
    for s in ok:
        statuses[str(s.status)] = statuses.get(str(s.status), 0) + 1
    span = max((s.done for s in samples), default=0) - min((s.due for s in samples), default=0)
    generator_lag_p99 = percentile(lag, 0.99)

    def spread(values):
        return {
            "p50_ms": percentile(values, 0.50),
            "p99_ms": percentile(values, 0.99),
            "p999_ms": percentile(values, 0.999),
            "max_ms": values[-1] if values else 0.0,
        }

    return {
        "offered_rps": rate,
        "duration_s": duration_s,
        "requests": len(samples) + unsent,
        "answered": len(ok),
        "answered_rps": len(ok) / span if span > 0 else 0.0,
        "statuses": statuses,
        "errors": errors,
        "connections": connections_open,
        "corrected": spread(corrected),
        "uncorrected": spread(uncorrected),
        "generator_lag_p99_ms": generator_lag_p99,
        "generator_kept_up": generator_lag_p99 <= LAG_TOLERANCE_MS,
    }


def parse(output):
    """The result line `main` prints, as a dict."""
    line = next((line for line in output.splitlines() if line.startswith(MARKER)), None)
    if line is None:
        raise ValueError(f"the open-loop generator printed no result line:\n{output[-2000:]}")
    return json.loads(line[len(MARKER) :])


def run(url, rate, duration_s, connections, mix=()):
    """Run the generator in a process of its own (so the driver's work never delays its
    schedule) and return its result."""
    command = [sys.executable, "-m", "benchmark.openloop", url, "--rate", f"{rate:.1f}"]
    command += ["--duration", str(duration_s), "--connections", str(connections)]
    if mix:
        command += ["--mix", *mix]
    # Filling the pool, the schedule, then the last requests' timeout and the queue's grace.
    limit = CONNECT_TIMEOUT_S + duration_s + REQUEST_TIMEOUT_S + max(1.0, duration_s * 0.5) + 30
    # From the folder that holds this package, wherever that is.
    package_parent = Path(__file__).resolve().parents[1]
    result = subprocess.run(command, capture_output=True, text=True, timeout=limit, check=False, cwd=package_parent)
    if result.returncode != 0:
        raise RuntimeError(f"open-loop generator failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return parse(result.stdout)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmark.openloop", description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True, help="requests per second offered")
    parser.add_argument("--duration", type=float, required=True, help="seconds of schedule")
    parser.add_argument("--connections", type=int, required=True, help="connections opened beforehand")
    parser.add_argument("--mix", nargs="*", default=(), help="weight:path pairs, drawn by weight")
    parser.add_argument("--timeout", type=float, default=REQUEST_TIMEOUT_S, help="seconds before a request is an error")
    args = parser.parse_args(argv)
    started = time.monotonic()
    samples, connect_errors, unsent, opened = asyncio.run(
        attack(args.url, args.rate, args.duration, args.connections, tuple(args.mix), args.timeout)
    )
    result = summarize(samples, args.rate, args.duration, opened, connect_errors, unsent)
    result["wall_s"] = round(time.monotonic() - started, 3)
    print(MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
