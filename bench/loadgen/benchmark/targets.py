"""The issue's targets, checked against one run's rows."""

import math
import statistics

from .bounds import NEAR_BOUND, concurrency_bound
from .cpu import DOCKER, MACHINE
from .plan import SLEEP
from .sweep import OPEN_LOOP, SLEEP_WORKLOAD

# The hop: the bare proxy's CPU per request over the full stack's.
HOP_MIN = 0.95
STATIC_VS_FLASK_MIN = 10.0
STATIC_VS_RETURN_200_MIN = 0.5
# The latency target: the open loop offers this fraction of the default's open-loop ceiling.
OPEN_LOOP_FRACTION = 0.8
OPEN_LOOP_P99_MAX_MS = 250
OPEN_LOOP_P999_MAX_MS = 500
# Each paired round's open-loop runs, as fractions of that ceiling.
OPEN_LOOP_FRACTIONS = (OPEN_LOOP_FRACTION, 0.9)
# The unloaded run: so far under the ceiling that no queue forms, its p99 is the wait alone.
UNLOADED_FRACTION = 0.1
# Up to FLAT_UP_TO of the ceiling, the p99 stays within FLAT_FACTOR x the unloaded one.
FLAT_UP_TO = 0.9
FLAT_FACTOR = 2
# The default with its Prometheus metrics against itself without them (trivial, direct).
METRICS_COST_MIN = 0.97
MIXED_WITHIN = 0.05
# The first edition's targets, retired (see `retired`): kept to show each run's figure.
FULL_STACK_MIN = 0.90
SLEEP_FRACTION_MIN = 0.90
SLEEP_P99_MAX_MS = 250


def find(rows, endpoint, clients, via, *, server=None, default=False):
    for row in rows:
        if (
            row["endpoint"] == endpoint
            and row["clients"] == clients
            and row["via"] == via
            and (row["default"] if default else row["server"] == server)
        ):
            return row
    return None


def check(name, holds, measured, target):
    return {"target": name, "holds": holds, "measured": measured, "wanted": target}


def not_measured(name, target):
    return check(name, None, "not measured in this plan", target)


def paired_ratio(paired, top, bottom):
    """The ratio of the two sides' medians over the rounds, and each round's own ratio.

    Medians, so that a side that collapsed in fewer than half the rounds (a stalled worker,
    a noisy neighbour) moves neither side; the rounds' ratios are shown beside it."""
    tops, bottoms = paired.get(top, []), paired.get(bottom, [])
    ratios = [a / b for a, b in zip(tops, bottoms, strict=False) if b]
    if not ratios or not statistics.median(bottoms):
        return None, []
    return statistics.median(tops) / statistics.median(bottoms), ratios


def rounds(ratios):
    return ", ".join(f"{ratio:.2f}" for ratio in ratios)


def ratio_target(name, minimum, wanted, shown, sides, rows_of_sides, paired):
    """A target on the ratio of two measurements: from paired rounds when the run has them,
    else from the two rows."""
    ratio, per_round = paired_ratio(paired or {}, *sides)
    if ratio is not None:
        measured = f"{shown(ratio)} (medians of the rounds; each round: {rounds(per_round)})"
        return check(name, ratio >= minimum, measured, wanted)
    top, bottom = rows_of_sides
    if not (top and bottom and bottom["rps"]):
        return not_measured(name, wanted)
    ratio = top["rps"] / bottom["rps"]
    return check(name, ratio >= minimum, f"{shown(ratio)} ({top['rps']:.0f} / {bottom['rps']:.0f} rps)", wanted)


def median_cpu(paired_cpu, name, part):
    rounds = (paired_cpu or {}).get(name) or []
    return statistics.median(r.get(part, 0.0) for r in rounds) if rounds else None


def part_counted(paired_cpu, names, part):
    """Whether every round of these paired measurements counted the part: Docker's processes
    are counted only where the host's are in view (cpu.processes_cpu_s)."""
    rounds = [measured for name in names for measured in (paired_cpu or {}).get(name) or []]
    return bool(rounds) and all(part in measured for measured in rounds)


