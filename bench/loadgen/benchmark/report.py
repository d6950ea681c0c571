"""The run as markdown: the targets, the seed's claims, then every measurement by endpoint."""

import math
import statistics

from .bounds import stalled
from .cpu import DOCKER, MACHINE, REST, WRK
from .openloop import WINDOW_S
from .sweep import CLOSED_LOOP, sweep_file
from .targets import ceiling_text, find, median_cpu, part_counted, runoff_medians

ENDPOINT_TITLES = {
    "trivial": "Trivial endpoint (`GET /healthz`)",
    "sleep": "IO-bound: `GET /api/sleep/100`",
    "outbound": "IO-bound over the network: `GET /api/outbound/100` (an upstream that waits 100 ms)",
    "db-sleep": "IO-bound in the database: `GET /api/db/sleep/100` (a pooled connection held 100 ms in Postgres, "
    "through PgBouncer)",
    "compute": "CPU-bound: `GET /api/compute/20000` (20,000 sha256 rounds)",
    "mixed": "Mixed workload (50% trivial, 20% sleep/50, 20% outbound/50, 10% compute/5000)",
    "static": "Static file (`site.css`) via nginx and via Flask, and nginx's own `return 200`",
}
HOLDS = {True: "yes", False: "**no**", None: "n/a"}


def pick(rows, server, via, clients):
    """The row of one server, path and client count, or None."""
    return next((r for r in rows if r["server"] == server and r["via"] == via and r["clients"] == clients), None)


def cell(row):
    if row is None:
        return ""
    text = f"{row['rps']:,.0f} · {row['p99_ms']:,.0f} ms"
    if row.get("fraction") is not None:
        text += f" · {row['fraction']:.0%}"
    errors = sum(row["errors"].values())
    if errors:
        text += f" · {errors:,} err"
    if stalled(row):
        text += " · †"
    return text


def connection_bound(row):
    """The connections a database row's requests could wait on at once, as the report states it."""
    if row is None or row.get("db_connections") is None:
        return ""
    text = f"db bound {row['db_connections']}"
    if row.get("slots") is not None and row["slots"] < row["db_connections"]:
        text = f"{row['slots']} slots; " + text
    return text


