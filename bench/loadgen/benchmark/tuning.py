"""Each tuning's measured effect: the default configuration against variants of it.

Every variant runs at once behind an nginx of its own (only the one being measured is
busy), and they are measured in turn, round after round, every other round in reverse
order, like the targets' paired rounds: the machine's noise moves every variant alike.
"""

import statistics

from . import wrk
from .containers import settles, wait_until_serving
from .plan import MIXED, SLEEP, TRIVIAL
from .progress import Progress

# (label, path, endpoint, clients): the workloads the targets are about.
WORKLOADS = (
    ("trivial, direct, 64 clients", "direct", TRIVIAL, 64),
    ("trivial, full stack, 64 clients", "nginx", TRIVIAL, 64),
    ("mixed, full stack, 64 clients", "nginx", MIXED, 64),
    ("sleep/100, full stack, 1000 clients", "nginx", SLEEP, 1000),
)


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


def compare(containers, variants, rounds, duration, workloads=WORKLOADS, progress=None):
    """{variant name: {workload label: [measurement per round]}}."""
    containers.remove_leftovers()
    progress = progress or Progress(rounds * len(workloads) * len(variants), duration + 1)
    measured = {variant.name: {label: [] for label, *_ in workloads} for variant in variants}
    try:
        bases = deploy(containers, variants)
        numbered = list(enumerate(variants))
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
    finally:
        containers.remove_leftovers()
    return measured


def summarize(measured, default_name):
    """Per variant and workload: median rps, median p99, and the median per-round rps ratio to the default."""
    summary = {}
    for name, workloads in measured.items():
        summary[name] = {}
        for label, results in workloads.items():
            baseline = measured[default_name][label]
            ratios = [r["rps"] / b["rps"] for r, b in zip(results, baseline, strict=True) if b["rps"]]
            summary[name][label] = {
                "rps": statistics.median(r["rps"] for r in results),
                "p99_ms": statistics.median(r["p99_ms"] for r in results),
                "vs_default": statistics.median(ratios) if ratios else None,
            }
    return summary


def render(summary, rounds, duration):
    labels = [label for label, *_ in WORKLOADS]
    out = [
        "# Tunings: the default configuration against variants of it",
        "",
        f"Medians of {rounds} rounds of {duration}s; each cell: requests/s · p99 · ratio to the default "
        "(median of the rounds' ratios).",
        "",
        "| variant | " + " | ".join(labels) + " |",
        "| --- | " + " | ".join("---" for _ in labels) + " |",
    ]
    for name, workloads in summary.items():
        cells = []
        for label in labels:
            cell = workloads[label]
            ratio = f" · {cell['vs_default']:.2f}" if cell["vs_default"] is not None else ""
            cells.append(f"{cell['rps']:,.0f} · {cell['p99_ms']:,.0f} ms{ratio}")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"