BARE_PROXY = "trivial, bare nginx proxy"
STACK_WITHOUT_LOG = "trivial, stack without its access log"
# The default again, with APP_METRICS=off, beside it in the paired rounds.
METRICS_OFF = "trivial direct, metrics off"


def full_stack_vs_direct(rows, paired=None, paired_cpu=None):
    result = ratio_target(
        "Full stack vs the same gunicorn direct (trivial, 64 clients)",
        FULL_STACK_MIN,
        f">= {FULL_STACK_MIN:.2f}",
        "{:.2f}".format,
        ("trivial nginx", "trivial direct"),
        (find(rows, "trivial", 64, "nginx", default=True), find(rows, "trivial", 64, "direct", default=True)),
        paired,
    )
    bare, _ = paired_ratio(paired or {}, BARE_PROXY, "trivial direct")
    if bare is not None:
        result["measured"] += (
            f"; an nginx that only proxies (no log, no added headers, no limits), in the same rounds: {bare:.2f}"
        )
    direct = median_cpu(paired_cpu, "trivial direct", MACHINE)
    proxied = median_cpu(paired_cpu, "trivial nginx", MACHINE)
    nginx = median_cpu(paired_cpu, "trivial nginx", "nginx")
    if direct and proxied:
        result["measured"] += (
            f"; the machine's CPU per request: {direct:.0f} µs direct, {proxied:.0f} µs through "
            f"nginx, {nginx:.0f} µs of it nginx's own (see Where the CPU goes)"
        )
    return result


def hop(paired=None, paired_cpu=None):
    """The stack's own cost beyond the hop: the full stack against an nginx that only proxies
    to the same gunicorn, in the same rounds. The hop itself is the machine's; the rest
    (the access log, the added headers, the limits, the request-id checks) is ours. Judged by
    the machine's CPU per request, every part on the same cores: the rounds' requests/s
    scatter wider than the margin judged, and are shown beside it."""
    name = "Full stack vs an nginx that only proxies to the same gunicorn: CPU per request (trivial, 64 clients)"
    wanted = f">= {HOP_MIN:.2f} (the machine's CPU per request through the bare proxy / through the full stack)"
    stack = median_cpu(paired_cpu, "trivial nginx", MACHINE)
    bare = median_cpu(paired_cpu, BARE_PROXY, MACHINE)
    rps_ratio, rps_rounds = paired_ratio(paired or {}, "trivial nginx", BARE_PROXY)
    beside = f"requests/s {rps_ratio:.2f} of the bare proxy's (each round: {rounds(rps_rounds)})" if rps_ratio else ""
    if not (stack and bare):
        return check(name, None, "not measured in this plan" + (f"; {beside}" if beside else ""), wanted)
    ratio = bare / stack
    measured = (
        f"{ratio:.2f}: {stack:.0f} µs through the full stack, {bare:.0f} µs through the bare proxy "
        f"(medians of the paired rounds; each round: {rounds(cpu_ratios(paired_cpu, BARE_PROXY, 'trivial nginx'))})"
    )
    if beside:
        measured += "; " + beside
    nginx_stack = median_cpu(paired_cpu, "trivial nginx", "nginx")
    nginx_bare = median_cpu(paired_cpu, BARE_PROXY, "nginx")
    measured += (
        f"; nginx's own: {nginx_stack:.0f} µs in the stack, {nginx_bare:.0f} µs only proxying (see Where the CPU goes)"
    )
    return check(name, ratio >= HOP_MIN, measured + access_log_share(paired, paired_cpu), wanted)


def cpu_ratios(paired_cpu, top, bottom, part=MACHINE):
    """Each round's ratio of two paired measurements' CPU per request of one part."""
    tops, bottoms = (paired_cpu or {}).get(top) or [], (paired_cpu or {}).get(bottom) or []
    return [a.get(part, 0.0) / b[part] for a, b in zip(tops, bottoms, strict=False) if b.get(part)]


