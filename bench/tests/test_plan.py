"""The plans: the seed's configurations, the default one, each measured direct and behind nginx."""

from dataclasses import replace

from benchmark.plan import (
    DB_SLEEP,
    MIXED,
    OPEN_LOOP_MIN_DURATION,
    SLEEP,
    Database,
    default_server,
    flask_dev,
    granian,
    gunicorn,
    make_plan,
    metrics_off,
)


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


def test_the_database_endpoint_joins_the_io_matrix_at_the_same_client_counts_in_the_full_plan():
    plan = make_plan("full", cpus=2)
    assert DB_SLEEP in plan.endpoints
    assert plan.clients_of(DB_SLEEP) == plan.clients_of(SLEEP) == (16, 64, 256, 1000)
    measured = {(server.name, via) for server, via, endpoint, _ in plan.measurements() if endpoint is DB_SLEEP}
    assert measured == {(server.name, via) for server in plan.servers for via in plan.vias}


def test_the_quick_plan_measures_the_database_once_per_server_and_path_where_the_pool_binds():
    plan = make_plan("quick", cpus=2)
    counts = [clients for _, _, endpoint, clients in plan.measurements() if endpoint is DB_SLEEP]
    assert counts == [256] * len(plan.servers) * len(plan.vias)
    # More clients than PgBouncer's connections, and their queue well inside one run.
    (clients,) = plan.clients_of(DB_SLEEP)
    assert clients > plan.database.pgbouncer_pool
    assert clients / plan.database.pgbouncer_pool * DB_SLEEP.io_ms / 1000 < plan.duration / 2


def test_the_database_endpoint_runs_before_the_cpu_bound_one():
    points = [endpoint.name for endpoint, _ in make_plan("quick", cpus=2).points()]
    assert points.index("db-sleep") < points.index("compute")


def test_the_plans_carry_the_pools_they_are_given():
    pools = Database(pgbouncer_pool=20, worker_pool=10)
    assert make_plan("quick", cpus=2, database=pools).database == pools
    assert make_plan("full", cpus=2).database == Database(pgbouncer_pool=80, worker_pool=80)


def test_the_database_warm_up_grows_the_pools_as_far_as_the_measurements_use_them():
    quick, full = make_plan("quick", cpus=2), make_plan("full", cpus=2)
    # gevent w2: both workers' pools of 80, under the 256 clients measured.
    assert quick.database_warmup_clients(default_server(2)) == 160
    # One process: its one pool.
    assert quick.database_warmup_clients(flask_dev()) == 80
    # Four requests at a time: more would only queue, and leave a backlog.
    assert quick.database_warmup_clients(gunicorn("sync", 4)) == 4
    assert full.database_warmup_clients(gunicorn("gevent", 4)) == 320
    assert make_plan("quick", cpus=2, database=Database(80, 10)).database_warmup_clients(default_server(2)) == 20


def test_open_loop_runs_over_1000_connections_last_long_enough_to_settle_in_every_plan():
    quick, full = make_plan("quick", cpus=2), make_plan("full", cpus=2)
    # The quick plan's paired rounds are shorter; its open-loop runs are not.
    assert quick.paired_duration < OPEN_LOOP_MIN_DURATION == quick.open_loop_duration
    assert full.open_loop_duration == full.paired_duration >= OPEN_LOOP_MIN_DURATION
    assert replace(full, paired_duration=8).open_loop_duration == 8


def test_the_default_with_app_metrics_off_is_the_same_server_counting_no_metrics():
    default = default_server(2)
    alike = metrics_off(default)
    assert alike.name == "gunicorn gevent w2 (default), APP_METRICS=off"
    assert alike.env == {"APP_METRICS": "off"} and alike.processes == default.processes
    assert not (alike.default or alike.seed or alike.alternative)
    assert default.counts_metrics and not alike.counts_metrics
    # Only gunicorn's hooks export the metrics.
    assert gunicorn("sync", 4).counts_metrics and not granian(2).counts_metrics and not flask_dev().counts_metrics
