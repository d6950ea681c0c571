"""The report's open-loop, runoff and sweep sections, and --render-only on results from before
them."""

import math

from benchmark import report, sweep, targets


def window(t_s, p99):
    return {"t_s": t_s, "offered": 60, "answered": 60 if p99 else 0, "errors": 0, "p99_ms": p99}


def open_run(number, fraction, windows, *, kept_up=True):
    latency = {"p50_ms": 101.0, "p99_ms": 180.0, "p999_ms": 250.0, "max_ms": 300.0}
    return {
        "round": number,
        "fraction": fraction,
        "ceiling_rps": 3000.0,
        "offered_rps": 3000.0 * fraction,
        "answered": 100,
        "answered_rps": 2990.0 * fraction,
        "errors": {},
        "corrected": latency,
        "uncorrected": latency,
        "generator_kept_up": kept_up,
        "connections_sufficed": True,
        "generator_cores": 0.42,
        "windows": windows,
    }


CEILING = {
    "ceiling_rps": 3000.0,
    "bracketed": True,
    "first_guess_rps": 2100.0,
    "runs": [
        {"rate_rps": 2100.0, "served": True, "reasons": [], "p99_ms": 120.0},
        {"rate_rps": 4200.0, "served": False, "reasons": ["answered 3,100 of 4,200 requests/s offered"], "p99_ms": 0},
    ],
}
OPEN_LOOP = {
    "ceiling": CEILING,
    "unloaded": open_run("unloaded", 0.1, [window(0.0, 104.0)]),
    "rounds": [
        open_run(1, 0.8, [window(0.0, 150.0), window(0.25, 812.0), window(0.5, 160.0)]),
        open_run(1, 0.9, [window(0.0, 170.0), window(0.25, None)], kept_up=False),
    ],
}


def test_the_open_loop_section_gives_each_rounds_worst_window_and_when_it_was():
    text = "\n".join(report.open_loop_section(OPEN_LOOP))
    assert "The default's open-loop ceiling: 3,000 requests/s" in text
    assert "first guess 2,100; tried: 2,100 served, 4,200 not: answered 3,100 of 4,200 requests/s offered" in text
    assert "![p99 per 250 ms window](open-loop-windows.png)" in text
    assert "| round | offered | answered/s | p50 | p99 | p99.9 | errors | generator | worst 250 ms window |" in text
    assert "| unloaded | 300 (10%) | 299 | 101.0 ms | 180.0 ms | 250.0 ms | 0 | 0.42 cores | 104 ms at 0.00 s |" in text
    assert "| 1 | 2,400 (80%) | 2,392 | 101.0 ms | 180.0 ms | 250.0 ms | 0 | 0.42 cores | 812 ms at 0.25 s |" in text
    assert "| 0.42 cores · behind | 170 ms at 0.00 s |" in text


def test_a_run_with_no_window_answered_has_no_worst_one():
    assert report.worst_window([window(0.0, None)]) is None
    assert report.worst_window_cell({"windows": []}) == "none answered"


def test_the_windows_plot_draws_a_line_per_round_and_fraction_with_gaps_where_none_was_answered():
    series = report.window_series(OPEN_LOOP)
    assert [line[:3] for line in series] == [("round 1, 80%", 1, 0.8), ("round 1, 90%", 1, 0.9)]
    *_, times, p99s = series[1]
    assert times == [0.0, 0.25] and p99s[0] == 170.0 and math.isnan(p99s[1])
    assert report.window_series(None) == []


def test_a_ceiling_search_that_served_nothing_is_said_without_a_table():
    nothing = {"ceiling": CEILING | {"ceiling_rps": 0.0, "bracketed": False}, "unloaded": None, "rounds": []}
    text = "\n".join(report.open_loop_section(nothing))
    assert "ceiling: 0 requests/s (no rate tried was served)" in text and "| round |" not in text