def access_log_share(paired, paired_cpu):
    """What the access log alone costs: the stack without it, against the bare proxy in the
    same rounds, and Docker's and nginx's CPU per request with the log and without."""
    without_log, _ = paired_ratio(paired or {}, STACK_WITHOUT_LOG, BARE_PROXY)
    if without_log is None:
        return ""
    text = f"; the same stack without its access log: {without_log:.2f} of the bare proxy"
    sides = ("trivial nginx", STACK_WITHOUT_LOG)
    if all(part_counted(paired_cpu, (side,), DOCKER) for side in sides):
        docker = [median_cpu(paired_cpu, side, DOCKER) for side in sides]
        nginx = [median_cpu(paired_cpu, side, "nginx") for side in sides]
        # Both sides shown, not their difference: on a noisy machine a part the log barely
        # changes (nginx's own) can come out lower with the log than without.
        text += (
            f"; CPU per request with the log and without: Docker's log pipeline {docker[0]:.0f} and "
            f"{docker[1]:.0f} µs, nginx {nginx[0]:.0f} and {nginx[1]:.0f} µs"
        )
    return text


def open_loop_runs(open_loop, fraction):
    """The paired rounds' open-loop runs at `fraction` of the default's open-loop ceiling."""
    runs = (open_loop or {}).get("rounds") or []
    return [run for run in runs if math.isclose(run["fraction"], fraction) and run.get("corrected")]


def corrected_ms(run, key="p99_ms"):
    """A run's percentile from when each request was due; infinite when nothing was answered,
    as the percentiles of no answer are no latency."""
    return run["corrected"][key] if run.get("answered", 1) else math.inf


def ms(value):
    return f"{value:,.0f} ms" if math.isfinite(value) else "no answer"


def ceiling_text(found):
    """An open-loop ceiling (ceiling.search's result) as the targets state it."""
    text = f"{found['ceiling_rps']:,.0f} requests/s"
    if not found.get("bracketed", True):
        text += " or more (every rate tried was served)" if found["ceiling_rps"] else " (no rate tried was served)"
    return text


def no_rate_served(found):
    """Why a ceiling search found none: the reasons at the lowest rate it tried."""
    lowest = min(found["runs"], key=lambda run: run["rate_rps"])
    return (
        f"no rate was served in the search for the open-loop ceiling: at {lowest['rate_rps']:,.0f} "
        f"requests/s, {'; '.join(lowest['reasons'])}"
    )


def generator_notes(runs):
    """The generator's cores over the runs, and the rounds where it fell behind its schedule
    or ran short of idle connections: there, part of a latency is the generator's."""
    cores = [run["generator_cores"] for run in runs if run.get("generator_cores") is not None]
    spread = f"{min(cores):.2f} to {max(cores):.2f}" if cores and min(cores) != max(cores) else ""
    text = f"; the generator used {spread or f'{cores[0]:.2f}'} cores" if cores else ""
    behind = [str(run["round"]) for run in runs if not run["generator_kept_up"]]
    short = [str(run["round"]) for run in runs if not run.get("connections_sufficed", True)]
    if behind:
        text += (
            f"; it fell behind its schedule in round(s) {', '.join(behind)}: the machine's cores were "
            "short for the load and its generator together"
        )
    if short:
        text += f"; requests waited for an idle connection in round(s) {', '.join(short)}"
    return text


def open_loop_latency(open_loop=None):
    """p99 and p99.9 of sleep/100 over 1000 open connections at OPEN_LOOP_FRACTION of the
    default's open-loop ceiling, counted from when each request was due (openloop.py)."""
    name = (
        f"/api/sleep/100 at {OPEN_LOOP_FRACTION:.0%} of the default's open-loop ceiling, "
        "1000 open connections (full stack)"
    )
    wanted = f"p99 <= {OPEN_LOOP_P99_MAX_MS} ms, p99.9 <= {OPEN_LOOP_P999_MAX_MS} ms, 0 errors"
    found = (open_loop or {}).get("ceiling")
    runs = open_loop_runs(open_loop, OPEN_LOOP_FRACTION)
    if found and not found["ceiling_rps"]:
        return check(name, False, no_rate_served(found), wanted)
    if not (found and runs):
        return not_measured(name, wanted)
    p99 = statistics.median(corrected_ms(run) for run in runs)
    p999 = statistics.median(corrected_ms(run, "p999_ms") for run in runs)
    errors = sum(sum(run["errors"].values()) for run in runs)
    offered = statistics.median(run["offered_rps"] for run in runs)
    each = ", ".join(f"{run['corrected']['p99_ms']:.0f}/{run['corrected']['p999_ms']:.0f}" for run in runs)
    measured = (
        f"p99 {ms(p99)}, p99.9 {ms(p999)}, {errors} errors at {offered:,.0f} requests/s offered "
        f"({OPEN_LOOP_FRACTION:.0%} of {ceiling_text(found)}; medians of {len(runs)} paired rounds; "
        f"each round's p99/p99.9 ms: {each})"
    )
    holds = p99 <= OPEN_LOOP_P99_MAX_MS and p999 <= OPEN_LOOP_P999_MAX_MS and errors == 0
    return check(name, holds, measured + generator_notes(runs), wanted)


