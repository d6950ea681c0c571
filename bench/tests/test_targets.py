"""The targets are judged from the rows of one run; a missing measurement is said, not guessed."""

from benchmark import cpu, report, targets


def row(
    server,
    via,
    endpoint,
    clients,
    rps,
    *,
    default=False,
    family="gunicorn",
    seed=False,
    p99=10.0,
    fraction=None,
    bound=None,
    errors=0,
    shortfall=None,
):
    return {
        "server": server,
        "family": family,
        "seed": seed,
        "default": default,
        "via": via,
        "endpoint": endpoint,
        "clients": clients,
        "rps": rps,
        "p50_ms": p99 / 2,
        "p99_ms": p99,
        "errors": {"connect": errors, "read": 0, "write": 0, "status": 0, "timeout": 0},
        "bound_rps": bound,
        "bound_kind": "cpu" if bound else None,
        "fraction": fraction,
        "shortfall": shortfall,
    }


def by_target(rows):
    return {check["target"].split(":")[0].split(" (")[0]: check for check in targets.check_all(rows)}


def test_full_stack_ratio_holds_at_0_90_and_fails_below():
    rows = [row("d", "direct", "trivial", 64, 1000, default=True), row("d", "nginx", "trivial", 64, 900, default=True)]
    assert targets.full_stack_vs_direct(rows)["holds"] is True
    rows[1]["rps"] = 899
    check = targets.full_stack_vs_direct(rows)
    assert check["holds"] is False and check["measured"].startswith("0.90 (899 / 1000")


def test_static_ratios():
    rows = [
        row("nginx static", "nginx", "static", 64, 20000, family="static"),
        row("flask static", "direct", "static", 64, 1500, family="static"),
        row("nginx return 200", "nginx", "static", 64, 30000, family="static"),
    ]
    vs_flask, vs_return = targets.static_ratios(rows)
    assert vs_flask["holds"] is True and vs_flask["measured"].startswith("13.3x")
    assert vs_return["holds"] is True and vs_return["measured"].startswith("0.67")


def test_sleep_at_1000_needs_the_fraction_no_errors_and_a_short_p99():
    good = row("d", "nginx", "sleep", 1000, 2800, default=True, fraction=0.93, bound=3000, p99=240)
    assert targets.sleep_at_1000([good])["holds"] is True
    one_error = {"connect": 1, "read": 0, "write": 0, "status": 0, "timeout": 0}
    for change in ({"p99_ms": 260}, {"fraction": 0.85}, {"errors": one_error}):
        assert targets.sleep_at_1000([{**good, **change}])["holds"] is False


def test_seed_rows_below_their_bound_must_say_why():
    near = row("sync w1", "direct", "sleep", 16, 9.8, seed=True, fraction=0.98, bound=10)
    short = row(
        "sync w1", "direct", "sleep", 1000, 2, seed=True, fraction=0.2, bound=10, shortfall="connections refused"
    )
    assert targets.seed_rows_near_bound([near, short])["holds"] is True
    assert targets.seed_rows_near_bound([near, {**short, "shortfall": None}])["holds"] is False


def test_the_mixed_workload_compares_the_default_with_the_best_flask_configuration_only():
    rows = [
        row("default", "nginx", "mixed", 64, 960, default=True),
        row("gthread", "nginx", "mixed", 64, 1000),
        row("uvicorn", "nginx", "mixed", 64, 5000, family="uvicorn"),
    ]
    check = targets.mixed_default_is_best(rows)
    assert check["holds"] is True and "best: gthread" in check["measured"]
    rows[0]["rps"] = 940
    assert targets.mixed_default_is_best(rows)["holds"] is False


def test_what_was_not_measured_is_neither_held_nor_failed():
    assert all(check["holds"] is None for check in targets.check_all([]))


def test_the_report_shows_the_targets_and_every_row():
    rows = [
        row("d", "direct", "trivial", 64, 1000, default=True),
        row("d", "nginx", "trivial", 64, 950, default=True),
        row("sync w1", "direct", "sleep", 1000, 2, seed=True, fraction=0.2, bound=10, shortfall="connections refused"),
    ]
    result = {
        "rows": rows,
        "plan": {"name": "quick", "duration": 1, "clients": [64, 1000]},
        "machine": {"date": "today", "cores": 2, "memory_gib": 24, "kernel": "Linux", "docker": "26.1"},
        "compute_ms": 7.5,
        "targets": targets.check_all(rows),
        "retired_targets": targets.retired(rows),
        "failures": [],
        "settings": {"d": "workers=2"},
    }
    text = report.render(result)
    # Retired, with why and this run's figure.
    retired = text.split("## Retired targets")[1]
    assert "| Full stack vs the same gunicorn direct (trivial, 64 clients) | >= 0.90 | the hop itself costs" in retired
    assert "| 0.95 (950 / 1000 rps) |" in retired
    assert "Little's law" in retired
    assert "| **d** | nginx | 950 · 10 ms |" in text
    assert "sync w1, direct, sleep, 1000 clients: 20% of 10 rps. connections refused." in text


