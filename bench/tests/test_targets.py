"""The targets are judged from the rows of one run; a missing measurement is said, not guessed."""

from benchmark import cpu, report, sweep, targets


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


def hop_cpu(stack, bare):
    """Paired rounds' CPU per request: the machine's through the full stack and the bare proxy."""
    return {
        "trivial nginx": [{"nginx": 100.0, cpu.MACHINE: machine} for machine in stack],
        targets.BARE_PROXY: [{"nginx": 90.0, cpu.MACHINE: machine} for machine in bare],
    }


def test_the_hop_is_judged_by_the_machines_cpu_per_request_with_the_requests_per_second_beside():
    paired = {"trivial nginx": [900, 800], targets.BARE_PROXY: [1000, 1000]}
    check = targets.hop(paired, hop_cpu(stack=[520, 540], bare=[500, 510]))
    # Medians 505 / 530: 0.95, while the requests/s say 0.85.
    assert check["holds"] is True
    assert check["measured"].startswith(
        "0.95: 530 µs through the full stack, 505 µs through the bare proxy (medians of the paired rounds; "
        "each round: 0.96, 0.94); requests/s 0.85 of the bare proxy's (each round: 0.90, 0.80)"
    )
    assert "nginx's own: 100 µs in the stack, 90 µs only proxying" in check["measured"]


def test_the_hop_fails_when_the_full_stack_costs_the_machine_more_than_the_margin():
    paired = {"trivial nginx": [1000, 1000], targets.BARE_PROXY: [1000, 1000]}
    check = targets.hop(paired, hop_cpu(stack=[560, 560], bare=[500, 510]))
    assert check["holds"] is False and check["measured"].startswith("0.90: ")


def test_the_hop_without_cpu_per_request_is_not_measured_and_still_shows_the_requests_per_second():
    check = targets.hop({"trivial nginx": [900], targets.BARE_PROXY: [1000]}, {})
    assert check["holds"] is None
    assert check["measured"] == "not measured in this plan; requests/s 0.90 of the bare proxy's (each round: 0.90)"
    assert targets.hop()["measured"] == "not measured in this plan"


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
    measured = targets.hop(paired, paired_cpu)["measured"]
    # Medians: 950 / 1000; Docker 22 and 1, nginx 106 and 100.
    assert measured.endswith(
        "; the same stack without its access log: 0.95 of the bare proxy; CPU per request with the log "
        "and without: Docker's log pipeline 22 and 1 µs, nginx 106 and 100 µs"
    )
    # Docker's processes out of view (no `pid: host`): the ratio alone, no figure made up.
    unseen = {name: [cpu_round(r["nginx"]) for r in rounds] for name, rounds in paired_cpu.items()}
    assert targets.hop(paired, unseen)["measured"].endswith("without its access log: 0.95 of the bare proxy")
    # A run from before the stack without its log was measured says nothing of it.
    older = {name: runs for name, runs in paired.items() if name != targets.STACK_WITHOUT_LOG}
    assert "access log" not in targets.hop(older, paired_cpu)["measured"]


def open_run(p99, p999=None, *, fraction=0.8, number=1, ceiling=3000.0, errors=None, **generator):
    """An open-loop run of the paired rounds, as openloop.summarize reports it."""
    return {
        "round": number,
        "fraction": fraction,
        "ceiling_rps": ceiling,
        "offered_rps": ceiling * fraction,
        "answered": 1000,
        "answered_rps": ceiling * fraction,
        "corrected": {"p50_ms": 101.0, "p99_ms": p99, "p999_ms": p999 or p99, "max_ms": p999 or p99},
        "errors": errors or {},
        "generator_kept_up": generator.get("kept_up", True),
        "connections_sufficed": generator.get("sufficed", True),
        "generator_cores": generator.get("cores", 0.4),
        "windows": [],
    }


def found_ceiling(rps=3000.0, bracketed=True):
    return {
        "ceiling_rps": rps,
        "bracketed": bracketed,
        "first_guess_rps": 2100.0,
        "runs": [
            {"rate_rps": 2100.0, "served": bool(rps), "reasons": [] if rps else ["errors timeout 9"], "p99_ms": 120.0},
            {"rate_rps": 4200.0, "served": False, "reasons": ["the generator fell behind its schedule"], "p99_ms": 0},
        ],
    }


def open_loop(*runs, unloaded=None, ceiling=None):
    return {"ceiling": ceiling or found_ceiling(), "unloaded": unloaded, "rounds": list(runs)}