def sweep_points_up_to_flat(sweeps):
    """The default's sweep points on sleep/100 at fractions up to FLAT_UP_TO of its open-loop
    ceiling; none where the sweep's rates were fractions of another ceiling."""
    sweeps = sweeps or {}
    if (sweeps.get("ceiling_kinds") or {}).get(SLEEP_WORKLOAD) != OPEN_LOOP:
        return []
    points = [
        point
        for point in sweeps.get("points") or []
        if point["default"] and point["workload"] == SLEEP_WORKLOAD and point["fraction"] <= FLAT_UP_TO + 1e-9
    ]
    return sorted(points, key=lambda point: point["fraction"])


def latency_near_unloaded(open_loop=None, sweeps=None):
    """Where queueing starts: the p99 at each fraction up to FLAT_UP_TO of the default's
    open-loop ceiling against the p99 with no queue (the run at UNLOADED_FRACTION)."""
    name = (
        f"/api/sleep/100, 1000 open connections: p99 up to {FLAT_UP_TO:.0%} of the default's open-loop "
        "ceiling vs unloaded (full stack)"
    )
    wanted = f"<= {FLAT_FACTOR}x the p99 at {UNLOADED_FRACTION:.0%} of the ceiling"
    unloaded = (open_loop or {}).get("unloaded")
    loaded = {fraction: open_loop_runs(open_loop, fraction) for fraction in OPEN_LOOP_FRACTIONS}
    if not unloaded or not any(loaded.values()):
        return not_measured(name, wanted)
    base = corrected_ms(unloaded)
    if not math.isfinite(base) or base <= 0:
        return check(name, None, f"the run at {UNLOADED_FRACTION:.0%} got no answer: no p99 to compare with", wanted)
    limit = FLAT_FACTOR * base
    medians = {
        fraction: statistics.median(corrected_ms(run) for run in runs) for fraction, runs in loaded.items() if runs
    }
    points = sweep_points_up_to_flat(sweeps)
    measured = f"unloaded p99 {ms(base)} ({unloaded['offered_rps']:,.0f} requests/s offered), so at most {ms(limit)}"
    if not unloaded["generator_kept_up"]:
        measured += " (the generator fell behind in that run)"
    measured += "; medians of the paired rounds: " + ", ".join(
        f"{fraction:.0%} {ms(p99)} ({p99 / base:.1f}x)" for fraction, p99 in medians.items()
    )
    if points:
        measured += "; the sweep: " + ", ".join(
            f"{point['fraction']:.0%} {ms(corrected_ms(point))}" for point in points
        )
    measured += machine_busy_note(unloaded, loaded)
    worst = max([*medians.values(), *(corrected_ms(point) for point in points)])
    return check(name, worst <= limit, measured, wanted)


def machine_busy_note(unloaded, loaded):
    """How busy the whole machine was (generator, nginx, gunicorn, all) in the unloaded run and,
    as medians, at each loaded fraction: near all of its cores, a queue forms for the CPU."""
    shares = {UNLOADED_FRACTION: [unloaded]} | loaded
    busy = {
        fraction: statistics.median(run["machine_busy_cores"] for run in runs)
        for fraction, runs in shares.items()
        if runs and all(run.get("machine_busy_cores") is not None for run in runs)
    }
    every_run = [unloaded, *(run for runs in loaded.values() for run in runs)]
    cores = next((run["machine_cores"] for run in every_run if run.get("machine_cores")), None)
    if not busy or cores is None:
        return ""
    return f"; the machine's busy cores (of {cores}): " + ", ".join(
        f"{fraction:.0%} {cores_busy:.2f}" for fraction, cores_busy in busy.items()
    )


