"""One PNG per endpoint: requests/s and p99 latency by configuration, direct and behind nginx;
and one per open-loop sweep: p50, p99 and p99.9 against the offered rate, server by server."""

import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from .report import pick
from .sweep import sweep_file

COLORS = {"direct": "#4c72b0", "nginx": "#dd8452"}


def plot_endpoint(rows, endpoint, title, path):
    these = [row for row in rows if row["endpoint"] == endpoint]
    servers = list(dict.fromkeys(row["server"] for row in these))
    clients = sorted({row["clients"] for row in these})
    vias = [via for via in COLORS if any(row["via"] == via for row in these)]
    height = max(3.0, 0.32 * len(servers) * len(vias) + 1.5)
    figure, axes = plt.subplots(2, len(clients), figsize=(4.2 * len(clients) + 2.5, 2 * height), squeeze=False)
    bar = 0.8 / len(vias)
    for column, count in enumerate(clients):
        for line, (metric, label) in enumerate((("rps", "requests/s"), ("p99_ms", "p99 latency (ms)"))):
            axis = axes[line][column]
            for offset, via in enumerate(vias):
                values = []
                for server in servers:
                    row = pick(these, server, via, count)
                    values.append(row[metric] if row else 0)
                positions = [i + offset * bar for i in range(len(servers))]
                axis.barh(positions, values, height=bar, color=COLORS[via], label=via)
                if metric == "rps":
                    for position, server in zip(positions, servers, strict=True):
                        row = pick(these, server, via, count)
                        if row and row.get("bound_rps"):
                            tick = [position - bar / 2, position + bar / 2]
                            axis.plot([row["bound_rps"]] * 2, tick, color="black", linewidth=1.5)
            axis.set_yticks([i + bar * (len(vias) - 1) / 2 for i in range(len(servers))])
            axis.set_yticklabels(servers if column == 0 else [], fontsize=8)
            axis.invert_yaxis()
            axis.set_title(f"{count} clients: {label}", fontsize=9)
            axis.grid(axis="x", alpha=0.3)
            axis.tick_params(axis="x", labelsize=8)
    axes[0][0].legend(fontsize=8, loc="lower right")
    # Wrapped to the figure's width, so a one-column figure shows all of it.
    figure.suptitle(textwrap.fill(f"{title} (black tick: theoretical bound)", 25 * len(clients) + 30), fontsize=11)
    # The top strip is left to the title, which would otherwise cover the first panels' titles.
    figure.tight_layout(rect=(0, 0, 1, 0.94))
    # "tight" grows the canvas to whatever the long server names and the title need.
    figure.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(figure)


def plot_all(rows, titles, folder):
    written = []
    for endpoint, title in titles.items():
        if any(row["endpoint"] == endpoint for row in rows):
            path = folder / f"{endpoint}.png"
            plot_endpoint(rows, endpoint, title.replace("`", ""), path)
            written.append(path)
    return written


PERCENTILES = (("p50_ms", "p50", ":"), ("p99_ms", "p99", "-"), ("p999_ms", "p99.9", "--"))


def plot_sweep(points, workload, ceiling, path):
    """The hockey stick: latency (log scale) against requests/s offered, a colour per server
    and a line style per percentile."""
    these = [point for point in points if point["workload"] == workload]
    servers = list(dict.fromkeys(point["server"] for point in these))
    figure, axis = plt.subplots(figsize=(9, 5.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, server in enumerate(servers):
        mine = sorted((p for p in these if p["server"] == server), key=lambda p: p["offered_rps"])
        for key, label, style in PERCENTILES:
            axis.plot(
                [p["offered_rps"] for p in mine],
                [max(p["corrected"][key], 0.1) for p in mine],
                linestyle=style,
                marker="o",
                markersize=3,
                color=colours[index % len(colours)],
                label=f"{server} {label}",
            )
    axis.set_yscale("log")
    axis.set_xlabel(f"requests/s offered (the default's closed-loop ceiling: {ceiling:,.0f})")
    axis.set_ylabel("latency from when each request was due (ms)")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=7, ncol=2)
    axis.set_title(f"Open loop, {workload}: latency against offered rate", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def plot_sweeps(sweeps, folder):
    written = []
    for workload, ceiling in (sweeps or {}).get("ceilings", {}).items():
        if any(point["workload"] == workload for point in sweeps["points"]):
            path = folder / sweep_file(workload)
            plot_sweep(sweeps["points"], workload, ceiling, path)
            written.append(path)
    return written


def plot_growth(growth, path):
    """growth.png: nginx's memory by idle connections held, and requests/s and CPU per request by replicas."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    idle = growth["idle_connections"]
    left.plot([row["held"] for row in idle], [row["during"]["usage"] / 2**20 for row in idle], marker="o")
    left.set_xlabel("idle keep-alive client connections held")
    left.set_ylabel("nginx memory (MiB)")
    left.set_title("nginx: memory by idle connections")
    left.set_ylim(bottom=0)
    replicas = growth["replicas"]
    counts = [row["replicas"] for row in replicas]
    right.bar([str(count) for count in counts], [row["rps"] for row in replicas], color="#4c72b0")
    right.set_xlabel("replicas")
    right.set_ylabel("requests/s (trivial, through nginx)")
    right.set_title(f"replicas on {growth['machine']['cores']} cores")
    cpu = right.twinx()
    cpu.plot(
        [str(count) for count in counts],
        [row["cpu_us"].get("machine", 0) for row in replicas],
        color="#dd8452",
        marker="o",
    )
    cpu.set_ylabel("CPU per request (µs)", color="#dd8452")
    cpu.set_ylim(bottom=0)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
