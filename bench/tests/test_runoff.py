"""The mixed runoff takes the default and its closest rivals; the target is judged on its rounds."""

import subprocess
import sys
from pathlib import Path

from benchmark import runoff, targets, tuning
from benchmark.plan import Server, metrics_off


def mixed(server, rps, via="nginx", clients=64):
    return {"server": server, "endpoint": "mixed", "via": via, "clients": clients, "rps": rps}


SERVERS = [
    Server("sync w4", "gunicorn"),
    Server("gevent w4", "gunicorn"),
    Server("gevent w1", "gunicorn"),
    Server("gevent w2 (default)", "gunicorn", default=True),
    Server("uvicorn", "uvicorn"),
]


def test_the_default_runs_against_the_two_best_other_flask_servers_of_the_single_runs():
    rows = [
        mixed("sync w4", 300),
        mixed("gevent w4", 1000),
        mixed("gevent w1", 900),
        mixed("gevent w2 (default)", 800),
        mixed("uvicorn", 5000),
        # Other paths and client counts do not rank anyone.
        mixed("sync w4", 9000, via="direct"),
        mixed("sync w4", 9000, clients=1000),
    ]
    names = [server.name for server in runoff.candidates(rows, SERVERS)]
    assert names == ["gevent w2 (default)", "gevent w2 (default), APP_METRICS=off", "gevent w4", "gevent w1"]


def test_the_servers_a_team_would_pick_instead_always_run_against_the_default():
    alternatives = [Server("granian", "granian", alternative=True), Server("uwsgi gevent", "uwsgi", alternative=True)]
    servers = [*SERVERS, *alternatives]
    rows = [
        mixed("gevent w4", 1000),
        mixed("gevent w1", 900),
        mixed("gevent w2 (default)", 800),
        mixed("granian", 100),
        mixed("uwsgi gevent", 950),
    ]
    names = [server.name for server in runoff.candidates(rows, servers)]
    # The two best others, one of them an alternative, then the other alternative however slow.
    assert names[2:] == ["gevent w4", "uwsgi gevent", "granian"]


def test_the_default_also_runs_with_app_metrics_off_as_the_others_count_no_metrics():
    rows = [mixed("gevent w4", 1000), mixed("gevent w2 (default)", 800), mixed("granian", 900)]
    servers = [*SERVERS, Server("granian", "granian", alternative=True)]
    default, alike, *others = runoff.candidates(rows, servers)
    assert alike.name == "gevent w2 (default), APP_METRICS=off"
    assert alike.env == {"APP_METRICS": "off"} and not alike.default
    assert default.counts_metrics and not alike.counts_metrics
    assert [server.counts_metrics for server in others] == [True, False]


def test_no_runoff_without_the_defaults_own_mixed_run():
    assert runoff.candidates([mixed("gevent w4", 1000)], SERVERS) == []


def rounds(*rps):
    return [{"rps": value, "p99_ms": 100.0, "errors": {}} for value in rps]


DEFAULT = "gunicorn gevent w2 (default)"
ALIKE = "gunicorn gevent w2 (default), APP_METRICS=off"


def runoff_result(default, alike, **others):
    """A runoff's result: the default, itself with APP_METRICS=off, then the others' rounds."""
    table = {DEFAULT: rounds(*default), ALIKE: rounds(*alike)} | {name: rounds(*rps) for name, rps in others.items()}
    counts = {name: name == DEFAULT for name in table}
    return {"default": DEFAULT, "metrics_off": ALIKE, "counts_metrics": counts, "rounds": table}


def test_the_mixed_target_weighs_the_default_without_metrics_against_the_best_other_on_medians():
    result = runoff_result(
        default=(900, 600, 880), alike=(1000, 700, 990), granian_wsgi_w2=(1020, 1030, 400), uwsgi_gevent_p2=(800,)
    )
    check = targets.mixed_default_is_best(result)
    # Medians 990 and 1020: 0.97 of the best other; the default with its metrics 880.
    assert check["holds"] is True
    assert check["measured"] == (
        "0.97 of granian_wsgi_w2 (medians of 3 paired rounds, requests/s: granian_wsgi_w2 1,020, "
        f"{ALIKE} 990, {DEFAULT} 880, uwsgi_gevent_p2 800); the default with its metrics: 0.86 of it; "
        f"Prometheus metrics counted by {DEFAULT}; not by {ALIKE}, granian_wsgi_w2, uwsgi_gevent_p2 "
        "(they are exported from gunicorn's hooks, so granian and uWSGI count none)"
    )


def test_a_clear_winner_over_the_default_without_metrics_is_named_with_its_lead_and_what_switching_takes():
    check = targets.mixed_default_is_best(runoff_result(default=(900,), alike=(1000,), **{"granian wsgi w2": (1250,)}))
    assert check["holds"] is False
    assert "granian wsgi w2 leads by 25%: to switch, the web image's command becomes granian" in check["measured"]


def test_the_default_with_its_metrics_does_not_count_as_another_server():
    # The default with its metrics slower than without is not "the best other".
    check = targets.mixed_default_is_best(runoff_result(default=(900,), alike=(1000,), w4=(800,)))
    assert check["holds"] is True and check["measured"].startswith("1.25 of w4")


def test_a_runoff_without_the_default_with_app_metrics_off_is_not_measured():
    older = {"default": DEFAULT, "rounds": {DEFAULT: rounds(1000), "granian": rounds(1010)}}
    assert targets.mixed_default_is_best(older)["holds"] is None
    assert targets.mixed_default_is_best(None)["holds"] is None
    # Nobody else ran: nothing to compare with.
    assert targets.mixed_default_is_best(runoff_result(default=(900,), alike=(1000,)))["holds"] is None


def test_the_runoff_runs_the_closed_loop_alone_and_says_which_rows_count_metrics(monkeypatch):
    calls = []

    def compare(containers, variants, rounds_, duration, workloads, open_loop, progress):
        calls.append({"workloads": workloads, "open_loop": open_loop, "progress": progress})
        label = workloads[0][0]
        run = {"rps": 1000.0, "p99_ms": 90.0, "errors": {}, "requests": 5000}
        return {variant.name: {label: [run] * rounds_} for variant in variants}, None

    monkeypatch.setattr(tuning, "compare", compare)
    default = Server(DEFAULT, "gunicorn", default=True)
    servers = [default, metrics_off(default), Server("granian wsgi w2", "granian", alternative=True)]
    progress = object()
    result = runoff.run(None, servers, 2, 5, progress)
    assert calls == [{"workloads": (runoff.WORKLOAD,), "open_loop": (), "progress": progress}]
    assert result["default"] == DEFAULT and result["metrics_off"] == ALIKE
    assert result["counts_metrics"] == {DEFAULT: True, ALIKE: False, "granian wsgi w2": False}
    assert result["rounds"]["granian wsgi w2"] == [{"rps": 1000.0, "p99_ms": 90.0, "errors": {}}] * 2


def test_the_runner_imports_first_without_a_cycle():
    """run imports runoff, which imports tuning: tuning must not need run back."""
    loadgen = Path(__file__).resolve().parents[1] / "loadgen"
    subprocess.run([sys.executable, "-c", "import benchmark.run"], cwd=loadgen, check=True, timeout=30)
