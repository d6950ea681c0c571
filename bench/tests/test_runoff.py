"""The mixed runoff takes the default and its closest rivals; the target is judged on its rounds."""

import subprocess
import sys
from pathlib import Path

from benchmark import runoff, targets
from benchmark.plan import Server


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
    assert names == ["gevent w2 (default)", "gevent w4", "gevent w1"]


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
    assert names == ["gevent w2 (default)", "gevent w4", "uwsgi gevent", "granian"]


def test_no_runoff_without_the_defaults_own_mixed_run():
    assert runoff.candidates([mixed("gevent w4", 1000)], SERVERS) == []


def rounds(*rps):
    return [{"rps": value, "p99_ms": 100.0, "errors": {}} for value in rps]


def test_the_runoff_judges_the_target_on_medians_and_overrides_the_single_runs():
    single_runs = [
        mixed("gevent w2 (default)", 800) | {"family": "gunicorn", "default": True},
        mixed("gevent w4", 1000) | {"family": "gunicorn", "default": False},
    ]
    assert targets.mixed_default_is_best(single_runs)["holds"] is False
    result = {
        "default": "gevent w2 (default)",
        "rounds": {"gevent w2 (default)": rounds(1000, 700, 990), "gevent w4": rounds(1020, 1030, 400)},
    }
    check = targets.mixed_default_is_best(single_runs, result)
    # Medians 990 and 1020: 0.97 of the best.
    assert check["holds"] is True
    assert check["measured"] == (
        "0.97 of the best (medians of 3 paired rounds of the default, the best others of the single "
        "runs and the servers a team would pick instead, requests/s: gevent w4 1,020, gevent w2 (default) 990)"
    )
    result["rounds"]["gevent w4"] = rounds(1100, 1050, 1060)
    assert targets.mixed_default_is_best(single_runs, result)["holds"] is False


def test_a_clear_winner_is_named_with_its_lead_and_what_switching_to_it_takes():
    single_runs = [mixed("gunicorn gevent w2 (default)", 800) | {"family": "gunicorn", "default": True}]
    result = {
        "default": "gunicorn gevent w2 (default)",
        "rounds": {"gunicorn gevent w2 (default)": rounds(1000, 1000), "granian wsgi w2": rounds(1250, 1250)},
    }
    check = targets.mixed_default_is_best(single_runs, result)
    assert check["holds"] is False
    assert "granian wsgi w2 leads by 25%: to switch, the web image's command becomes granian" in check["measured"]


def test_a_default_that_wins_the_runoff_holds():
    result = {"default": "d", "rounds": {"d": rounds(900, 950), "w4": rounds(800, 850)}}
    check = targets.mixed_default_is_best([], result)
    assert check["holds"] is True and check["measured"].startswith("1.00 of the best")


def test_the_runner_imports_first_without_a_cycle():
    """run imports runoff, which imports tuning: tuning must not need run back."""
    loadgen = Path(__file__).resolve().parents[1] / "loadgen"
    subprocess.run([sys.executable, "-c", "import benchmark.run"], cwd=loadgen, check=True, timeout=30)