def open_loop_ceiling_vs_granian(sweeps=None):
    """The default's open-loop ceiling on sleep/100 against granian's, each searched behind the
    stack's nginx in the sweep, on the same servers image and the same cores."""
    name = "The default's open-loop ceiling vs granian's (sleep/100, 1000 open connections, full stack)"
    wanted = ">= granian's (same image, same cores)"
    found = (sweeps or {}).get("open_loop_ceilings") or {}
    default = next((ceiling for ceiling in found.values() if ceiling["default"]), None)
    granian = next((ceiling for ceiling in found.values() if ceiling["family"] == "granian"), None)
    if not (default and granian):
        return not_measured(name, wanted)
    ours, theirs = default["ceiling_rps"], granian["ceiling_rps"]
    measured = f"{ceiling_text(default)} against {ceiling_text(granian)}"
    if theirs:
        measured += f", {ours / theirs:.2f} of it"
    measured += "; each server's: " + ", ".join(f"{server} {ceiling_text(c)}" for server, c in found.items())
    return check(name, bool(ours) and ours >= theirs, measured, wanted)


def metrics_cost(paired=None, paired_cpu=None):
    """What the Prometheus metrics cost the default on the trivial endpoint: the default against
    the same server with APP_METRICS=off, started beside it and measured right after it."""
    name = "The metrics' cost: the default vs the same with APP_METRICS=off (trivial, direct, 64 clients)"
    wanted = f">= {METRICS_COST_MIN:.2f} of the requests/s without them"
    ratio, per_round = paired_ratio(paired or {}, "trivial direct", METRICS_OFF)
    if ratio is None:
        return not_measured(name, wanted)
    with_them, without = statistics.median(paired["trivial direct"]), statistics.median(paired[METRICS_OFF])
    measured = (
        f"{ratio:.2f}: {with_them:,.0f} against {without:,.0f} requests/s (medians of the rounds; "
        f"each round: {rounds(per_round)})"
    )
    server = [median_cpu(paired_cpu, side, "server") for side in ("trivial direct", METRICS_OFF)]
    machine = [median_cpu(paired_cpu, side, MACHINE) for side in ("trivial direct", METRICS_OFF)]
    if None not in server and None not in machine:
        measured += (
            f"; CPU per request with the metrics and without: the server's {server[0]:.0f} and {server[1]:.0f} µs, "
            f"the machine's {machine[0]:.0f} and {machine[1]:.0f} µs"
        )
    return check(name, ratio >= METRICS_COST_MIN, measured, wanted)


def static_ratios(rows, paired=None):
    nginx = find(rows, "static", 64, "nginx", server="nginx static")
    return [
        ratio_target(
            "Static file: nginx vs Flask through gunicorn (64 clients)",
            STATIC_VS_FLASK_MIN,
            f">= {STATIC_VS_FLASK_MIN:.0f}x",
            "{:.1f}x".format,
            ("nginx static", "flask static"),
            (nginx, find(rows, "static", 64, "direct", server="flask static")),
            paired,
        ),
        ratio_target(
            "Static file via nginx vs nginx's own return 200 (64 clients)",
            STATIC_VS_RETURN_200_MIN,
            f">= {STATIC_VS_RETURN_200_MIN}",
            "{:.2f}".format,
            ("nginx static", "nginx return 200"),
            (nginx, find(rows, "static", 64, "nginx", server="nginx return 200")),
            paired,
        ),
    ]


SLEEP_1000 = "sleep/100 nginx, 1000 clients"


