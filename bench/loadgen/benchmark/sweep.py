"""Latency against the offered rate (the "hockey stick"): the open-loop generator
(openloop.py) at fixed fractions of the default's ceiling, on each server behind nginx.

A closed loop's percentiles stop growing where the server saturates, because its clients
slow down with it; an open loop keeps offering the same rate, so the latency shows where
queueing starts and how steeply it grows. Every server is offered the same absolute rates,
fractions of the default configuration's ceiling on that workload, so the curves share one
axis: on sleep/100 its ceiling in the open loop itself (ceiling.py), on the mixed workload
its closed-loop one (wrk, the same connections). Each server swept also has its own
open-loop ceiling on sleep/100 searched, which a target compares.
"""

from . import ceiling
from .plan import MIXED, SLEEP

# The latency target's workload, whose rates are fractions of the default's open-loop ceiling.
SLEEP_WORKLOAD = "sleep/100, 1000 connections"
# (name, endpoint, open connections). sleep/100 over 1000 connections is the latency target's
# workload; the mixed one needs fewer: its requests are short, so fewer are in flight.
WORKLOADS = (
    (SLEEP_WORKLOAD, SLEEP, 1000),
    ("mixed, 256 connections", MIXED, 256),
)
# What each workload's rates are fractions of, as results.json and the report name it.
OPEN_LOOP = "open loop"
CLOSED_LOOP = "closed loop"
# The runs a ceiling search usually takes: a first guess within a factor of two of the
# ceiling brackets it in two, then come the narrowing ones.
SEARCH_RUNS = 2 + ceiling.NARROWING_RUNS


def servers(plan):
    """The default first (its ceilings set every server's rates), then, if the plan sweeps
    them, the servers a team would pick instead and the ASGI reference."""
    default = [server for server in plan.servers if server.default]
    if not plan.sweep_others:
        return default
    others = [s for s in plan.servers if not s.default and (s.alternative or s.family == "uvicorn")]
    return default + others


def offered_rates(ceiling_rps, fractions):
    """(fraction, requests/s) for each fraction of `ceiling_rps`."""
    if ceiling_rps <= 0:
        raise ValueError("no ceiling measured: nothing to offer a fraction of")
    return [(fraction, ceiling_rps * fraction) for fraction in fractions]


def yardstick(workload, open_loop_ceiling_rps):
    """What the workload's rates are fractions of: the default's open-loop ceiling on sleep/100
    when its search served a rate, else its closed-loop ceiling (wrk). The mixed workload keeps
    the closed-loop one, a single run: a search would cost each sweep as many open-loop runs
    again, for rates the servers only compare with one another."""
    if workload == SLEEP_WORKLOAD and open_loop_ceiling_rps:
        return OPEN_LOOP
    return CLOSED_LOOP


def points(plan):
    """The measurements a sweep makes beside its searches: the closed-loop ceilings, then every
    rate on every server."""
    if not plan.sweep_fractions:
        return 0
    closed_loop_ceilings = sum(1 for name, _, _ in WORKLOADS if name != SLEEP_WORKLOAD)
    return closed_loop_ceilings + len(servers(plan)) * len(WORKLOADS) * len(plan.sweep_fractions)


def searches(plan):
    """The open-loop ceiling searches a sweep makes: one per server swept, but the default's
    when the paired rounds found it already."""
    if not plan.sweep_fractions:
        return 0
    return len(servers(plan)) - (1 if plan.paired_rounds else 0)


def sweep_file(workload):
    """The plot's file name: sweep-sleep-100.png for "sleep/100, 1000 connections"."""
    return "sweep-" + workload.split(",")[0].replace("/", "-") + ".png"
