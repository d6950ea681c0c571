"""An open-loop load generator: requests leave on a fixed schedule, whatever the server does.

wrk (and ab) are closed loops: each connection sends its next request only once the last
one is answered, so a server that stalls is sent less, and the requests that would have
been sent meanwhile never appear in a percentile (coordinated omission). Here the request
i is due at start + i / rate. It goes out on the first idle connection of a pool opened
beforehand; when none is idle it waits for one. Its latency is counted from the moment it
was due, not from the moment it left, which is the correction wrk2 makes: a stall then
shows in every request it delayed. The time from leaving to its answer (what a closed loop
reports) is kept beside it.

So that a latency can be told to be the stack's and not the generator's, the result also
says how the generator fared:

- schedule lag (queued - due): how late its scheduler put each request up;
- send lag (sent - due): that plus the time until a connection wrote it;
- how many requests found every connection busy when they were put up
  (`connections_short`): past SHORT_SHARE_TOLERATED of them, the server's queue had
  filled the pool, and those requests waited in the generator (`connections_sufficed`
  false);
- `generator_kept_up`: the schedule lag within LAG_TOLERANCE_MS at p99 and, while the
  pool sufficed, the send lag too (a busy event loop delays the write after the put as
  much as the put itself): beyond it the generator was short of CPU;
- the CPU time it used over the schedule, and how many cores that is;
- p99, offered, answered and errors per window of due time, so a stall shows when it was.

One event loop in one process has a ceiling of its own; `--processes K` spreads the one
schedule over K worker processes (request j to worker j % K), each with its share of the
connections, all starting at one instant of the system-wide monotonic clock once every
worker's pool is open, and merges their samples as if one process had sent them all.

No tool that does this reaches our machines (wrk2, vegeta and oha come from registries we
cannot reach), hence this one, in the standard library only; where uvloop is installed, its
event loop (written in C) drives the requests instead of asyncio's. It speaks just enough
HTTP/1.1 for the benchmark's own endpoints: GET, keep-alive, Content-Length bodies.

    python -m benchmark.openloop URL --rate R --duration S --connections C [--processes K] [--mix 50:/a ...]

prints one line, `BENCH_RESULT {json}`, as wrk/report.lua does for wrk.
"""

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import resource
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .cpu import machine_busy_now_s

MARKER = "BENCH_RESULT "
# A worker's lines to its parent: its pool is open; then its samples.
READY_MARKER = "BENCH_READY"
SAMPLES_MARKER = "BENCH_SAMPLES "
REQUEST_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 10.0
# Connections opened at once while the pool fills: a thousand SYNs together would overflow
# a server's accept queue before the run starts.
CONNECTING_AT_ONCE = 64
# The share of requests that may find every connection busy in a run whose pool sufficed:
# a late wake-up puts several up at once, which a pool just big enough meets a moment short.
SHORT_SHARE_TOLERATED = 0.01
# Later than this behind its schedule, the generator itself was the bottleneck.
LAG_TOLERANCE_MS = 10.0
# Short enough that a stall of a fraction of a second stands out in its own window.
WINDOW_S = 0.25
# Room, beyond the run's own times, for interpreters to start and samples to travel.
SLACK_S = 30.0
# The workers' shared start is this far after the last one is ready, so that every one of
# them has read it before the first request is due.
START_MARGIN_S = 0.25
# The folder that holds this package, from which a process of the generator starts.
PACKAGE_PARENT = Path(__file__).resolve().parents[1]


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
    """One request; times in seconds from the start of the schedule."""

    due: float  # when the schedule said it should leave
    queued: float  # when the generator put it up for a connection
    sent: float  # when a connection wrote it
    done: float  # when its whole answer was read
    status: int  # 0 when there was no answer
    error: str = ""


@dataclass
class Run:
    """What one or more processes of the generator measured over one schedule."""

    samples: list
    unsent: list = field(default_factory=list)  # due times of requests that never left
    connect_errors: list = field(default_factory=list)
    connections: int = 0  # opened
    cpu_s: float = 0.0  # the generator's CPU time from the start to its end
    # CPU seconds the whole machine was busy over the same span (generator, stack, anything).
    machine_busy_s: float = 0.0
    end_s: float = 0.0  # when the last answer came (or the wait for it ended)
    processes: int = 1
    event_loop: str = "asyncio"
    connections_short: int = 0  # requests put up while every connection was busy


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


def _cpu_s():
    """CPU seconds this process has used, in user and kernel mode."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _grace_s(duration_s):
    """How long the requests still queued at the schedule's end may wait for a connection."""
    return max(1.0, duration_s * 0.5)


def _loop_name():
    return "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"


