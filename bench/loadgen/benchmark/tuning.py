"""Each tuning's measured effect: the default configuration against variants of it.

Every variant runs at once behind an nginx of its own (only the one being measured is
busy), and they are measured in turn, round after round, every other round in reverse
order, like the targets' paired rounds: the machine's noise moves every variant alike.

Beside wrk's closed-loop columns, the open-loop ones offer every variant the same rates,
fractions of the default's own open-loop ceiling (ceiling.py), and read the latency there:
where a variant moves the knee, the closed loop's requests/s may not show it.
"""

import statistics

from . import ceiling, openloop, wrk
from .containers import settles, wait_until_serving
from .plan import MIXED, OPEN_LOOP_MIN_DURATION, SLEEP, TRIVIAL
from .progress import Progress

# (label, path, endpoint, clients): the workloads the targets are about.
WORKLOADS = (
    ("trivial, direct, 64 clients", "direct", TRIVIAL, 64),
    ("trivial, full stack, 64 clients", "nginx", TRIVIAL, 64),
    ("mixed, full stack, 64 clients", "nginx", MIXED, 64),
    ("sleep/100, full stack, 1000 clients", "nginx", SLEEP, 1000),
)
# (label, endpoint, connections, fraction of the default's open-loop ceiling): the latency target's workload.
OPEN_LOOP_WORKLOADS = (
    ("sleep/100 open loop, 1000 connections, 80% of the default's ceiling", SLEEP, 1000, 0.8),
    ("sleep/100 open loop, 1000 connections, 90% of the default's ceiling", SLEEP, 1000, 0.9),
)
# Seconds of each open-loop run: the plans' own (plan.py), so the ceilings compare.
OPEN_LOOP_SECONDS = OPEN_LOOP_MIN_DURATION


def deploy(containers, variants):
    """Start every variant and its nginx; return the base URL of each, per path."""
    bases = []
    for number, variant in enumerate(variants):
        web = containers.start_server(variant, alias=f"web-{number}")
        wait_until_serving(f"http://web-{number}:8000{TRIVIAL.path}", web)
        nginx = containers.start_nginx(variant, alias=f"nginx-{number}", upstream=f"web-{number}")
        wait_until_serving(f"http://nginx-{number}:8080{TRIVIAL.path}", nginx)
        bases.append({"direct": f"http://web-{number}:8000", "nginx": f"http://nginx-{number}:8080"})
        wrk.run(bases[-1]["nginx"] + TRIVIAL.path, 16, 1)
    return bases


def default_open_loop_ceiling(base, first_guess_rps):
    """The default's open-loop ceiling on the sleep workload (ceiling.py), found before the rounds."""

    def measure(rate):
        measured = openloop.run(base + SLEEP.path, rate, OPEN_LOOP_SECONDS, 1000)
        reasons = "; ".join(ceiling.why_not_served(measured)) or "served"
        print(f"open-loop ceiling search: {rate:,.0f} requests/s offered: {reasons}", flush=True)
        settles(base + TRIVIAL.path)
        return measured

    return ceiling.search(measure, first_guess_rps)


def open_loop_cell(measured):
    """What the table and the JSON keep of an open-loop run."""
    return {
        "rps": measured["answered_rps"],
        "p99_ms": measured["corrected"]["p99_ms"],
        "p999_ms": measured["corrected"]["p999_ms"],
        "errors": sum(measured["errors"].values()),
        "generator_kept_up": measured["generator_kept_up"],
        "generator_cores": measured.get("generator_cores"),
    }


