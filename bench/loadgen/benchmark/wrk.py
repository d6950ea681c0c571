"""Runs wrk, the load generator, and reads the JSON line wrk/report.lua prints."""

import json
import subprocess

SCRIPTS = "/srv/bench/wrk"
MARKER = "BENCH_RESULT "
# A request slower than this counts as a timeout error (wrk's default is 2s).
REQUEST_TIMEOUT_S = 5


def command(url, clients, duration, mix=()):
    """wrk's argument list: one thread per core, `clients` keep-alive connections."""
    script = f"{SCRIPTS}/mixed.lua" if mix else f"{SCRIPTS}/report.lua"
    args = [
        "wrk",
        "--threads",
        str(min(2, clients)),
        "--connections",
        str(clients),
        "--duration",
        f"{duration}s",
        "--timeout",
        f"{REQUEST_TIMEOUT_S}s",
        "--script",
        script,
        url,
    ]
    if mix:
        args += ["--", *mix]
    return args


def parse(output):
    """The measurement in wrk's output: requests/s of good answers, latency in ms, errors by kind."""
    line = next((line for line in output.splitlines() if line.startswith(MARKER)), None)
    if line is None:
        raise ValueError(f"wrk printed no result line:\n{output[-2000:]}")
    raw = json.loads(line[len(MARKER) :])
    seconds = raw["duration_us"] / 1e6
    good = raw["requests"] - raw["status_errors"]
    # Little's law: clients kept busy = answers per second x mean time to answer. Clients
    # that never got an answer during the run (queued, or on a stalled worker) are missing.
    answered = raw["requests"] / seconds * raw["mean_us"] / 1e6 if seconds else 0.0
    return {
        "requests": raw["requests"],
        "rps": good / seconds if seconds else 0.0,
        "clients_answered": round(answered, 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": {
            "connect": raw["connect_errors"],
            "read": raw["read_errors"],
            "write": raw["write_errors"],
            "status": raw["status_errors"],
            "timeout": raw["timeouts"],
        },
    }


def run(url, clients, duration, mix=()):
    """Load `url` for `duration` seconds; never waits much beyond that."""
    result = subprocess.run(
        command(url, clients, duration, mix),
        capture_output=True,
        text=True,
        timeout=duration + REQUEST_TIMEOUT_S + 10,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr.strip() or result.stdout[-500:]}")
    return parse(result.stdout)