def database_section(these, database):
    """The database rows' connections: the bound, and how long PgBouncer's were in fact held."""
    out = [""]
    if database:
        out += [
            f"PgBouncer holds at most {database['pgbouncer_pool_size']} server connections, shared by every "
            f"worker process; each worker's own pool at most {database['app_db_pool_size']} (APP_DB_POOL_SIZE). "
            "The bound: min(clients, the server's slots, the connections) x 1000 / 100 ms, capped by the CPU "
            "ceiling. From PgBouncer's counters over each run: how long a transaction held its server "
            "connection (the bound assumes the 100 ms wait alone), and how long a request waited for one.",
            "",
        ]
    out += [
        "| server | via | clients | requests/s | connection bound | held per transaction | waited for a connection |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in these:
        measured = row.get("database") or {}
        held = f"{measured['held_ms']:,.1f} ms" if measured.get("held_ms") is not None else "not read"
        queued = f"{measured['queued_ms']:,.1f} ms" if measured.get("queued_ms") is not None else "not read"
        out.append(
            f"| {row['server']} | {row['via']} | {row['clients']} | {row['rps']:,.0f} | {connection_bound(row)} | "
            f"{held} | {queued} |"
        )
    return out


def claims(rows):
    """The seed articles' claims next to what this run measured."""
    lines = []
    asgi = next(
        (
            r
            for r in rows
            if r["family"] == "uvicorn" and r["endpoint"] == "trivial" and r["via"] == "nginx" and r["clients"] == 64
        ),
        None,
    )
    uwsgi = find(rows, "trivial", 64, "nginx", server="uwsgi p4")
    default = find(rows, "trivial", 64, "nginx", default=True)
    if asgi and uwsgi and uwsgi["rps"]:
        lines.append(
            f'- "ASGI is 8x faster than uWSGI + nginx + Flask": uvicorn+Starlette behind nginx did '
            f"{asgi['rps'] / uwsgi['rps']:.1f}x uWSGI (4 processes) behind nginx on the trivial endpoint, "
            "64 clients."
        )
    if asgi and default and default["rps"]:
        lines.append(
            f"- The same ASGI reference vs this stack's default configuration: {asgi['rps'] / default['rps']:.1f}x."
        )
    dev = find(rows, "sleep", 64, "direct", server="flask dev server (threaded)")
    if dev and default:
        lines.append(
            f'- "Flask\'s own server is not for production": threaded, it kept up on sleep/100 at 64 clients '
            f"({dev['rps']:,.0f} rps); see its errors at 1000 clients, and the README for what it lacks."
        )
    return lines


CPU_PARTS = (
    ("server", "server"),
    ("nginx", "nginx"),
    (WRK, "wrk"),
    (DOCKER, "Docker"),
    (REST, "the rest"),
    (MACHINE, "machine"),
)


def cpu_breakdown(paired, paired_cpu):
    """A table of the median CPU microseconds per request of each part, for each paired measurement."""
    if not any(paired_cpu.values()):
        return []
    docker_seen = part_counted(paired_cpu, paired_cpu, DOCKER)
    parts = [(part, label) for part, label in CPU_PARTS if part != DOCKER or docker_seen]
    if docker_seen:
        docker_is = (
            "Docker is its daemon's and its shims' (the pipeline that carries each container's output to its log); "
        )
        rest_holds = ""
    else:
        docker_is, rest_holds = "", "Docker's log pipeline, "
    out = [
        "",
        "## Where the CPU goes (paired rounds)",
        "",
        "CPU microseconds per request, medians of the rounds. The server and nginx are their containers' "
        f"CPU time, wrk its own; {docker_is}the rest is the machine's busy time that none of them used "
        f"({rest_holds}the kernel's network path between containers, "
        "anything else running). With every part on the same cores, a ratio of throughputs is about the "
        "inverse ratio of the machine's column.",
        "",
        "| measurement | requests/s | " + " | ".join(label for _, label in parts) + " |",
        "| --- | --- | " + " | ".join("---" for _ in parts) + " |",
    ]
    for name, rounds in paired_cpu.items():
        if not rounds:
            continue
        cells = [f"{median_cpu(paired_cpu, name, part):,.0f}" for part, _ in parts]
        out.append(f"| {name} | {statistics.median(paired[name]):,.0f} | " + " | ".join(cells) + " |")
    return out


def retired_section(retired):
    if not retired:
        return []
    out = [
        "",
        "## Retired targets",
        "",
        "The first edition's targets that this machine cannot meet, with why, and this run's figure "
        "for each, so a run shows whether the reason still stands.",
        "",
        "| target | wanted | why it was retired | this run |",
        "| --- | --- | --- | --- |",
    ]
    out += [f"| {t['target']} | {t['wanted']} | {t['why']} | {t['measured']} |" for t in retired]
    return out


def open_loop_cells(run):
    """A table row's cells for one open-loop run: offered, answered/s, p50, p99, p99.9, errors."""
    latency = run["corrected"]
    errors = ", ".join(f"{kind} {count}" for kind, count in run["errors"].items()) or "0"
    return (
        f"{run['offered_rps']:,.0f} ({run['fraction']:.0%}) | {run['answered_rps']:,.0f} | "
        f"{latency['p50_ms']:,.1f} ms | {latency['p99_ms']:,.1f} ms | {latency['p999_ms']:,.1f} ms | {errors}"
    )


def generator_cell(run):
    """How the generator fared in a run: its cores, and whether it kept its schedule and had
    an idle connection for each request when due."""
    text = f"{run['generator_cores']:.2f} cores" if run.get("generator_cores") is not None else ""
    if run.get("machine_busy_cores") is not None:
        text += f" · machine {run['machine_busy_cores']:.2f} of {run['machine_cores']} busy"
    if not run["generator_kept_up"]:
        text += " · behind"
    if not run.get("connections_sufficed", True):
        text += " · short of connections"
    return text


def worst_window(windows):
    """(when it started, its p99) of the window of due time with the highest p99, or None."""
    answered = [window for window in windows or [] if window["p99_ms"] is not None]
    if not answered:
        return None
    worst = max(answered, key=lambda window: window["p99_ms"])
    return worst["t_s"], worst["p99_ms"]


def worst_window_cell(run):
    worst = worst_window(run.get("windows"))
    return f"{worst[1]:,.0f} ms at {worst[0]:.2f} s" if worst else "none answered"


def window_series(open_loop):
    """The lines of the windows' plot: (label, round, fraction, [window start s], [p99 ms, nan
    where none was answered]) for each paired round's open-loop run."""
    series = []
    for run in (open_loop or {}).get("rounds") or []:
        windows = run.get("windows") or []
        if windows:
            times = [window["t_s"] for window in windows]
            p99s = [math.nan if window["p99_ms"] is None else window["p99_ms"] for window in windows]
            label = f"round {run['round']}, {run['fraction']:.0%}"
            series.append((label, run["round"], run["fraction"], times, p99s))
    return series


OPEN_LOOP_PLOT = "open-loop-windows.png"


def search_text(found):
    """A ceiling search's rates tried, each served or why not."""
    return ", ".join(
        f"{run['rate_rps']:,.0f} {'served' if run['served'] else 'not: ' + '; '.join(run['reasons'])}"
        for run in found["runs"]
    )


def open_loop_section(open_loop):
    """The default's open-loop ceiling, the run far under it, and each paired round's runs at
    the target's fractions of it, with the worst window of each: a ramp, a stall or a
    recycle shows there and in the plot."""
    if not open_loop:
        return []
    found = open_loop["ceiling"]
    out = [
        "",
        "## The default in the open loop (paired rounds)",
        "",
        "`/api/sleep/100` over 1000 open connections behind the stack's nginx. The default's open-loop "
        f"ceiling: {ceiling_text(found)}, the highest rate served with no error, the generator on schedule "
        f"and a connection for each request (`benchmark/ceiling.py`; first guess {found['first_guess_rps']:,.0f}; "
        f"tried: {search_text(found)}).",
    ]
    unloaded = open_loop.get("unloaded")
    runs = [*([unloaded | {"round": "unloaded"}] if unloaded else []), *(open_loop.get("rounds") or [])]
    if not runs:
        return out
    window_ms = f"{WINDOW_S * 1000:.0f} ms"
    out += [
        "",
        f"Latencies from when each request was due. The worst window: the highest p99 of any {window_ms} of "
        "due time, and when that window began.",
        "",
        f"![p99 per {window_ms} window]({OPEN_LOOP_PLOT})",
        "",
        f"| round | offered | answered/s | p50 | p99 | p99.9 | errors | generator | worst {window_ms} window |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    out += [
        f"| {run['round']} | {open_loop_cells(run)} | {generator_cell(run)} | {worst_window_cell(run)} |"
        for run in runs
    ]
    return out


def runoff_section(runoff):
    """The mixed runoff's medians, and which rows count Prometheus metrics."""
    if not runoff or not runoff.get("rounds"):
        return []
    counts = runoff.get("counts_metrics") or {}
    out = [
        "",
        "## The mixed runoff (paired rounds)",
        "",
        "Only gunicorn counts requests for Prometheus: the metrics are exported from its hooks, so under "
        "granian and uWSGI the entry point counts none. The default runs twice, with its metrics and "
        "with `APP_METRICS=off`, and the target weighs the second against the others.",
        "",
        "| server | requests/s | p99 | each round's requests/s | Prometheus metrics |",
        "| --- | --- | --- | --- | --- |",
    ]
    for server, rps in runoff_medians(runoff).items():
        runs = runoff["rounds"][server]
        p99 = statistics.median(run["p99_ms"] for run in runs)
        each = ", ".join(f"{run['rps']:,.0f}" for run in runs)
        counted = {True: "counted", False: "not counted"}.get(counts.get(server), "")
        name = f"**{server}**" if server == runoff["default"] else server
        out.append(f"| {name} | {rps:,.0f} | {p99:,.0f} ms | {each} | {counted} |")
    return out


def sweep_ceilings(sweeps):
    """Each swept server's own open-loop ceiling on sleep/100, as a table."""
    found = sweeps.get("open_loop_ceilings") or {}
    if not found:
        return []
    out = [
        "",
        "Each server's own open-loop ceiling on `/api/sleep/100` over 1000 connections behind nginx:",
        "",
        "| server | ceiling | rates tried |",
        "| --- | --- | --- |",
    ]
    for server, ceiling in found.items():
        name = f"**{server}**" if ceiling["default"] else server
        out.append(f"| {name} | {ceiling_text(ceiling)} | {search_text(ceiling)} |")
    return out


def hyphenated(kind):
    """A yardstick's kind as an adjective: "open loop" ceiling -> "open-loop" ceiling."""
    return kind.replace(" ", "-")


def sweep_section(sweeps):
    """Each sweep as a table: a row per server and offered rate."""
    if not sweeps or not sweeps.get("points"):
        return []
    out = [
        "",
        "## Latency at a fixed offered rate (open loop)",
        "",
        "The open-loop generator (`benchmark/openloop.py`) sends each request when the schedule says, "
        "over connections opened beforehand, whatever the server does; latencies count from when each "
        "request was due, so a stall shows in every request it delayed (wrk counts from when a request "
        "left, and sends less while the server is slow). The rates are fractions of the default's "
        "ceiling on the same workload and connections, in the open loop itself or closed-loop (wrk), "
        "as each heading says. Uncorrected p99 is from when each "
        "request left, what a closed loop would have shown. `behind`: the generator itself sent late, "
        "more than 10 ms at p99 (its schedule, or, while it had a connection for each request, the "
        "send), so the machine's cores were short for load and generator.",
    ]
    out += sweep_ceilings(sweeps)
    kinds = sweeps.get("ceiling_kinds") or {}
    for workload, ceiling in sweeps["ceilings"].items():
        points = [p for p in sweeps["points"] if p["workload"] == workload]
        if not points:
            continue
        out += [
            "",
            f"### {workload} (the default's {hyphenated(kinds.get(workload, CLOSED_LOOP))} ceiling: "
            f"{ceiling:,.0f} requests/s)",
            "",
            f"![{workload}]({sweep_file(workload)})",
            "",
            "| server | offered | answered/s | p50 | p99 | p99.9 | uncorrected p99 | errors |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for p in points:
            latency = p["corrected"]
            errors = ", ".join(f"{kind} {count}" for kind, count in p["errors"].items()) or "0"
            name = f"**{p['server']}**" if p["default"] else p["server"]
            out.append(
                f"| {name} | {p['offered_rps']:,.0f} ({p['fraction']:.0%}) | {p['answered_rps']:,.0f} | "
                f"{latency['p50_ms']:,.1f} ms | {latency['p99_ms']:,.1f} ms | {latency['p999_ms']:,.1f} ms | "
                f"{p['uncorrected']['p99_ms']:,.1f} ms | {errors}"
                + ("" if p["generator_kept_up"] else " · behind")
                + " |"
            )
    return out


def render(result):
    rows, plan = result["rows"], result["plan"]
    machine = result["machine"]
    out = [
        f"# Benchmark report: plan `{plan['name']}`",
        "",
        f"Run on {machine['date']}: {machine.get('cpu', 'unknown CPU')}, {machine['cores']} cores, "
        f"{machine['memory_gib']} GiB, {machine['kernel']}, "
        f"Docker {machine['docker']}. Load generator: wrk ({plan['duration']}s per measurement, keep-alive "
        f"connections = clients), in a container on the benchmark's compose network like every server."
        + (
            f" The targets' paired rounds: {plan['paired_rounds']} of {plan['paired_duration']}s per measurement"
            + (f", {plan['open_loop_duration']}s per open-loop run." if plan.get("open_loop_duration") else ".")
            if plan.get("paired_rounds")
            else ""
        ),
        f"One compute request costs {result['compute_ms']:.2f} ms of CPU (measured, one at a time).",
        "",
        "## Targets",
        "",
        "| target | wanted | measured | holds |",
        "| --- | --- | --- | --- |",
    ]
    out += [f"| {t['target']} | {t['wanted']} | {t['measured']} | {HOLDS[t['holds']]} |" for t in result["targets"]]
    if result["failures"]:
        out += ["", "Servers that failed to run:", ""] + [f"- {failure}" for failure in result["failures"]]
    out += retired_section(result.get("retired_targets"))
    out += cpu_breakdown(result.get("paired", {}), result.get("paired_cpu", {}))
    out += open_loop_section(result.get("open_loop"))
    out += runoff_section(result.get("mixed_runoff"))
    out += sweep_section(result.get("sweeps"))
    out += ["", "## The seed articles' claims", ""] + (claims(rows) or ["- not measured in this plan"])
    out += [
        "",
        "## Every measurement",
        "",
        "Each cell: requests/s · p99 latency · fraction of the theoretical bound (where one applies) · errors.",
        "† fewer than half the clients got an answer during the run (clients answered = requests/s x mean "
        "latency): the others waited in a queue, or on a worker that stalled; their wait is in no percentile.",
    ]
    for endpoint, title in ENDPOINT_TITLES.items():
        these = [row for row in rows if row["endpoint"] == endpoint]
        if not these:
            continue
        clients = sorted({row["clients"] for row in these})
        # The database rows state their connection bound beside the server.
        bound_column = any(row.get("db_connections") is not None for row in these)
        head = ["server", "via", *(["connection bound"] if bound_column else []), *(f"{c} clients" for c in clients)]
        out += [
            "",
            f"### {title}",
            "",
            "| " + " | ".join(head) + " |",
            "| " + " | ".join("---" for _ in head) + " |",
        ]
        seen = []
        for row in these:
            if (row["server"], row["via"]) not in seen:
                seen.append((row["server"], row["via"]))
        for server, via in seen:
            cells = [cell(pick(these, server, via, count)) for count in clients]
            name = f"**{server}**" if any(r["default"] for r in these if r["server"] == server) else server
            bound = ""
            if bound_column:
                # The server's and the database's, whatever the clients.
                first = next(r for r in these if r["server"] == server and r["via"] == via)
                bound = connection_bound(first) + " | "
            out.append(f"| {name} | {via} | {bound}" + " | ".join(cells) + " |")
        if bound_column:
            out += database_section(these, plan.get("database"))
    short = [row for row in rows if row["seed"] and row.get("shortfall")]
    if short:
        out += ["", "## Seed configurations below 90% of their bound, and why", ""]
        out += [
            f"- {row['server']}, {row['via']}, {row['endpoint']}, {row['clients']} clients: "
            f"{row['fraction']:.0%} of {row['bound_rps']:,.0f} rps. {row['shortfall']}."
            for row in short
        ]
    settings = {name: line for name, line in result["settings"].items() if line}
    if settings:
        out += ["", "## gunicorn's effective settings, as each server logged them", ""]
        out += [f"- {name}: `{line}`" for name, line in settings.items()]
    return "\n".join(out) + "\n"
