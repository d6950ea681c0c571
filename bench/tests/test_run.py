"""The runner's paired rounds and sweep, with the containers, wrk and the open loop faked:
what runs, at which rates and in which order, and what the results keep."""

from dataclasses import replace

import pytest

from benchmark import cpu, run, sweep
from benchmark.plan import SLEEP, TRIVIAL, default_server, make_plan
from benchmark.targets import METRICS_OFF, SLEEP_1000

# The rate each server serves in the fake open loop, and what wrk gets from it on sleep/100.
LIMITS = {"gunicorn gevent w2 (default)": 3000.0, "granian wsgi w2": 2000.0}
DEFAULT_LIMIT = 2500.0
CLOSED_LOOP_SLEEP_RPS = 2000.0


class FakeContainer:
    def __init__(self, alias, server):
        self.alias, self.server = alias, server


class FakeContainers:
    client = None
    network = "bench"

    def __init__(self, failing=()):
        self.started, self.stopped, self.failing = [], [], failing

    def start_server(self, server, alias="web", extra_aliases=()):
        if server.name in self.failing:
            raise RuntimeError(f"{server.name} did not start")
        self.started.append(FakeContainer(alias, server))
        return self.started[-1]

    def start_nginx(self, server, alias="nginx", upstream="web"):
        return FakeContainer(alias, server)

    def stop(self, container):
        self.stopped.append(container)

    def remove_leftovers(self):
        pass

    def serving(self):
        """The server the fake load reaches: the last one started under the alias `web`."""
        return next(c.server for c in reversed(self.started) if c.alias == "web")


def open_loop_result(rate, limit):
    served = rate <= limit
    latency = {"p50_ms": 101.0, "p99_ms": 120.0 if served else 900.0, "p999_ms": 150.0, "max_ms": 160.0}
    return {
        "offered_rps": rate,
        "answered": 100,
        "answered_rps": rate if served else limit,
        "errors": {},
        "corrected": latency,
        "uncorrected": latency,
        "generator_kept_up": True,
        "connections_sufficed": served,
        "generator_cores": 0.3,
        "windows": [{"t_s": 0.0, "offered": 10, "answered": 10, "errors": 0, "p99_ms": 120.0}],
    }


@pytest.fixture
def fakes(monkeypatch):
    """The fake containers, and every wrk run, open-loop run and CPU meter the runner makes."""
    containers = FakeContainers()
    made = {"wrk": [], "open_loop": [], "meters": []}

    def wrk_run(url, clients, duration, mix=()):
        made["wrk"].append(url)
        rps = CLOSED_LOOP_SLEEP_RPS if url.endswith(SLEEP.path) else 1000.0
        return {"requests": 1000, "rps": rps, "p99_ms": 10.0, "errors": {"connect": 0}}

    def open_loop_run(url, rate, duration_s, connections, mix=(), processes=1):
        server = containers.serving().name
        call = {"url": url, "rate": rate, "duration": duration_s, "connections": connections, "processes": processes}
        made["open_loop"].append(call | {"server": server})
        return open_loop_result(rate, LIMITS.get(server, DEFAULT_LIMIT))

    class Meter:
        def __init__(self, parts):
            self.parts = parts
            made["meters"].append(self)

        def snapshot(self):
            return {"server": 0.0, cpu.MACHINE: 0.0}

    monkeypatch.setattr(run.wrk, "run", wrk_run)
    monkeypatch.setattr(run.openloop, "run", open_loop_run)
    monkeypatch.setattr(run, "CpuMeter", Meter)
    monkeypatch.setattr(run, "settles", lambda *args, **kwargs: True)
    monkeypatch.setattr(run, "wait_until_serving", lambda *args, **kwargs: None)
    return containers, made


def sleep_row(server, rps):
    """The server's single run on sleep/100 at 1000 clients behind nginx."""
    return {"server": server.name, "endpoint": "sleep", "clients": 1000, "via": "nginx", "rps": rps}


def paired_runner(containers, plan=None):
    """A runner at the start of its paired rounds: the default and its nginx deployed."""
    runner = run.Runner(plan or make_plan("quick", cpus=2), containers, cores=2)
    default = default_server(2)
    runner.deployed = {"server": containers.start_server(default), "nginx": FakeContainer("nginx", default)}
    return runner, default


def test_the_paired_rounds_start_with_the_defaults_open_loop_ceiling_and_its_unloaded_run(fakes):
    containers, made = fakes
    runner, default = paired_runner(containers)
    runner.rows = [sleep_row(default, 1800.0)]
    runner.run_paired(default)
    found = runner.open_loop["ceiling"]
    # First guess: 0.7 x the single run's closed-loop rate; then bracketed and narrowed.
    assert found["first_guess_rps"] == 1260.0 and found["bracketed"]
    assert LIMITS[default.name] * 0.9 < found["ceiling_rps"] <= LIMITS[default.name]
    search_runs = len(found["runs"])
    assert [call["rate"] for call in made["open_loop"][:search_runs]] == [run["rate_rps"] for run in found["runs"]]
    unloaded = made["open_loop"][search_runs]
    assert unloaded["rate"] == pytest.approx(0.1 * found["ceiling_rps"])
    assert runner.open_loop["unloaded"]["fraction"] == 0.1


