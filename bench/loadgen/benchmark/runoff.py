"""The mixed workload's runoff: the default and its closest rivals, again, in paired rounds.

One short run per server ranks them; a single run on a busy machine can be off by a fifth,
so the target compares the default with the best of the others measured in turn, round
after round, like the tunings (every candidate up at once, only the measured one busy).
"""

from . import tuning
from .plan import MIXED

# The tunings' mixed workload: (label, path, endpoint, clients).
WORKLOAD = next(workload for workload in tuning.WORKLOADS if workload[2] is MIXED)
CLIENTS = WORKLOAD[3]
# Rivals taken into the runoff beside the default: the best others of the single runs.
RIVALS = 2


def candidates(rows, servers):
    """The default server, then the RIVALS other Flask servers with the most requests/s in
    their single mixed run behind nginx, then every alternative server (plan.Server's
    `alternative`) not among them. The ASGI reference is not a Flask configuration."""
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
    return [default, *best, *(server for server in others[RIVALS:] if server.alternative)]


def run(containers, servers, rounds, duration, progress=None):
    """{"default": name, "rounds": {server name: [{rps, p99_ms, errors} per round]}}."""
    label = WORKLOAD[0]
    measured = tuning.compare(containers, servers, rounds, duration, (WORKLOAD,), progress)
    return {
        "default": servers[0].name,
        "rounds": {
            name: [{key: run[key] for key in ("rps", "p99_ms", "errors")} for run in workloads[label]]
            for name, workloads in measured.items()
        },
    }
