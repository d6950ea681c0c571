"""The plans: the seed's configurations, the default one, each measured direct and behind nginx."""

from benchmark.plan import MIXED, make_plan


def test_the_full_plan_has_the_seed_matrix_and_the_other_servers():
    plan = make_plan("full", cpus=2)
    names = [server.name for server in plan.servers]
    assert len(names) == len(set(names))
    for name in (
        "flask dev server (threaded)",
        "waitress t4",
        "waitress t10",
        "uwsgi p4",
        "uwsgi p1 t4",
        "gunicorn sync w1",
        "gunicorn gthread w4 t4",
        "gunicorn gevent w4",
    ):
        assert name in names
    assert any(name.startswith("uvicorn") for name in names)
    assert plan.clients == (16, 64, 256, 1000)


def test_the_default_configuration_runs_once_with_no_gunicorn_variables():
    plan = make_plan("full", cpus=2)
    defaults = [server for server in plan.servers if server.default]
    assert len(defaults) == 1 and defaults[0].env == {}
    # gevent with one worker per core is the default on two cores: not measured twice.
    assert "gunicorn gevent w2" not in [server.name for server in plan.servers]
    assert "gunicorn gevent w2" in [server.name for server in make_plan("full", cpus=4).servers]


def test_every_server_is_measured_direct_and_behind_nginx_at_every_client_count():
    plan = make_plan("quick", cpus=2)
    points = list(plan.measurements())
    per_path = sum(len(plan.clients_of(endpoint)) for endpoint in plan.endpoints) + len(plan.mixed_clients)
    per_server = len(plan.vias) * per_path
    assert len(points) == len(plan.servers) * per_server
    assert {via for _, via, _, _ in points} == {"direct", "nginx"}
    assert sum(1 for _, _, endpoint, _ in points if endpoint is MIXED) == len(plan.servers) * 2


def test_the_quick_plan_keeps_one_of_each_server_family():
    families = {server.family for server in make_plan("quick", cpus=2).servers}
    assert families == {"flask-dev", "waitress", "uwsgi", "granian", "gunicorn", "uvicorn"}


def test_both_plans_set_the_servers_a_team_would_pick_instead_beside_the_default():
    for name in ("quick", "full"):
        alternatives = [server.name for server in make_plan(name, cpus=2).servers if server.alternative]
        assert alternatives == ["uwsgi gevent p2", "granian wsgi w2"], name


def test_the_cpu_bound_endpoint_runs_last_on_each_server_and_path():
    plan = make_plan("quick", cpus=2)
    points = [(server, via, endpoint) for server, via, endpoint, _ in plan.measurements()]
    first = [endpoint.name for server, via, endpoint in points if server is plan.servers[0] and via == "direct"]
    assert first[-len(plan.clients) :] == ["compute"] * len(plan.clients)
    assert first.index("mixed") < first.index("compute")