def test_each_paired_round_runs_the_open_loop_at_80_and_90_percent_of_that_ceiling(fakes):
    containers, made = fakes
    runner, default = paired_runner(containers)
    runner.run_paired(default)
    ceiling = runner.open_loop["ceiling"]["ceiling_rps"]
    rounds = runner.open_loop["rounds"]
    # Every other round the other way round, as the closed-loop measurements go.
    assert [(r["round"], r["fraction"]) for r in rounds] == [(1, 0.8), (1, 0.9), (2, 0.9), (2, 0.8)]
    assert [r["offered_rps"] for r in rounds] == [pytest.approx(r["fraction"] * ceiling) for r in rounds]
    assert all(r["ceiling_rps"] == ceiling and r["windows"] for r in rounds)
    # One generator process, 1000 connections, long enough for them though the quick plan's rounds are short.
    for call in made["open_loop"]:
        assert call["url"] == run.NGINX + SLEEP.path
        assert (call["duration"], call["connections"], call["processes"]) == (5, 1000, 1)


def test_the_default_without_metrics_runs_beside_it_measured_right_after_trivial_direct_then_goes(fakes):
    containers, made = fakes
    runner, default = paired_runner(containers)
    runner.run_paired(default)
    (beside,) = [c for c in containers.started if c.alias == run.METRICS_OFF_ALIAS]
    assert beside.server.env == {"APP_METRICS": "off"}
    assert containers.stopped == [beside]
    assert len(runner.paired_runs[METRICS_OFF]) == len(runner.paired_cpu[METRICS_OFF]) == 2
    # After its warm-up, the two rounds' measurements.
    paired = [url for url in made["wrk"] if url in run.PAIRED.values()][-2 * len(run.PAIRED) :]
    direct, without = run.PAIRED["trivial direct"], run.PAIRED[METRICS_OFF]
    # Round 1 forwards, round 2 backwards: neighbours in time either way.
    first, second = paired[: len(run.PAIRED)], paired[len(run.PAIRED) :]
    assert first.index(without) == first.index(direct) + 1
    assert second.index(without) == second.index(direct) - 1
    # Its CPU per request is counted as the server's.
    meters = [meter for meter in made["meters"] if meter.parts["server"] is beside]
    assert len(meters) == 1 and meters[0].parts["nginx"] is runner.deployed["nginx"]


def test_a_default_that_serves_no_rate_gets_no_open_loop_runs_but_keeps_its_paired_rounds(fakes, monkeypatch):
    containers, made = fakes
    monkeypatch.setitem(LIMITS, "gunicorn gevent w2 (default)", 0.0)
    runner, default = paired_runner(containers)
    runner.run_paired(default)
    assert runner.open_loop["ceiling"]["ceiling_rps"] == 0.0
    assert runner.open_loop["unloaded"] is None and runner.open_loop["rounds"] == []
    assert len(made["open_loop"]) == len(runner.open_loop["ceiling"]["runs"])
    assert len(runner.paired_runs["trivial nginx"]) == 2


def test_the_first_guess_comes_from_the_paired_rounds_then_the_single_run_then_a_wrk_run(fakes):
    containers, made = fakes
    default = default_server(2)
    rows = [sleep_row(default, 1800.0)]
    paired_runs = {SLEEP_1000: [{"rps": 2600.0}, {"rps": 2400.0}, {"rps": 100.0}]}
    assert run.closed_loop_sleep_rps(rows, paired_runs, default) == 2400.0
    assert run.closed_loop_sleep_rps(rows, {SLEEP_1000: []}, default) == 1800.0
    other = replace(default, name="granian wsgi w2", default=False)
    # The paired rounds are the default's alone.
    assert run.closed_loop_sleep_rps(rows, paired_runs, other) is None
    runner = run.Runner(make_plan("quick", cpus=2), containers, cores=2)
    containers.start_server(default)
    found = runner.search_open_loop_ceiling(default, run.NGINX)
    assert made["wrk"] == [run.NGINX + SLEEP.path]
    assert found["first_guess_rps"] == 0.7 * CLOSED_LOOP_SLEEP_RPS


def sweeping_runner(containers, open_loop_ceiling_rps):
    """A runner of the full plan past its single runs, with the paired rounds' ceiling found."""
    runner = run.Runner(make_plan("full", cpus=2), containers, cores=2)
    runner.compute_ms = 7.0
    runner.open_loop = {"ceiling": {"ceiling_rps": open_loop_ceiling_rps, "bracketed": True, "runs": []}}
    return runner