def pause_s(until_due_s):
    """How long to sleep until a request is due: whole milliseconds, rounded up. uvloop's
    timers count in them and make a shorter sleep none, which would spin the loop, and its
    CPU, until the request is due."""
    return math.ceil(max(0.0, until_due_s) * 1000) / 1000


async def _drive(pool, offsets, paths, start, timeout_s, grace_s):
    """Put each request up when it is due (`offsets` from the instant `start` of
    time.monotonic) for the pool's first idle connection; its samples, once every request
    sent is answered or has timed out, and when that was."""
    due_queue = asyncio.Queue()
    samples = []
    # Connections waiting for a request, and requests put up when none was.
    idle = 0
    short = 0

    def now():
        return time.monotonic() - start

    async def take():
        nonlocal idle
        idle += 1
        try:
            return await due_queue.get()
        finally:
            idle -= 1

    async def serve(connection):
        while (item := await take()) is not None:
            due, queued, path = item
            sent = now()
            status, error = 0, ""
            try:
                status = await asyncio.wait_for(connection.get(path), timeout_s)
            # TimeoutError first: it is an OSError too.
            except TimeoutError:
                error = "timeout"
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                error = type(exc).__name__
            if error:
                connection.close()
            samples.append(Sample(due, queued, sent, now(), status, error))

    servers = [asyncio.create_task(serve(c)) for c in pool]
    next_index = 0
    while next_index < len(offsets):
        moment = now()
        # Everything already due goes out now, so a late wake-up sends a batch, not less.
        while next_index < len(offsets) and offsets[next_index] <= moment:
            due_queue.put_nowait((offsets[next_index], moment, paths[next_index]))
            next_index += 1
            # A waiting connection takes its request off the queue only when it next runs:
            # more requests queued than connections waiting means this one has none.
            if due_queue.qsize() > idle:
                short += 1
        if next_index < len(offsets):
            await asyncio.sleep(pause_s(offsets[next_index] - now()))
    for _ in servers:
        due_queue.put_nowait(None)
    # Every request already sent gets its timeout; the rest of the queue after that is lost.
    _, pending = await asyncio.wait(servers, timeout=timeout_s + grace_s)
    for task in pending:
        task.cancel()
    return samples, now(), short


async def attack(url, rate, duration_s, connections, mix=(), timeout_s=REQUEST_TIMEOUT_S, share=(0, 1), start=None):
    """Send requests to `url` (or to its host, by `mix`) at `rate` per second for
    `duration_s` over `connections` connections opened beforehand, and return the Run.

    `share` (index, count) takes only the requests j with j % count == index of the
    schedule; `start`, when given, is awaited once the pool is open and returns the
    time.monotonic instant the schedule starts at (by default: at once)."""
    target = urlsplit(url)
    host, port = target.hostname, target.port or 80
    index, count = share
    offsets = schedule(rate, duration_s)
    paths = paths_for(len(offsets), mix) if mix else [target.path or "/"] * len(offsets)
    offsets, paths = offsets[index::count], paths[index::count]
    pool, connect_errors = await _fill_pool(host, port, connections)
    if not pool:
        raise RuntimeError(f"no connection to {host}:{port} could be opened: {connect_errors[:3]}")
    starts_at = await start() if start else time.monotonic()
    cpu_before, machine_before = _cpu_s(), machine_busy_now_s()
    samples, end_s, short = await _drive(pool, offsets, paths, starts_at, timeout_s, _grace_s(duration_s))
    cpu_s, machine_s = _cpu_s() - cpu_before, machine_busy_now_s() - machine_before
    for connection in pool:
        connection.close()
    # Due times are the schedule's own floats, so a request sent is found by its due time.
    unsent = sorted(set(offsets) - {s.due for s in samples})
    return Run(samples, unsent, connect_errors, len(pool), cpu_s, machine_s, end_s, 1, _loop_name(), short)


def _spread(values):
    return {
        "p50_ms": percentile(values, 0.50),
        "p99_ms": percentile(values, 0.99),
        "p999_ms": percentile(values, 0.999),
        "max_ms": values[-1] if values else 0.0,
    }


def _lag(values):
    return {"p50_ms": percentile(values, 0.50), "p99_ms": percentile(values, 0.99), "max_ms": max(values, default=0.0)}


def _answered(sample):
    return bool(sample.status) and not sample.error


def _window_of(due):
    # The tolerance keeps a due time of exactly k windows in window k despite the division.
    return int(due / WINDOW_S + 1e-9)


