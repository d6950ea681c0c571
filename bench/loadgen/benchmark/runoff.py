"""The mixed workload's runoff: the default and its closest rivals, again, in paired rounds.

One short run per server ranks them; a single run on a busy machine can be off by a fifth,
so the target compares the default with the best of the others measured in turn, round
after round, like the tunings (every candidate up at once, only the measured one busy).

Only gunicorn counts requests for Prometheus (the metrics are exported from its hooks), so
the default also runs with APP_METRICS=off: the target weighs that against the others, which
count none, and states the default with its metrics beside it.
"""

from . import tuning
from .plan import MIXED, metrics_off

# The tunings' mixed workload: (label, path, endpoint, clients).
WORKLOAD = next(workload for workload in tuning.WORKLOADS if workload[2] is MIXED)
CLIENTS = WORKLOAD[3]
# Rivals taken into the runoff beside the default: the best others of the single runs.
RIVALS = 2


def candidates(rows, servers):
    """The default server, the same with APP_METRICS=off, then the RIVALS other Flask servers
    with the most requests/s in their single mixed run behind nginx, then every alternative
    server (plan.Server's `alternative`) not among them. The ASGI reference is not a Flask
    configuration."""
    rps = {
        row["server"]: row["rps"]
        for row in rows
        if row["endpoint"] == MIXED.name and row["via"] == "nginx" and row["clients"] == CLIENTS
    }
    default = next((server for server in servers if server.default and server.name in rps), None)
    if default is None:
        return []
    others = [server for server in servers if not server.default and server.family != "uvicorn" and server.name in rps]
    others.sort(key=lambda server: rps[server.name], reverse=True)
    best = others[:RIVALS]
    alternatives = (server for server in others[RIVALS:] if server.alternative)
    return [default, metrics_off(default), *best, *alternatives]


def run(containers, servers, rounds, duration, progress=None):
    """{"default": name, "metrics_off": the name of the default with APP_METRICS=off (or None),
    "counts_metrics": {server name: bool}, "rounds": {server name: [{rps, p99_ms, errors} per
    round]}}."""
    label = WORKLOAD[0]
    alike = metrics_off(servers[0]).name
    # The closed loop alone: the tunings' open-loop columns are not the runoff's.
    measured, _ = tuning.compare(containers, servers, rounds, duration, (WORKLOAD,), open_loop=(), progress=progress)
    return {
        "default": servers[0].name,
        "metrics_off": alike if any(server.name == alike for server in servers) else None,
        "counts_metrics": {server.name: server.counts_metrics for server in servers},
        "rounds": {
            name: [{key: run[key] for key in ("rps", "p99_ms", "errors")} for run in workloads[label]]
            for name, workloads in measured.items()
        },
    }
