#!/usr/bin/env python3
"""Time from `make scale N=k` to the new replicas taking traffic, for k = 2, 4 and 8.

Runs on the host, beside the load generator's container: it drives the stack's own Makefile
against a compose project of its own (compose.yaml, the images `make bench` has just built,
per-client limits off since every request comes from here). For each k it scales to one
replica, then starts `make scale N=k` and asks nginx /api/whoami 20 ms apart,
noting when `make` returned and when each new replica first answered. Standard library only.

    python3 bench/scale_timing.py OUT.json [k ...]
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "flask-stack-bench-scale"
COUNTS = (2, 4, 8)
POLL_S = 0.02
DEADLINE_S = 300


def free_loopback_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ask(url):
    """The replica that answered, or None for anything but a 200 (counted by the caller)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return json.load(answer)["hostname"]
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return None


def first_answers(events, known):
    """From (seconds, hostname) answers in time order, when each replica not in `known` first
    answered, by hostname."""
    first = {}
    for at, hostname in events:
        if hostname and hostname not in known and hostname not in first:
            first[hostname] = at
    return first


def summarize(count, events, make_returned_s, known, failed):
    """One row of the table: when make returned, when the first and the last new replica took
    a request, how many of the count - 1 new replicas did, and the requests that failed."""
    first = first_answers(events, known)
    times = sorted(first.values())
    return {
        "replicas": count,
        "new_replicas": count - len(known),
        "answered": len(first),
        "make_returned_s": round(make_returned_s, 2) if make_returned_s is not None else None,
        "first_new_answered_s": round(times[0], 2) if times else None,
        "all_answered_s": round(times[-1], 2) if len(first) == count - len(known) else None,
        "failed_requests": failed,
        "requests": len(events),
    }


class Stack:
    def __init__(self):
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}/api/whoami"
        self.env = {**os.environ, "HTTP_BIND": "127.0.0.1", "HTTP_PORT": str(self.port), "NGINX_LIMITS": "off"}
        self.compose = ["docker", "compose", "-p", PROJECT, "-f", "compose.yaml"]

    def run(self, *args, timeout=600):
        subprocess.run(args, cwd=ROOT, env=self.env, check=True, capture_output=True, text=True, timeout=timeout)

    def make_scale(self, count):
        return [
            "make",
            "--no-print-directory",
            "scale",
            f"N={count}",
            f"COMPOSE=docker compose -p {PROJECT}",
            "COMPOSE_FILES=compose.yaml",
        ]

    def up(self):
        self.run(*self.compose, "up", "--no-build", "--detach", "--wait", "--wait-timeout", "180")

    def down(self):
        subprocess.run(
            [*self.compose, "down", "--volumes", "--timeout", "40"], cwd=ROOT, env=self.env, capture_output=True
        )

    def replicas(self):
        out = subprocess.run(
            [*self.compose, "ps", "--quiet", "web"], cwd=ROOT, env=self.env, check=True, capture_output=True, text=True
        ).stdout
        return {line[:12] for line in out.split()}

    def settle_on(self, known, quiet_answers=20):
        """Until `quiet_answers` answers in a row come quickly from the known replicas: nginx has
        forgotten the ones a scale down stopped."""
        in_a_row, deadline = 0, time.monotonic() + 60
        while in_a_row < quiet_answers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not settle on replicas {known}")
            started = time.monotonic()
            hostname = ask(self.url)
            quick = time.monotonic() - started < 0.5
            in_a_row = in_a_row + 1 if hostname in known and quick else 0

    def time_scale(self, count):
        self.run(*self.make_scale(1))
        known = self.replicas()
        self.settle_on(known)
        events, failed, make_returned_s = [], 0, None
        started = time.monotonic()
        # A session of its own, so that giving up stops make's docker compose too.
        make = subprocess.Popen(
            self.make_scale(count), cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, start_new_session=True
        )
        try:
            while time.monotonic() - started < DEADLINE_S:
                hostname = ask(self.url)
                at = time.monotonic() - started
                failed += hostname is None
                events.append((at, hostname))
                if make_returned_s is None and make.poll() is not None:
                    if make.returncode != 0:
                        raise RuntimeError(f"make scale N={count} failed ({make.returncode})")
                    make_returned_s = at
                if make_returned_s is not None and len(first_answers(events, known)) == count - len(known):
                    break
                time.sleep(POLL_S)
        finally:
            if make.poll() is None:
                os.killpg(make.pid, signal.SIGKILL)
                make.wait()
        return summarize(count, events, make_returned_s, known, failed)


def main(argv):
    out = Path(argv[1])
    counts = tuple(int(k) for k in argv[2:]) or COUNTS
    stack = Stack()
    rows = []
    try:
        print(f"scale timing: starting a stack of its own ({PROJECT}) on 127.0.0.1:{stack.port}", flush=True)
        stack.up()
        for count in counts:
            row = stack.time_scale(count)
            rows.append(row)
            print(
                f"scale timing: 1 -> {count}: make returned after {row['make_returned_s']} s, "
                f"{row['answered']} of {row['new_replicas']} new replicas answering after {row['all_answered_s']} s",
                flush=True,
            )
    finally:
        stack.down()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"scale": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