def test_the_latency_target_takes_the_medians_of_the_rounds_at_80_percent_and_needs_no_error():
    runs = [open_run(180, 300, number=1), open_run(900, 1500, number=2), open_run(200, 420, number=3)]
    # The rounds' runs at 90% are another target's.
    ninety = open_run(5000, 9000, fraction=0.9, errors={"timeout": 4})
    check = targets.open_loop_latency(open_loop(*runs, ninety))
    assert check["holds"] is True
    assert check["measured"].startswith(
        "p99 200 ms, p99.9 420 ms, 0 errors at 2,400 requests/s offered (80% of 3,000 requests/s; "
        "medians of 3 paired rounds; each round's p99/p99.9 ms: 180/300, 900/1500, 200/420); "
        "the generator used 0.40 cores"
    )
    errors = open_run(200, 420, number=3, errors={"timeout": 1})
    assert targets.open_loop_latency(open_loop(*runs[:2], errors))["holds"] is False
    assert targets.open_loop_latency(open_loop(open_run(260, 400)))["holds"] is False
    assert targets.open_loop_latency(open_loop(open_run(200, 510)))["holds"] is False


def test_the_latency_target_names_the_rounds_where_the_generator_was_behind_or_short_of_connections():
    runs = [
        open_run(180, 300, number=1, cores=0.35),
        open_run(190, 310, number=2, kept_up=False, cores=0.9),
        open_run(190, 310, number=3, sufficed=False),
    ]
    measured = targets.open_loop_latency(open_loop(*runs))["measured"]
    assert "the generator used 0.35 to 0.90 cores" in measured
    assert "it fell behind its schedule in round(s) 2" in measured
    assert "requests waited for an idle connection in round(s) 3" in measured


def test_a_ceiling_search_that_served_no_rate_fails_the_latency_target_with_its_reasons():
    check = targets.open_loop_latency(open_loop(ceiling=found_ceiling(0.0, bracketed=False)))
    assert check["holds"] is False
    assert check["measured"] == (
        "no rate was served in the search for the open-loop ceiling: at 2,100 requests/s, errors timeout 9"
    )


def test_the_latency_target_is_not_measured_in_results_from_before_the_open_loop_ceiling():
    assert targets.open_loop_latency(None)["holds"] is None
    assert targets.open_loop_latency(open_loop())["holds"] is None


def test_an_unbracketed_ceiling_is_said_to_be_a_lower_bound():
    check = targets.open_loop_latency(open_loop(open_run(180), ceiling=found_ceiling(bracketed=False)))
    assert "80% of 3,000 requests/s or more (every rate tried was served)" in check["measured"]


def unloaded_run(p99=110.0):
    return open_run(p99, fraction=targets.UNLOADED_FRACTION) | {"round": "unloaded"}


def test_the_p99_up_to_90_percent_must_stay_within_twice_the_unloaded_one():
    runs = [open_run(200, fraction=0.8), open_run(210, fraction=0.9), open_run(230, fraction=0.9, number=2)]
    check = targets.latency_near_unloaded(open_loop(*runs, unloaded=unloaded_run(110)))
    # Medians: 200 and 220 ms, against 2 x 110.
    assert check["holds"] is True
    assert check["measured"] == (
        "unloaded p99 110 ms (300 requests/s offered), so at most 220 ms; "
        "medians of the paired rounds: 80% 200 ms (1.8x), 90% 220 ms (2.0x)"
    )
    runs[2] = open_run(260, fraction=0.9, number=2)
    assert targets.latency_near_unloaded(open_loop(*runs, unloaded=unloaded_run(110)))["holds"] is False


def test_the_flat_latency_target_says_how_busy_the_machine_was_at_each_fraction():
    busy = {"machine_cores": 2}
    runs = [
        open_run(200, fraction=0.8) | busy | {"machine_busy_cores": 1.6},
        open_run(210, fraction=0.9) | busy | {"machine_busy_cores": 1.7},
        open_run(230, fraction=0.9, number=2) | busy | {"machine_busy_cores": 1.9},
    ]
    unloaded = unloaded_run(110) | busy | {"machine_busy_cores": 0.2}
    check = targets.latency_near_unloaded(open_loop(*runs, unloaded=unloaded))
    assert check["measured"].endswith("; the machine's busy cores (of 2): 10% 0.20, 80% 1.60, 90% 1.80")


def sweep_point(fraction, p99, *, default=True, workload=sweep.SLEEP_WORKLOAD):
    return open_run(p99, fraction=fraction) | {"server": "d", "default": default, "workload": workload}


def sweeps_of(*points, kind=sweep.OPEN_LOOP):
    return {"ceiling_kinds": {sweep.SLEEP_WORKLOAD: kind}, "points": list(points)}


def test_the_sweeps_points_up_to_90_percent_count_too_when_the_sweep_ran_on_the_open_loop_ceiling():
    paired = open_loop(open_run(200, fraction=0.8), open_run(210, fraction=0.9), unloaded=unloaded_run(110))
    slow = sweep_point(0.5, 300)
    others = [
        sweep_point(0.1, 105),
        sweep_point(1.0, 5000),
        sweep_point(0.5, 900, default=False),
        sweep_point(0.5, 900, workload="mixed, 256 connections"),
    ]
    check = targets.latency_near_unloaded(paired, sweeps_of(*others, slow))
    assert check["holds"] is False
    assert check["measured"].endswith("; the sweep: 10% 105 ms, 50% 300 ms")
    # Beyond 90%, other servers, other workloads: none is judged here.
    assert targets.latency_near_unloaded(paired, sweeps_of(*others))["holds"] is True
    # A sweep on the closed-loop ceiling offered other rates: it is left out.
    assert targets.latency_near_unloaded(paired, sweeps_of(slow, kind=sweep.CLOSED_LOOP))["holds"] is True


