"""The open-loop sweep's plan: which servers, which rates, how many measurements."""

from dataclasses import replace

import pytest

from benchmark import sweep
from benchmark.plan import make_plan


def test_the_full_plan_sweeps_the_default_first_then_the_alternatives_and_the_asgi_reference():
    names = [server.name for server in sweep.servers(make_plan("full", cpus=2))]
    assert names[0] == "gunicorn gevent w2 (default)"
    assert names[1:] == ["uwsgi gevent p2", "granian wsgi w2", "uvicorn+starlette w2 (ASGI reference)"]


def test_the_quick_plan_sweeps_only_the_default_at_two_rates():
    plan = make_plan("quick", cpus=2)
    assert [server.name for server in sweep.servers(plan)] == ["gunicorn gevent w2 (default)"]
    # The mixed workload's closed-loop ceiling, then two rates of each workload.
    assert sweep.points(plan) == 1 + 2 * 2
    # The default's open-loop ceiling comes from the paired rounds.
    assert sweep.searches(plan) == 0


def test_the_full_sweep_goes_from_a_tenth_of_the_ceiling_to_all_of_it():
    plan = make_plan("full", cpus=2)
    rates = sweep.offered_rates(3000.0, plan.sweep_fractions)
    assert [round(rate) for _, rate in rates] == list(range(300, 3001, 300))
    assert sweep.points(plan) == 1 + 4 * 2 * 10
    # Each server's own open-loop ceiling but the default's, which the paired rounds found.
    assert sweep.searches(plan) == 3


def test_without_paired_rounds_the_sweep_searches_the_defaults_ceiling_too():
    assert sweep.searches(replace(make_plan("full", cpus=2), paired_rounds=0)) == 4
    assert sweep.searches(replace(make_plan("full", cpus=2), sweep_fractions=())) == 0


def test_sleep_is_offered_fractions_of_the_open_loop_ceiling_and_the_mix_of_the_closed_loop_one():
    assert sweep.yardstick(sweep.SLEEP_WORKLOAD, 2500.0) == sweep.OPEN_LOOP
    # A search that served no rate leaves the closed loop's as the yardstick.
    assert sweep.yardstick(sweep.SLEEP_WORKLOAD, 0.0) == sweep.CLOSED_LOOP
    assert sweep.yardstick("mixed, 256 connections", 2500.0) == sweep.CLOSED_LOOP


def test_no_ceiling_means_no_sweep():
    with pytest.raises(ValueError, match="no ceiling"):
        sweep.offered_rates(0.0, (0.5,))


def test_each_workload_has_its_own_plot_file():
    assert [sweep.sweep_file(name) for name, _, _ in sweep.WORKLOADS] == ["sweep-sleep-100.png", "sweep-mixed.png"]
