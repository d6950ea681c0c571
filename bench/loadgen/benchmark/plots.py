"""One PNG per endpoint: requests/s and p99 latency by configuration, direct and behind nginx;
one per open-loop sweep: p50, p99 and p99.9 against the offered rate, server by server; and
one of the paired rounds' open-loop runs: p99 per window of due time against time."""

import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from .openloop import WINDOW_S
from .report import OPEN_LOOP_PLOT, hyphenated, pick, window_series
from .sweep import CLOSED_LOOP, sweep_file

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


def plot_sweep(points, workload, ceiling, path, kind=CLOSED_LOOP):
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
    axis.set_xlabel(f"requests/s offered (the default's {hyphenated(kind)} ceiling: {ceiling:,.0f})")
    axis.set_ylabel("latency from when each request was due (ms)")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=7, ncol=2)
    axis.set_title(f"Open loop, {workload}: latency against offered rate", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def plot_sweeps(sweeps, folder):
    written = []
    kinds = (sweeps or {}).get("ceiling_kinds") or {}
    for workload, ceiling in (sweeps or {}).get("ceilings", {}).items():
        if any(point["workload"] == workload for point in sweeps["points"]):
            path = folder / sweep_file(workload)
            plot_sweep(sweeps["points"], workload, ceiling, path, kinds.get(workload, CLOSED_LOOP))
            written.append(path)
    return written


# A line style per fraction of the ceiling, a colour per round.
WINDOW_STYLES = ("-", "--", ":", "-.")


def plot_open_loop_windows(open_loop, folder):
    """open-loop-windows.png: the p99 of each window of due time against time, one line per
    paired round's run at each fraction of the ceiling, so a ramp, a stall or a recycle
    shows where it happened. [] when the run has none."""
    series = window_series(open_loop)
    if not series:
        return []
    rounds = list(dict.fromkeys(number for _, number, _, _, _ in series))
    fractions = sorted({fraction for _, _, fraction, _, _ in series})
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    figure, axis = plt.subplots(figsize=(9, 5.5))
    for label, number, fraction, times, p99s in series:
        style = WINDOW_STYLES[fractions.index(fraction) % len(WINDOW_STYLES)]
        colour = colours[rounds.index(number) % len(colours)]
        axis.plot(times, p99s, linestyle=style, color=colour, marker="o", markersize=2, label=label)
    axis.set_yscale("log")
    axis.set_xlabel("seconds of the schedule (each window's start)")
    axis.set_ylabel(f"p99 of the requests due in each {WINDOW_S * 1000:.0f} ms (ms, from when due)")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=7, ncol=2)
    ceiling = open_loop["ceiling"]["ceiling_rps"]
    axis.set_title(f"Open loop, sleep/100 over 1000 connections, fractions of {ceiling:,.0f} requests/s", fontsize=11)
    figure.tight_layout()
    path = folder / OPEN_LOOP_PLOT
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return [path]


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