def sleep_at_1000(rows, paired=None, paired_runs=None):
    name = "/api/sleep/100, 1000 clients, default configuration (full stack)"
    wanted = f">= {SLEEP_FRACTION_MIN:.2f} of bound, 0 errors, p99 <= {SLEEP_P99_MAX_MS} ms"
    runs, ceilings = (paired_runs or {}).get(SLEEP_1000), (paired or {}).get("trivial nginx")
    if runs and ceilings:
        # Paired rounds: the CPU ceiling is the full stack's trivial rate in the same rounds.
        in_flight = concurrency_bound(None, 1000, SLEEP.io_ms)

        def bound_of(ceiling):
            return min(in_flight, ceiling)

        rps = statistics.median(run["rps"] for run in runs)
        ceiling = statistics.median(ceilings)
        bound, kind = bound_of(ceiling), "cpu" if ceiling < in_flight else "concurrency"
        fraction = rps / bound if bound else 0.0
        errors = sum(sum(run["errors"].values()) for run in runs)
        p99 = statistics.median(run["p99_ms"] for run in runs)
        # A round whose trivial run got no answer at all (a stalled server) has no ceiling.
        source = f", medians of {len(runs)} paired rounds; each round: " + ", ".join(
            f"{run['rps'] / bound_of(c):.2f}" if bound_of(c) else "no ceiling"
            for run, c in zip(runs, ceilings, strict=False)
        )
    else:
        row = find(rows, "sleep", 1000, "nginx", default=True)
        if not row or row["fraction"] is None:
            return not_measured(name, wanted)
        bound, kind, fraction = row["bound_rps"], row["bound_kind"], row["fraction"]
        errors, p99, source = sum(row["errors"].values()), row["p99_ms"], ""
    holds = fraction >= SLEEP_FRACTION_MIN and errors == 0 and p99 <= SLEEP_P99_MAX_MS
    p99_text = f"p99 {p99:.0f} ms" + (" (median of the rounds)" if source else "")
    measured = f"{fraction:.2f} of {bound:.0f} rps ({kind} bound{source}), {errors} errors, {p99_text}"
    # Little's law: each of N clients waits for its answer before asking again, so the mean
    # latency is N / throughput. Under the bound, no p99 can be shorter than that mean.
    floor_ms = 1000 * 1000 / bound if bound else 0.0
    if floor_ms > SLEEP_P99_MAX_MS:
        measured += (
            f"; at most {bound:.0f} rps, 1000 clients wait {floor_ms:.0f} ms on average "
            f"(clients / throughput), so a p99 of {SLEEP_P99_MAX_MS} ms is out of reach on this machine"
        )
    return check(name, holds, measured, wanted)


def seed_rows_near_bound(rows):
    name = "Seed configurations within 10% of their bound, or the report says why"
    bounded = [row for row in rows if row["seed"] and row["fraction"] is not None]
    if not bounded:
        return not_measured(name, f">= {NEAR_BOUND:.2f}")
    near = [row for row in bounded if row["fraction"] >= NEAR_BOUND]
    unexplained = [row for row in bounded if row["fraction"] < NEAR_BOUND and not row["shortfall"]]
    measured = f"{len(near)} of {len(bounded)} rows within 10%; the other {len(bounded) - len(near)} say why below"
    return check(name, not unexplained, measured, f">= {NEAR_BOUND:.2f} or a reason")


def runoff_medians(runoff):
    """Each runoff candidate's median requests/s over its rounds, best first."""
    table = {name: statistics.median(run["rps"] for run in runs) for name, runs in runoff["rounds"].items() if runs}
    return dict(sorted(table.items(), key=lambda item: item[1], reverse=True))


# What moving the stack to the runoff's winner would take, by the first word of its name.
SWITCHING = {
    "gunicorn": "set its GUNICORN_* variables in .env; nothing else changes",
    "granian": (
        "the web image's command becomes granian on stack.wsgi:application, and what gunicorn's "
        "hooks do (the drain on SIGTERM, the Prometheus metrics, the settings /api/settings "
        "reports, worker recycling by requests and memory) must be rebuilt on granian's options"
    ),
    "uwsgi": (
        "the web image's command becomes uwsgi on stack.wsgi:application, and what gunicorn's "
        "hooks do (the drain on SIGTERM, the Prometheus metrics, the settings /api/settings "
        "reports, worker recycling by requests and memory) must be rebuilt on uWSGI's options"
    ),
}