def windows(samples, unsent=()):
    """Per WINDOW_S of due time from the start: the requests due in it, those answered, those
    that failed (no answer, an error status, or never sent), and the corrected p99 of those
    answered (None when none was)."""
    dues = [s.due for s in samples] + list(unsent)
    if not dues:
        return []
    size = _window_of(max(dues)) + 1
    offered, answered, errors = [0] * size, [0] * size, [0] * size
    latencies = [[] for _ in range(size)]
    for s in samples:
        window = _window_of(s.due)
        offered[window] += 1
        if _answered(s):
            answered[window] += 1
            latencies[window].append((s.done - s.due) * 1000)
        if s.error or s.status >= 400:
            errors[window] += 1
    for due in unsent:
        offered[_window_of(due)] += 1
        errors[_window_of(due)] += 1
    return [
        {
            "t_s": round(window * WINDOW_S, 3),
            "offered": offered[window],
            "answered": answered[window],
            "errors": errors[window],
            "p99_ms": round(percentile(sorted(latencies[window]), 0.99), 1) if latencies[window] else None,
        }
        for window in range(size)
    ]


def _errors(run, answered):
    errors = {}
    for s in run.samples:
        if s.error:
            errors[s.error] = errors.get(s.error, 0) + 1
    refused = sum(1 for s in answered if s.status >= 400)
    if refused:
        errors["status"] = refused
    if run.unsent:
        errors["unsent"] = len(run.unsent)
    if run.connect_errors:
        errors["connect"] = len(run.connect_errors)
    return errors


def kept_up(schedule_lag, send_lag, connections_sufficed):
    """Whether the generator sent on time: its scheduler, and, while no request waited for a
    connection, its event loop between putting a request up and writing it."""
    if schedule_lag["p99_ms"] > LAG_TOLERANCE_MS:
        return False
    return not connections_sufficed or send_lag["p99_ms"] <= LAG_TOLERANCE_MS


def summarize(run, rate, duration_s):
    """The run as the report reads it: latencies in ms, corrected (from when each request was
    due) and uncorrected (from when it left), errors by kind, the generator's lateness, CPU
    and processes, and the same per window of due time."""
    samples = run.samples
    ok = [s for s in samples if _answered(s)]
    statuses = {}
    for s in ok:
        statuses[str(s.status)] = statuses.get(str(s.status), 0) + 1
    span = max((s.done for s in samples), default=0) - min((s.due for s in samples), default=0)
    schedule_lag = _lag(sorted((s.queued - s.due) * 1000 for s in samples))
    send_lag = _lag(sorted((s.sent - s.due) * 1000 for s in samples))
    sufficed = not run.unsent and run.connections_short <= SHORT_SHARE_TOLERATED * len(samples)
    return {
        "offered_rps": rate,
        "duration_s": duration_s,
        "requests": len(samples) + len(run.unsent),
        "answered": len(ok),
        "answered_rps": len(ok) / span if span > 0 else 0.0,
        "statuses": statuses,
        "errors": _errors(run, ok),
        "connections": run.connections,
        "corrected": _spread(sorted((s.done - s.due) * 1000 for s in ok)),
        "uncorrected": _spread(sorted((s.done - s.sent) * 1000 for s in ok)),
        "schedule_lag": schedule_lag,
        "send_lag": send_lag,
        # The key the report and the targets read: the schedule lag's p99.
        "generator_lag_p99_ms": schedule_lag["p99_ms"],
        "generator_kept_up": kept_up(schedule_lag, send_lag, sufficed),
        "connections_short": run.connections_short,
        # Requests that waited for a connection (or never got one) waited in the generator.
        "connections_sufficed": sufficed,
        "generator_cpu_s": round(run.cpu_s, 3),
        "generator_cores": round(run.cpu_s / run.end_s, 3) if run.end_s > 0 else 0.0,
        # How near the cores were to full: past a point, the stack's queue is the CPU's.
        "machine_busy_cores": round(run.machine_busy_s / run.end_s, 2) if run.end_s > 0 else 0.0,
        "machine_cores": os.cpu_count(),
        "processes": run.processes,
        "event_loop": run.event_loop,
        "windows": windows(samples, run.unsent),
    }


# A worker's samples travel to its parent as JSON columns; times to the microsecond but the
# due times exact, as they identify the requests.
_TIMES = ("queued", "sent", "done")


# The rest of a Run, beside its samples' columns.
_RUN_FIELDS = (
    "unsent",
    "connect_errors",
    "connections",
    "cpu_s",
    "machine_busy_s",
    "end_s",
    "event_loop",
    "connections_short",
)