def test_the_sweep_offers_fractions_of_the_defaults_open_loop_ceiling_on_sleep_and_of_wrks_on_the_mix(fakes):
    containers, _ = fakes
    runner = sweeping_runner(containers, 3000.0)
    runner.run_sweeps()
    assert runner.sweeps["ceilings"] == {sweep.SLEEP_WORKLOAD: 3000.0, "mixed, 256 connections": 1000.0}
    assert runner.sweeps["ceiling_kinds"] == {
        sweep.SLEEP_WORKLOAD: "open loop",
        "mixed, 256 connections": "closed loop",
    }
    granian = [p for p in runner.sweeps["points"] if p["server"] == "granian wsgi w2"]
    sleep = [p["offered_rps"] for p in granian if p["workload"] == sweep.SLEEP_WORKLOAD]
    assert sleep == [pytest.approx(3000.0 * step / 10) for step in range(1, 11)]


def test_the_sweep_searches_each_servers_own_open_loop_ceiling_and_reuses_the_defaults(fakes):
    containers, made = fakes
    runner = sweeping_runner(containers, 3000.0)
    runner.run_sweeps()
    found = runner.sweeps["open_loop_ceilings"]
    assert list(found) == [server.name for server in sweep.servers(runner.plan)]
    default = found["gunicorn gevent w2 (default)"]
    assert default == {"default": True, "family": "gunicorn", **runner.open_loop["ceiling"]}
    granian = found["granian wsgi w2"]
    assert granian["family"] == "granian" and not granian["default"] and granian["bracketed"]
    assert 0.9 * LIMITS["granian wsgi w2"] < granian["ceiling_rps"] <= LIMITS["granian wsgi w2"]
    # Each server's search first, on sleep/100 over 1000 connections behind nginx, each run as
    # long as the paired rounds' open-loop ones; none for the default.
    for server, ceiling in found.items():
        calls = [call for call in made["open_loop"] if call["server"] == server][: len(ceiling["runs"])]
        assert [call["rate"] for call in calls] == [
            pytest.approx(tried["rate_rps"], abs=0.1) for tried in ceiling["runs"]
        ]
        assert all(call["url"] == run.NGINX + SLEEP.path and call["connections"] == 1000 for call in calls)
        assert all(call["duration"] == runner.plan.open_loop_duration for call in calls)
    assert len(made["open_loop"]) == len(runner.sweeps["points"]) + sum(len(c["runs"]) for c in found.values())


def test_a_default_whose_search_served_nothing_is_swept_on_its_closed_loop_ceiling(fakes):
    containers, _ = fakes
    runner = sweeping_runner(containers, 0.0)
    runner.run_sweeps()
    assert runner.sweeps["ceilings"][sweep.SLEEP_WORKLOAD] == CLOSED_LOOP_SLEEP_RPS
    assert runner.sweeps["ceiling_kinds"][sweep.SLEEP_WORKLOAD] == "closed loop"


def test_without_the_defaults_sweep_no_server_is_offered_fractions_of_its_own_ceiling(fakes):
    containers, _ = fakes
    containers.failing = ("gunicorn gevent w2 (default)",)
    runner = sweeping_runner(containers, 3000.0)
    runner.run_sweeps()
    assert runner.sweeps["points"] == [] and runner.sweeps["ceilings"] == {}
    assert "granian wsgi w2" in runner.sweeps["open_loop_ceilings"]
    assert runner.failures == ["sweep of gunicorn gevent w2 (default): gunicorn gevent w2 (default) did not start"]


def test_the_estimate_counts_the_open_loop_runs_at_their_own_length():
    plan = make_plan("quick", cpus=2)
    total, seconds = run.planned(plan)
    points = sum(1 for _ in plan.measurements()) + len(plan.static_measurements())
    # Each round: every paired measurement; the runoff: the default, itself without metrics,
    # two rivals and the two alternatives.
    paired = plan.paired_rounds * len(run.PAIRED) + plan.paired_rounds * (2 + 2 + 2)
    # The default's ceiling search, its unloaded run, and 80% and 90% in each round.
    open_loop = sweep.SEARCH_RUNS + 1 + plan.paired_rounds * 2
    sweeping = 1 + 2 * 2
    assert total == points + paired + open_loop + sweeping
    assert seconds == (
        points * (plan.duration + 1)
        + paired * (plan.paired_duration + 1)
        + open_loop * (5 + 2)
        + sweeping * (plan.sweep_duration + 2)
    )


def test_the_full_plans_estimate_adds_a_search_per_server_swept_beside_the_default():
    plan = make_plan("full", cpus=2)
    without_others = replace(plan, sweep_others=False)
    total, _ = run.planned(plan)
    fewer, _ = run.planned(without_others)
    three_others = 3 * sweep.SEARCH_RUNS + 3 * len(sweep.WORKLOADS) * len(plan.sweep_fractions)
    assert total - fewer == three_others


def test_the_paired_measurements_reach_the_default_without_metrics_on_its_own_alias():
    assert run.PAIRED[METRICS_OFF] == f"http://{run.METRICS_OFF_ALIAS}:8000{TRIVIAL.path}"
    assert list(run.PAIRED).index(METRICS_OFF) == list(run.PAIRED).index("trivial direct") + 1