def test_a_run_with_no_answer_is_no_latency_to_hold_to():
    silent = open_run(0.0, fraction=0.9) | {"answered": 0}
    check = targets.latency_near_unloaded(open_loop(open_run(200), silent, unloaded=unloaded_run(110)))
    assert check["holds"] is False and "90% no answer" in check["measured"]
    nothing = unloaded_run() | {"answered": 0}
    check = targets.latency_near_unloaded(open_loop(open_run(200), unloaded=nothing))
    assert check["holds"] is None and "got no answer" in check["measured"]


def test_the_p99_near_unloaded_is_not_measured_without_the_unloaded_run_or_the_rounds():
    assert targets.latency_near_unloaded(None)["holds"] is None
    assert targets.latency_near_unloaded(open_loop(open_run(200)))["holds"] is None
    assert targets.latency_near_unloaded(open_loop(unloaded=unloaded_run()))["holds"] is None


def swept_ceiling(rps, *, default=False, family="gunicorn", bracketed=True):
    return found_ceiling(rps, bracketed) | {"default": default, "family": family}


def test_the_defaults_open_loop_ceiling_must_reach_granians():
    ceilings = {
        "d": swept_ceiling(3000.0, default=True),
        "uwsgi gevent p2": swept_ceiling(2500.0, family="uwsgi"),
        "granian wsgi w2": swept_ceiling(2900.0, family="granian"),
    }
    check = targets.open_loop_ceiling_vs_granian({"open_loop_ceilings": ceilings})
    assert check["holds"] is True
    assert check["measured"] == (
        "3,000 requests/s against 2,900 requests/s, 1.03 of it; each server's: d 3,000 requests/s, "
        "uwsgi gevent p2 2,500 requests/s, granian wsgi w2 2,900 requests/s"
    )
    ceilings["granian wsgi w2"] = swept_ceiling(3100.0, family="granian")
    assert targets.open_loop_ceiling_vs_granian({"open_loop_ceilings": ceilings})["holds"] is False


def test_no_ceiling_of_the_defaults_is_not_at_least_granians_even_at_none():
    ceilings = {"d": swept_ceiling(0.0, default=True), "g": swept_ceiling(0.0, family="granian")}
    check = targets.open_loop_ceiling_vs_granian({"open_loop_ceilings": ceilings})
    assert check["holds"] is False and "0 requests/s against 0 requests/s;" in check["measured"]


def test_the_ceiling_target_is_not_measured_where_granian_was_not_swept():
    only_default = {"open_loop_ceilings": {"d": swept_ceiling(3000.0, default=True)}}
    assert targets.open_loop_ceiling_vs_granian(only_default)["holds"] is None
    assert targets.open_loop_ceiling_vs_granian({"points": []})["holds"] is None
    assert targets.open_loop_ceiling_vs_granian(None)["holds"] is None


def test_the_metrics_may_cost_the_trivial_endpoint_three_percent_at_most():
    paired = {"trivial direct": [4900, 4700, 5000], targets.METRICS_OFF: [5000, 5000, 4900]}
    paired_cpu = {
        "trivial direct": [{"server": 330.0, cpu.MACHINE: 400.0}] * 3,
        targets.METRICS_OFF: [{"server": 300.0, cpu.MACHINE: 370.0}] * 3,
    }
    check = targets.metrics_cost(paired, paired_cpu)
    # Medians 4,900 / 5,000.
    assert check["holds"] is True
    assert check["measured"] == (
        "0.98: 4,900 against 5,000 requests/s (medians of the rounds; each round: 0.98, 0.94, 1.02); "
        "CPU per request with the metrics and without: the server's 330 and 300 µs, the machine's 400 and 370 µs"
    )
    paired["trivial direct"] = [4800, 4700, 4800]
    assert targets.metrics_cost(paired, paired_cpu)["holds"] is False


def test_the_metrics_cost_is_not_measured_without_the_default_beside_it_with_app_metrics_off():
    assert targets.metrics_cost({"trivial direct": [4900]})["holds"] is None
    # Without CPU figures the ratio stands alone.
    paired = {"trivial direct": [4900], targets.METRICS_OFF: [5000]}
    assert targets.metrics_cost(paired)["measured"].endswith("each round: 0.98)")


def test_the_report_tabulates_each_sweep_under_its_plot():
    point = open_run(150, 300) | {
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