def test_the_runoff_section_says_which_rows_count_metrics():
    runoff = {
        "default": "d",
        "metrics_off": "d, APP_METRICS=off",
        "counts_metrics": {"d": True, "d, APP_METRICS=off": False, "granian": False},
        "rounds": {
            "d": [{"rps": 900.0, "p99_ms": 110.0, "errors": {}}],
            "d, APP_METRICS=off": [{"rps": 1000.0, "p99_ms": 100.0, "errors": {}}],
            "granian": [{"rps": 1010.0, "p99_ms": 90.0, "errors": {}}],
        },
    }
    lines = report.runoff_section(runoff)
    assert lines[lines.index("| --- | --- | --- | --- | --- |") + 1 :] == [
        "| granian | 1,010 | 90 ms | 1,010 | not counted |",
        "| d, APP_METRICS=off | 1,000 | 100 ms | 1,000 | not counted |",
        "| **d** | 900 | 110 ms | 900 | counted |",
    ]
    assert report.runoff_section(None) == []


def sweep_point(server, default):
    latency = {"p50_ms": 101.0, "p99_ms": 150.0, "p999_ms": 300.0, "max_ms": 310.0}
    return {
        "server": server,
        "default": default,
        "workload": sweep.SLEEP_WORKLOAD,
        "fraction": 0.5,
        "offered_rps": 1500.0,
        "answered_rps": 1495.0,
        "errors": {},
        "corrected": latency,
        "uncorrected": latency,
        "generator_kept_up": True,
    }


def test_the_sweep_section_names_each_workloads_yardstick_and_each_servers_own_ceiling():
    sweeps = {
        "ceilings": {sweep.SLEEP_WORKLOAD: 3000.0},
        "ceiling_kinds": {sweep.SLEEP_WORKLOAD: sweep.OPEN_LOOP},
        "open_loop_ceilings": {
            "d": CEILING | {"default": True, "family": "gunicorn"},
            "granian": CEILING | {"ceiling_rps": 2000.0, "default": False, "family": "granian"},
        },
        "points": [sweep_point("d", True), sweep_point("granian", False)],
    }
    text = "\n".join(report.sweep_section(sweeps))
    assert f"### {sweep.SLEEP_WORKLOAD} (the default's open-loop ceiling: 3,000 requests/s)" in text
    assert "| **d** | 3,000 requests/s | 2,100 served, 4,200 not: answered 3,100 of 4,200" in text
    assert "| granian | 2,000 requests/s |" in text
    # A sweep from before the open-loop ceilings: the closed loop's, and no ceilings table.
    older = {"ceilings": sweeps["ceilings"], "points": sweeps["points"]}
    text = "\n".join(report.sweep_section(older))
    assert "(the default's closed-loop ceiling: 3,000 requests/s)" in text and "own open-loop ceiling" not in text


def results(**extra):
    return {
        "rows": [],
        "plan": {"name": "full", "duration": 2, "clients": [64], "paired_rounds": 5, "paired_duration": 5},
        "machine": {"date": "today", "cores": 2, "memory_gib": 24, "kernel": "Linux", "docker": "26.1"},
        "compute_ms": 7.5,
        "failures": [],
        "settings": {},
        **extra,
    }


def test_results_from_before_the_open_loop_ceiling_render_with_its_targets_not_measured():
    older = targets.judge(
        results(
            open_loop_rounds=[open_run(1, 0.8, [])],
            mixed_runoff={"default": "d", "rounds": {"d": [{"rps": 900.0, "p99_ms": 1.0, "errors": {}}]}},
            sweeps={"ceilings": {sweep.SLEEP_WORKLOAD: 3000.0}, "points": [sweep_point("d", True)]},
        )
    )
    text = report.render(older)
    table = text.split("## Targets")[1].split("\n\n")[1].splitlines()
    new_targets = ("80% of the default's open-loop ceiling", "vs unloaded", "vs granian's", "APP_METRICS=off")
    rows = [line for line in table if any(name in line for name in new_targets)]
    # The two of the metrics among them.
    assert len(rows) == 5
    assert all(row.endswith("| not measured in this plan | n/a |") for row in rows), rows
    assert "## The default in the open loop" not in text
    assert "| **d** | 900 | 1 ms | 900 |  |" in text


def test_new_results_render_the_open_loop_section_and_its_run_length():
    result = targets.judge(results(open_loop=OPEN_LOOP) | {"plan": results()["plan"] | {"open_loop_duration": 5}})
    text = report.render(result)
    assert "paired rounds: 5 of 5s per measurement, 5s per open-loop run." in text
    assert "## The default in the open loop (paired rounds)" in text