def test_paired_rounds_compare_the_medians_of_each_side():
    paired = {"trivial direct": [1000, 1100, 1000], "trivial nginx": [950, 1000, 850]}
    check = targets.full_stack_vs_direct([], paired)
    # Medians 950 / 1000.
    assert check["holds"] is True
    assert check["measured"] == "0.95 (medians of the rounds; each round: 0.95, 0.91, 0.85)"


def test_a_side_that_collapsed_in_one_round_of_three_moves_neither_median():
    paired = {"trivial direct": [1000, 100, 1000], "trivial nginx": [850, 870, 860]}
    check = targets.full_stack_vs_direct([], paired)
    assert check["holds"] is False and check["measured"].startswith("0.86 ")


def test_the_full_stack_target_shows_the_bare_proxy_of_the_same_rounds_beside_it():
    paired = {
        "trivial direct": [1000, 1100, 1000],
        "trivial nginx": [850, 900, 860],
        targets.BARE_PROXY: [880, 950, 900],
    }
    check = targets.full_stack_vs_direct([], paired)
    # The bare proxy informs; the target is still judged on the stack's own nginx.
    assert check["holds"] is False
    assert check["measured"].endswith(
        "an nginx that only proxies (no log, no added headers, no limits), in the same rounds: 0.90"
    )


def test_paired_static_rounds_judge_both_static_targets():
    paired = {"nginx static": [20000, 18000], "flask static": [1500, 2000], "nginx return 200": [25000, 30000]}
    vs_flask, vs_return = targets.static_ratios([], paired)
    assert vs_flask["holds"] is True and vs_flask["measured"].startswith("10.9x")
    assert vs_return["holds"] is True and vs_return["measured"].startswith("0.69")


def test_sleep_at_1000_says_when_the_cpu_bound_puts_the_p99_out_of_reach():
    row_ = row("d", "nginx", "sleep", 1000, 2300, default=True, fraction=0.92, bound=2500, p99=900)
    check = targets.sleep_at_1000([row_])
    assert check["holds"] is False
    assert "1000 clients wait 400 ms on average" in check["measured"]
    assert "out of reach" not in targets.sleep_at_1000([{**row_, "bound_rps": 10_000}])["measured"]


def paired_sleep_run(rps, p99=300.0, errors=0):
    return {"rps": rps, "p99_ms": p99, "errors": {"connect": errors, "read": 0, "write": 0, "status": 0, "timeout": 0}}


def test_sleep_at_1000_in_paired_rounds_is_measured_against_the_trivial_rate_of_the_same_rounds():
    paired = {"trivial nginx": [3000, 2000, 2800]}
    runs = {targets.SLEEP_1000: [paired_sleep_run(2700, 240), paired_sleep_run(1900, 260), paired_sleep_run(2600, 200)]}
    check = targets.sleep_at_1000([], paired, runs)
    # Medians: 2600 of 2800, p99 240 ms.
    assert check["holds"] is True
    assert check["measured"].startswith(
        "0.93 of 2800 rps (cpu bound, medians of 3 paired rounds; "
        "each round: 0.90, 0.95, 0.93), 0 errors, p99 240 ms (median of the rounds)"
    )
    runs[targets.SLEEP_1000][1] = paired_sleep_run(1900, 260, errors=1)
    assert targets.sleep_at_1000([], paired, runs)["holds"] is False


def test_a_round_with_no_trivial_answer_has_no_ceiling_and_breaks_nothing():
    # A stalled server answered nothing in one trivial round.
    paired = {"trivial nginx": [3000, 0, 2800]}
    runs = {targets.SLEEP_1000: [paired_sleep_run(2700, 240), paired_sleep_run(1900, 260), paired_sleep_run(2600, 200)]}
    check = targets.sleep_at_1000([], paired, runs)
    assert "each round: 0.90, no ceiling, 0.93" in check["measured"]
    assert targets.full_stack_vs_direct([], {**paired, "trivial direct": [3500, 0, 3400]})["holds"] is False


def test_sleep_at_1000_says_when_the_p99_is_out_of_reach():
    paired = {"trivial nginx": [2500]}
    check = targets.sleep_at_1000([], paired, {targets.SLEEP_1000: [paired_sleep_run(2400)]})
    assert check["holds"] is False
    assert "1000 clients wait 400 ms on average" in check["measured"]


def test_sleep_at_1000_names_the_concurrency_bound_when_it_is_the_lower_one():
    paired = {"trivial nginx": [20000, 30000]}
    runs = {targets.SLEEP_1000: [paired_sleep_run(9500, 120), paired_sleep_run(9300, 130)]}
    check = targets.sleep_at_1000([], paired, runs)
    assert check["measured"].startswith(
        "0.94 of 10000 rps (concurrency bound, medians of 2 paired rounds; each round: 0.95, 0.93)"
    )
    assert check["holds"] is True