def metrics_counted(runoff):
    """Which of the runoff's rows count Prometheus metrics and which do not, as a sentence."""
    counts = runoff.get("counts_metrics") or {}
    counted = [name for name, counting in counts.items() if counting]
    uncounted = [name for name, counting in counts.items() if not counting]
    return (
        f"Prometheus metrics counted by {', '.join(counted) or 'none'}; not by {', '.join(uncounted) or 'none'} "
        "(they are exported from gunicorn's hooks, so granian and uWSGI count none)"
    )


def mixed_default_is_best(runoff=None):
    """The mixed runoff with the metrics handled alike: the default with APP_METRICS=off against
    the best other server, none of which counts them; the default with its metrics beside it."""
    name = (
        "Mixed workload, the metrics handled alike: the default with APP_METRICS=off vs the best other "
        "Flask server (full stack, 64 clients)"
    )
    wanted = f"within {MIXED_WITHIN:.0%} of the best other"
    table = runoff_medians(runoff) if runoff else {}
    alike, default = (runoff or {}).get("metrics_off"), (runoff or {}).get("default")
    others = {server: rps for server, rps in table.items() if server not in (alike, default)}
    if alike not in table or not others:
        return not_measured(name, wanted)
    best, best_rps = next(iter(others.items()))
    ratio = table[alike] / best_rps if best_rps else 0.0
    rounds_run = len(runoff["rounds"][alike])
    every = ", ".join(f"{server} {rps:,.0f}" for server, rps in table.items())
    measured = f"{ratio:.2f} of {best} (medians of {rounds_run} paired rounds, requests/s: {every})"
    if default in table and best_rps:
        measured += f"; the default with its metrics: {table[default] / best_rps:.2f} of it"
    measured += "; " + metrics_counted(runoff)
    if ratio < 1 - MIXED_WITHIN and table[alike]:
        switch = SWITCHING.get(best.split(" ")[0], "see its row in the tables")
        measured += f"; {best} leads by {best_rps / table[alike] - 1:.0%}: to switch, {switch}"
    return check(name, ratio >= 1 - MIXED_WITHIN, measured, wanted)


def judge(result):
    """Judge a run's targets (and the retired ones) from its result's keys, into the result.
    Results from before a measurement lack its key: its targets say "not measured"."""
    result["targets"] = check_all(
        result["rows"],
        paired=result.get("paired"),
        paired_cpu=result.get("paired_cpu"),
        runoff=result.get("mixed_runoff"),
        open_loop=result.get("open_loop"),
        sweeps=result.get("sweeps"),
    )
    result["retired_targets"] = retired(
        result["rows"], result.get("paired"), result.get("paired_cpu"), result.get("paired_runs")
    )
    return result


def check_all(rows, paired=None, paired_cpu=None, runoff=None, open_loop=None, sweeps=None):
    return [
        hop(paired, paired_cpu),
        open_loop_latency(open_loop),
        latency_near_unloaded(open_loop, sweeps),
        open_loop_ceiling_vs_granian(sweeps),
        metrics_cost(paired, paired_cpu),
        *static_ratios(rows, paired),
        seed_rows_near_bound(rows),
        mixed_default_is_best(runoff),
    ]


RETIRED_BECAUSE = {
    "full stack vs direct": (
        "the hop itself costs more than a tenth on two cores that wrk, nginx and gunicorn share: an "
        "nginx that only proxies, with none of the stack's settings, stays under 0.90 of direct as well. "
        "Replaced by the full stack against that nginx, the part the stack's configuration controls"
    ),
    "sleep closed loop": (
        "Little's law: 1000 clients that each wait for their answer before asking again wait "
        "1000 / throughput on average, which is over 250 ms at any throughput under 4,000 requests/s, "
        "above this machine's ceiling. Replaced by the latency at a fixed offered rate (open loop)"
    ),
}


def retired(rows, paired=None, paired_cpu=None, paired_runs=None):
    """The first edition's two targets that could not be met here, with why, and this run's
    figures for them, so each run shows whether the reason still stands."""
    old_hop = full_stack_vs_direct(rows, paired, paired_cpu)
    old_hop["why"] = RETIRED_BECAUSE["full stack vs direct"]
    old_sleep = sleep_at_1000(rows, paired, paired_runs)
    old_sleep["why"] = RETIRED_BECAUSE["sleep closed loop"]
    return [old_hop, old_sleep]