def encode_run(run):
    """One worker's Run as one compact line of JSON."""
    columns = {"due": [s.due for s in run.samples]}
    for name in _TIMES:
        columns[name] = [round(getattr(s, name), 6) for s in run.samples]
    columns["status"] = [s.status for s in run.samples]
    columns["error"] = [s.error for s in run.samples]
    rest = {k: getattr(run, k) for k in _RUN_FIELDS}
    return json.dumps(columns | rest, separators=(",", ":"))


def decode_run(text):
    """The Run a worker's line encodes."""
    data = json.loads(text)
    columns = zip(data["due"], *(data[name] for name in _TIMES), data["status"], data["error"], strict=True)
    samples = [Sample(*values) for values in columns]
    rest = {k: data[k] for k in _RUN_FIELDS}
    return Run(samples, **rest)


def merge(runs):
    """The workers' Runs as one: every sample, the CPU they used together, the last end."""
    return Run(
        samples=sorted((s for run in runs for s in run.samples), key=lambda s: s.due),
        unsent=sorted(due for run in runs for due in run.unsent),
        connect_errors=[error for run in runs for error in run.connect_errors],
        connections=sum(run.connections for run in runs),
        cpu_s=sum(run.cpu_s for run in runs),
        # Each worker saw the same machine over about the same span: the longest look.
        machine_busy_s=max(run.machine_busy_s for run in runs),
        end_s=max(run.end_s for run in runs),
        processes=len(runs),
        event_loop=runs[0].event_loop,
        connections_short=sum(run.connections_short for run in runs),
    )


def _ready_within_s():
    """How long a worker may take to start and open its pool."""
    return CONNECT_TIMEOUT_S + SLACK_S


def _run_within_s(duration_s, timeout_s):
    """How long a run may take once the pools are open: the schedule, then the last
    requests' timeout and the queue's grace."""
    return START_MARGIN_S + duration_s + timeout_s + _grace_s(duration_s) + SLACK_S


def _time_limit_s(duration_s, timeout_s):
    """The longest the generator's process may take: more than its own limits, so that it is
    the one to say which it ran out of."""
    return _ready_within_s() + _run_within_s(duration_s, timeout_s) + SLACK_S


