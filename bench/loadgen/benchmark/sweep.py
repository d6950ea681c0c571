"""Latency against the offered rate (the "hockey stick"): the open-loop generator
(openloop.py) at fixed fractions of the default's ceiling, on each server behind nginx.

A closed loop's percentiles stop growing where the server saturates, because its clients
slow down with it; an open loop keeps offering the same rate, so the latency shows where
queueing starts and how steeply it grows. Every server is offered the same absolute rates,
fractions of the default configuration's ceiling on that workload (wrk, closed loop, the
same connections), so the curves share one axis.
"""

from .plan import MIXED, SLEEP

# (name, endpoint, open connections). sleep/100 over 1000 connections is the latency target's
# workload; the mixed one needs fewer: its requests are short, so fewer are in flight.
WORKLOADS = (
    ("sleep/100, 1000 connections", SLEEP, 1000),
    ("mixed, 256 connections", MIXED, 256),
)


def servers(plan):
    """The default first (its ceilings set every server's rates), then, if the plan sweeps
    them, the servers a team would pick instead and the ASGI reference."""
    default = [server for server in plan.servers if server.default]
    if not plan.sweep_others:
        return default
    others = [s for s in plan.servers if not s.default and (s.alternative or s.family == "uvicorn")]
    return default + others


def offered_rates(ceiling, fractions):
    """(fraction, requests/s) for each fraction of `ceiling`."""
    if ceiling <= 0:
        raise ValueError("no ceiling measured: nothing to offer a fraction of")
    return [(fraction, ceiling * fraction) for fraction in fractions]


def points(plan):
    """The measurements a sweep makes: each workload's ceiling, then every rate on every server."""
    if not plan.sweep_fractions:
        return 0
    return len(WORKLOADS) + len(servers(plan)) * len(WORKLOADS) * len(plan.sweep_fractions)


def sweep_file(workload):
    """The plot's file name: sweep-sleep-100.png for "sleep/100, 1000 connections"."""
    return "sweep-" + workload.split(",")[0].replace("/", "-") + ".png"
