"""python -m benchmark --plan full|quick: run a plan, write results.json, report.md and plots."""

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

import docker

from . import growth, growth_report, plots, report, targets, tuning
from .containers import Containers, DatabaseAccess
from .plan import Database, default_server, make_plan, tuning_variants
from .run import Runner, add_bounds, usable_cores


def machine_facts(cores):
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": cores,
        "memory_gib": round(pages / 2**30),
        "kernel": f"Linux {platform.release()}",
        "cpu": next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "unknown",
        ),
        "docker": docker.from_env().version()["Version"],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="benchmark")
    parser.add_argument("--plan", choices=("full", "quick", "tuning", "growth"), default="quick")
    parser.add_argument("--duration", type=int, help="seconds of load per measurement (default: the plan's)")
    parser.add_argument("--out", type=Path, default=Path("/results"))
    parser.add_argument(
        "--variants",
        nargs="*",
        default=(),
        help="tuning plan only: the variants whose names contain one of these words (the default always runs)",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="measure nothing: judge the targets and write the report and plots from OUT/results.json",
    )
    args = parser.parse_args(argv)
    if args.render_only:
        result = json.loads((args.out / "results.json").read_text())
        return write(result, args.out)

    cores = usable_cores()
    # PgBouncer's pool and each worker's (bench/compose.yaml sets both, and PgBouncer's own).
    database = Database(
        pgbouncer_pool=int(os.environ["BENCH_PGBOUNCER_POOL_SIZE"]),
        worker_pool=int(os.environ["BENCH_APP_DB_POOL_SIZE"]),
    )
    containers = Containers(
        network=os.environ["BENCH_NETWORK"],
        servers_image=os.environ["BENCH_SERVERS_IMAGE"],
        nginx_image=os.environ["BENCH_NGINX_IMAGE"],
        outbound_url=os.environ["BENCH_OUTBOUND_URL"],
        database=DatabaseAccess(
            host=os.environ["BENCH_DB_HOST"],
            port=int(os.environ["BENCH_DB_PORT"]),
            password_file=os.environ["BENCH_DB_PASSWORD_FILE"],
            pool_size=database.worker_pool,
        ),
    )
    if args.plan == "tuning":
        return compare_tunings(containers, cores, args.duration or 3, args.out, args.variants)
    if args.plan == "growth":
        return measure_growth(containers, cores, args.duration or 5, args.out)
    plan = make_plan(args.plan, cores, args.duration, database)
    runner = Runner(plan, containers, cores)
    print(
        f"benchmark: plan {plan.name}, {runner.progress.total} measurements of {plan.duration}s "
        f"on {len(plan.servers)} servers, about {runner.progress.estimate_left() / 60:.0f} min",
        flush=True,
    )
    rows = add_bounds(runner.run(), plan, cores, runner.compute_ms)

    result = {
        "machine": machine_facts(cores),
        "plan": {
            "name": plan.name,
            "duration": plan.duration,
            "clients": list(plan.clients),
            "paired_rounds": plan.paired_rounds,
            "paired_duration": plan.paired_duration,
            "open_loop_duration": plan.open_loop_duration,
            "database": {
                "pgbouncer_pool_size": plan.database.pgbouncer_pool,
                "app_db_pool_size": plan.database.worker_pool,
            },
        },
        "compute_ms": runner.compute_ms or 0.0,
        "settings": runner.settings,
        "failures": runner.failures,
        "rows": rows,
        "paired": runner.paired,
        "paired_cpu": runner.paired_cpu,
        "paired_runs": runner.paired_runs,
        "mixed_runoff": runner.runoff,
        "open_loop": runner.open_loop,
        "sweeps": runner.sweeps,
    }
    # The measurements first, as they are: should judging or plotting fail, nothing measured
    # is lost, and --render-only can try again.
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    return write(result, args.out)


def compare_tunings(containers, cores, duration, folder, chosen=(), rounds=3):
    variants = tuning_variants(cores, chosen)
    measured, open_loop_ceiling = tuning.compare(containers, variants, rounds, duration)
    summary = tuning.summarize(measured, variants[0].name)
    folder.mkdir(parents=True, exist_ok=True)
    facts = {"machine": machine_facts(cores), "open_loop_ceiling": open_loop_ceiling}
    (folder / "tuning.json").write_text(json.dumps(facts | {"summary": summary, "measured": measured}, indent=1) + "\n")
    text = tuning.render(summary, rounds, duration, open_loop_ceiling)
    (folder / "tuning.md").write_text(text)
    print(text, flush=True)
    return 0


def measure_growth(containers, cores, duration, folder, rounds=3):
    """How cost grows (benchmark/growth.py), with the host's scale timing if it ran first
    (bench/scale_timing.py writes scale.json in the same folder)."""
    containers.remove_leftovers()
    default = default_server(cores)
    print("benchmark: how cost grows (idle connections, sleeping requests, replicas)", flush=True)
    result = {
        "machine": machine_facts(cores),
        "duration": duration,
        "rounds": rounds,
        "replica_clients": growth.REPLICA_CLIENTS,
        "idle_connections": growth.measure_idle_connections(containers, default),
        "sleeping_worker": growth.measure_sleeping_worker(containers, default),
        "replicas": growth.measure_replicas(containers, default, duration, rounds),
    }
    scale = folder / "scale.json"
    if scale.exists():
        result["scale"] = json.loads(scale.read_text())["scale"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "growth.json").write_text(json.dumps(result, indent=1) + "\n")
    text = growth_report.render(result)
    (folder / "growth.md").write_text(text)
    plots.plot_growth(result, folder / "growth.png")
    print(text, flush=True)
    return 0


def write(result, folder):
    """Judge the targets, then write results.json, report.md and the plots; 1 if a server failed."""
    targets.judge(result)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    (folder / "report.md").write_text(report.render(result))
    written = plots.plot_all(result["rows"], report.ENDPOINT_TITLES, folder)
    written += plots.plot_sweeps(result.get("sweeps"), folder)
    written += plots.plot_open_loop_windows(result.get("open_loop"), folder)
    print(f"benchmark: wrote results.json, report.md and {len(written)} plots to {folder}", flush=True)
    for target in result["targets"]:
        print(f"  [{report.HOLDS[target['holds']]:>6}] {target['target']}: {target['measured']}", flush=True)
    if result["failures"]:
        print("benchmark: some servers failed to run:\n  " + "\n  ".join(result["failures"]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