def test_the_hop_target_is_the_full_stack_against_the_bare_proxy_of_the_same_rounds():
    paired = {"trivial direct": [1000, 1000], "trivial nginx": [900, 840], targets.BARE_PROXY: [930, 920]}
    check = targets.hop([], paired)
    # Medians 870 / 925.
    assert check["holds"] is False and check["measured"].startswith("0.94 (medians")
    assert targets.hop([], {**paired, "trivial nginx": [900, 880]})["holds"] is True
    # Without paired rounds there is no bare proxy to compare with.
    assert targets.hop([row("d", "nginx", "trivial", 64, 950, default=True)])["holds"] is None


def cpu_round(nginx, docker=None):
    measured = {"server": 300.0, "nginx": nginx, cpu.MACHINE: 500.0}
    return measured if docker is None else {**measured, cpu.DOCKER: docker}


def test_the_hop_target_tells_the_access_logs_share_from_the_stack_without_it():
    paired = {
        "trivial nginx": [900, 840],
        targets.BARE_PROXY: [1000, 1000],
        targets.STACK_WITHOUT_LOG: [960, 940],
    }
    paired_cpu = {
        "trivial nginx": [cpu_round(104, docker=21), cpu_round(108, docker=23)],
        targets.STACK_WITHOUT_LOG: [cpu_round(99, docker=1), cpu_round(101, docker=1)],
        targets.BARE_PROXY: [cpu_round(88, docker=1), cpu_round(90, docker=1)],
    }
    measured = targets.hop([], paired, paired_cpu)["measured"]
    # Medians: 950 / 1000; Docker 22 and 1, nginx 106 and 100.
    assert measured.endswith(
        "; the same stack without its access log: 0.95 of the bare proxy; CPU per request with the log "
        "and without: Docker's log pipeline 22 and 1 µs, nginx 106 and 100 µs"
    )
    # Docker's processes out of view (no `pid: host`): the ratio alone, no figure made up.
    unseen = {name: [cpu_round(r["nginx"]) for r in rounds] for name, rounds in paired_cpu.items()}
    assert targets.hop([], paired, unseen)["measured"].endswith("without its access log: 0.95 of the bare proxy")
    # A run from before the stack without its log was measured says nothing of it.
    older = {name: runs for name, runs in paired.items() if name != targets.STACK_WITHOUT_LOG}
    assert "access log" not in targets.hop([], older, paired_cpu)["measured"]


def open_round(p99, p999, ceiling=3000.0, errors=None, kept_up=True):
    return {
        "ceiling_rps": ceiling,
        "offered_rps": ceiling * targets.OPEN_LOOP_FRACTION,
        "corrected": {"p50_ms": 101.0, "p99_ms": p99, "p999_ms": p999, "max_ms": p999},
        "errors": errors or {},
        "generator_kept_up": kept_up,
    }


def test_the_latency_target_takes_the_medians_of_the_rounds_and_needs_no_error():
    rounds = [open_round(180, 300), open_round(900, 1500), open_round(200, 420)]
    check = targets.open_loop_latency(rounds)
    assert check["holds"] is True
    assert check["measured"].startswith("p99 200 ms, p99.9 420 ms, 0 errors at 2,400 requests/s offered (80% of 3,000")
    assert "each round's p99/p99.9 ms: 180/300, 900/1500, 200/420" in check["measured"]
    assert targets.open_loop_latency([*rounds[:2], open_round(200, 420, errors={"timeout": 1})])["holds"] is False
    assert targets.open_loop_latency([open_round(260, 400)])["holds"] is False
    assert targets.open_loop_latency([open_round(200, 510)])["holds"] is False


def test_the_latency_target_says_when_the_generator_fell_behind():
    check = targets.open_loop_latency([open_round(180, 300), open_round(190, 310, kept_up=False)])
    assert "the generator fell behind its schedule in round(s) 2" in check["measured"]


def test_a_round_with_no_ceiling_is_left_out_of_the_latency_target():
    assert targets.open_loop_latency([{"ceiling_rps": 0.0}])["holds"] is None
    assert targets.open_loop_latency([{"ceiling_rps": 0.0}, open_round(100, 200)])["holds"] is True


def test_the_report_tabulates_each_sweep_under_its_plot():
    point = open_round(150, 300) | {
        "server": "d",
        "default": True,
        "workload": "sleep/100, 1000 connections",
        "fraction": 0.8,
        "answered_rps": 2390.0,
        "uncorrected": {"p50_ms": 100.5, "p99_ms": 120.0, "p999_ms": 130.0, "max_ms": 140.0},
    }
    sweeps = {"ceilings": {"sleep/100, 1000 connections": 3000.0}, "points": [point]}
    text = "\n".join(report.sweep_section(sweeps))
    assert "![sleep/100, 1000 connections](sweep-sleep-100.png)" in text
    assert "| **d** | 2,400 (80%) | 2,390 | 101.0 ms | 150.0 ms | 300.0 ms | 120.0 ms | 0 |" in text
    behind = "\n".join(report.sweep_section({**sweeps, "points": [point | {"generator_kept_up": False}]}))
    assert "| 0 · behind |" in behind