def connection_shares(connections, processes):
    """The connections each of `processes` workers opens: as even as can be."""
    if not 1 <= processes <= connections:
        raise ValueError(f"between 1 and {connections} processes (one connection each at least), not {processes}")
    return [connections // processes + (index < connections % processes) for index in range(processes)]


def worker_command(url, rate, duration_s, connections, mix, timeout_s, index, processes):
    command = [sys.executable, "-m", "benchmark.openloop", url, "--rate", repr(float(rate))]
    command += ["--duration", repr(float(duration_s)), "--connections", str(connections)]
    command += ["--timeout", repr(float(timeout_s)), "--worker", f"{index}/{processes}"]
    if mix:
        command += ["--mix", *mix]
    return command


async def _await_ready(index, worker):
    line = await worker.stdout.readline()
    if line.decode().strip() != READY_MARKER:
        await worker.wait()
        raise RuntimeError(f"worker {index} ended ({worker.returncode}) before its connections were open: {line!r}")


async def _collect(index, worker):
    output = (await worker.stdout.read()).decode()
    await worker.wait()
    line = next((line for line in output.splitlines() if line.startswith(SAMPLES_MARKER)), None)
    if worker.returncode != 0 or line is None:
        raise RuntimeError(f"worker {index} failed ({worker.returncode}): {output[-500:]!r}")
    return decode_run(line[len(SAMPLES_MARKER) :])


async def _end(workers):
    """Kills whichever worker is still running, and reaps them all."""
    for worker in workers:
        if worker.returncode is None:
            worker.kill()
        await worker.wait()
        worker.stdin.close()


async def attack_in_processes(
    url, rate, duration_s, connections, mix=(), timeout_s=REQUEST_TIMEOUT_S, processes=2, ready_within_s=None
):
    """The same as `attack`, from `processes` worker processes that share the schedule and
    the connections; their Runs merged. A worker that fails, or the wait for one that runs
    out, ends them all."""
    shares = connection_shares(connections, processes)
    workers = []
    try:
        for index, share in enumerate(shares):
            command = worker_command(url, rate, duration_s, share, mix, timeout_s, index, processes)
            # stderr is this process's own, so that a worker's traceback reaches whoever reads it.
            worker = await asyncio.create_subprocess_exec(
                *command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=PACKAGE_PARENT
            )
            workers.append(worker)
        await asyncio.wait_for(
            asyncio.gather(*(_await_ready(index, worker) for index, worker in enumerate(workers))),
            ready_within_s or _ready_within_s(),
        )
        starts_at = time.monotonic() + START_MARGIN_S
        for worker in workers:
            worker.stdin.write(f"{starts_at!r}\n".encode())
        runs = await asyncio.wait_for(
            asyncio.gather(*(_collect(index, worker) for index, worker in enumerate(workers))),
            _run_within_s(duration_s, timeout_s),
        )
    finally:
        await _end(workers)
    return merge(runs)


def _read_start(fd, within_s):
    """The start instant the parent writes on `fd` once every worker is ready."""
    line, deadline = b"", time.monotonic() + within_s
    while not line.endswith(b"\n"):
        readable, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not readable:
            raise TimeoutError(f"no start from the parent within {within_s:.0f} s")
        chunk = os.read(fd, 64)
        if not chunk:
            raise EOFError("the parent closed the pipe before the start")
        line += chunk
    return float(line)


def _exit_when_closed(fd):
    """The parent keeps the pipe open until this worker has ended: once it closes, the
    parent is gone, and a worker left on its own would load the server for no one."""
    # The descriptor, not sys.stdin: a thread blocked in a buffered read holds its lock, which
    # the interpreter's shutdown would then wait for.
    while os.read(fd, 4096):
        pass
    os._exit(1)


async def _start_from_parent():
    print(READY_MARKER, flush=True)
    stdin = sys.stdin.fileno()
    # Longer than the parent waits for the slowest worker's pool: the parent is the one to
    # give up, and says why.
    starts_at = await asyncio.to_thread(_read_start, stdin, _ready_within_s() + SLACK_S)
    threading.Thread(target=_exit_when_closed, args=(stdin,), daemon=True).start()
    return starts_at


def event_loop_factory():
    """uvloop's loop when it is installed, for its lower cost per request; asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def parse(output):
    """The result line `main` prints, as a dict."""
    line = next((line for line in output.splitlines() if line.startswith(MARKER)), None)
    if line is None:
        raise ValueError(f"the open-loop generator printed no result line:\n{output[-2000:]}")
    return json.loads(line[len(MARKER) :])


def run(url, rate, duration_s, connections, mix=(), processes=1):
    """Run the generator in a process of its own (so the driver's work never delays its
    schedule), with `processes` workers of its own when more than one, and return its result."""
    command = [sys.executable, "-m", "benchmark.openloop", url, "--rate", f"{rate:.1f}"]
    command += ["--duration", str(duration_s), "--connections", str(connections), "--processes", str(processes)]
    if mix:
        command += ["--mix", *mix]
    limit = _time_limit_s(duration_s, REQUEST_TIMEOUT_S)
    # A session of its own, so that a generator that overruns goes with its workers.
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=PACKAGE_PARENT, start_new_session=True
    ) as generator:
        try:
            stdout, stderr = generator.communicate(timeout=limit)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(generator.pid, signal.SIGKILL)
            raise
    if generator.returncode != 0:
        raise RuntimeError(f"open-loop generator failed ({generator.returncode}): {stderr.strip()[-500:]}")
    return parse(stdout)


def _share(text):
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise argparse.ArgumentTypeError(f"expected index/count with index < count, got {text!r}")
    return int(index), int(count)


def _arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmark.openloop", description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True, help="requests per second offered")
    parser.add_argument("--duration", type=float, required=True, help="seconds of schedule")
    parser.add_argument("--connections", type=int, required=True, help="connections opened beforehand")
    parser.add_argument("--mix", nargs="*", default=(), help="weight:path pairs, drawn by weight")
    parser.add_argument("--timeout", type=float, default=REQUEST_TIMEOUT_S, help="seconds before a request is an error")
    parser.add_argument("--processes", type=int, default=1, help="worker processes sharing the schedule")
    parser.add_argument("--worker", type=_share, help="index/count: run as that worker of a parent (internal)")
    args = parser.parse_args(argv)
    if args.processes < 1:
        parser.error("--processes takes a count of at least 1")
    return args


async def _measure(args):
    """The Run the arguments ask for: a worker's share of the schedule, the whole schedule
    from workers of this process, or from this process alone."""
    common = (args.url, args.rate, args.duration, args.connections, tuple(args.mix), args.timeout)
    if args.worker:
        return await attack(*common, share=args.worker, start=_start_from_parent)
    if args.processes > 1:
        return await attack_in_processes(*common, processes=args.processes)
    return await attack(*common)


def main(argv=None):
    args = _arguments(argv)
    started = time.monotonic()
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        measured = runner.run(_measure(args))
    if args.worker:
        print(SAMPLES_MARKER + encode_run(measured), flush=True)
        return 0
    result = summarize(measured, args.rate, args.duration)
    result["wall_s"] = round(time.monotonic() - started, 3)
    print(MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