def compare(containers, variants, rounds, duration, workloads=WORKLOADS, open_loop=OPEN_LOOP_WORKLOADS, progress=None):
    """({variant name: {workload label: [measurement per round]}}, the default's open-loop ceiling)."""
    containers.remove_leftovers()
    steps = rounds * (len(workloads) + len(open_loop)) * len(variants)
    progress = progress or Progress(steps, duration + 1)
    measured = {variant.name: {label: [] for label, *_ in (*workloads, *open_loop)} for variant in variants}
    found = None
    try:
        bases = deploy(containers, variants)
        numbered = list(enumerate(variants))
        if open_loop:
            # Its first guess: what the default does closed-loop on the same workload.
            closed = wrk.run(bases[0]["nginx"] + SLEEP.path, 1000, duration)
            found = default_open_loop_ceiling(bases[0]["nginx"], ceiling.first_guess(closed["rps"]))
        for number in range(rounds):
            for label, via, endpoint, clients in workloads:
                for index, variant in numbered if number % 2 == 0 else numbered[::-1]:
                    url = bases[index][via] + endpoint.path
                    result = wrk.run(url, clients, duration, endpoint.mix)
                    measured[variant.name][label].append(result)
                    progress.step(
                        f"round {number + 1}: {variant.name}: {label}",
                        f"{result['rps']:>8.0f} rps  p99 {result['p99_ms']:>7.1f} ms",
                    )
                    settles(bases[index][via] + TRIVIAL.path)
            if not found or not found["ceiling_rps"]:
                continue
            for label, endpoint, connections, fraction in open_loop:
                rate = fraction * found["ceiling_rps"]
                for index, variant in numbered if number % 2 == 0 else numbered[::-1]:
                    url = bases[index]["nginx"] + endpoint.path
                    cell = open_loop_cell(openloop.run(url, rate, OPEN_LOOP_SECONDS, connections, endpoint.mix))
                    measured[variant.name][label].append(cell)
                    progress.step(
                        f"round {number + 1}: {variant.name}: {label}",
                        f"p99 {cell['p99_ms']:>7.1f} ms  p99.9 {cell['p999_ms']:>7.1f} ms  {cell['errors']} errors",
                    )
                    settles(bases[index]["nginx"] + TRIVIAL.path)
    finally:
        containers.remove_leftovers()
    return measured, found


def summarize(measured, default_name):
    """Per variant and workload: median rps, p99 (and p99.9 and errors for the open loop), and
    the median per-round rps ratio to the default."""
    summary = {}
    for name, workloads in measured.items():
        summary[name] = {}
        for label, results in workloads.items():
            if not results:
                continue
            baseline = measured[default_name][label]
            ratios = [r["rps"] / b["rps"] for r, b in zip(results, baseline, strict=True) if b["rps"]]
            cell = {
                "rps": statistics.median(r["rps"] for r in results),
                "p99_ms": statistics.median(r["p99_ms"] for r in results),
                "vs_default": statistics.median(ratios) if ratios else None,
            }
            if "p999_ms" in results[0]:
                cell["p999_ms"] = statistics.median(r["p999_ms"] for r in results)
                cell["errors"] = sum(r["errors"] for r in results)
                cell["generator_behind"] = sum(not r["generator_kept_up"] for r in results)
            summary[name][label] = cell
    return summary


def render(summary, rounds, duration, open_loop_ceiling=None):
    every = [workload[0] for workload in (*WORKLOADS, *OPEN_LOOP_WORKLOADS)]
    labels = [label for label in every if any(label in workloads for workloads in summary.values())]
    out = [
        "# Tunings: the default configuration against variants of it",
        "",
        f"Medians of {rounds} rounds of {duration}s (closed loop, wrk) and {OPEN_LOOP_SECONDS}s (open loop); "
        "closed-loop cells: requests/s · p99 · ratio to the default (median of the rounds' ratios); "
        "open-loop cells: p99 · p99.9 from when each request was due · errors in all rounds.",
    ]
    if open_loop_ceiling:
        tried = ", ".join(
            f"{run['rate_rps']:,.0f} {'served' if run['served'] else 'not: ' + '; '.join(run['reasons'])}"
            for run in open_loop_ceiling["runs"]
        )
        found = open_loop_ceiling["ceiling_rps"]
        out += ["", f"The default's open-loop ceiling: {found:,.0f} requests/s (tried: {tried})."]
    out += [
        "",
        "| variant | " + " | ".join(labels) + " |",
        "| --- | " + " | ".join("---" for _ in labels) + " |",
    ]
    for name, workloads in summary.items():
        cells = []
        for label in labels:
            cell = workloads.get(label)
            if cell is None:
                cells.append("")
            elif "p999_ms" in cell:
                behind = f" (generator behind in {cell['generator_behind']})" if cell["generator_behind"] else ""
                cells.append(f"{cell['p99_ms']:,.0f} · {cell['p999_ms']:,.0f} ms · {cell['errors']}{behind}")
            else:
                ratio = f" · {cell['vs_default']:.2f}" if cell["vs_default"] is not None else ""
                cells.append(f"{cell['rps']:,.0f} · {cell['p99_ms']:,.0f} ms{ratio}")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"
