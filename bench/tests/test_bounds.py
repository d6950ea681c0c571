"""The theoretical bounds the report compares each measurement with."""

import pytest

from benchmark import bounds
from benchmark.plan import (
    COMPUTE,
    DB_SLEEP,
    SLEEP,
    TRIVIAL,
    Database,
    default_server,
    flask_dev,
    gunicorn,
    uvicorn,
    waitress,
)


@pytest.mark.parametrize(
    "slots, clients, expected",
    [
        (4, 64, 40.0),  # sync w4: four requests at a time, 10 each per second
        (16, 16, 160.0),  # gthread w4 t4: every client served at once
        (16, 8, 80.0),  # fewer clients than slots: the clients are the limit
        (None, 1000, 10_000.0),  # gevent: one greenlet per client
    ],
)
def test_the_concurrency_bound_is_requests_in_flight_times_1000_over_the_wait(slots, clients, expected):
    assert bounds.concurrency_bound(slots, clients, 100) == expected


def test_the_cpu_bound_counts_processes_only_up_to_the_cores():
    assert bounds.cpu_bound(processes=4, cores=2, clients=64, request_ms=10) == 200.0
    assert bounds.cpu_bound(processes=1, cores=2, clients=64, request_ms=10) == 100.0


def test_threads_do_not_add_cpu_parallelism():
    server = gunicorn("gthread", 1, 4)
    assert bounds.bound_for(server, COMPUTE, 64, cores=2, compute_ms=10, cpu_ceiling=None) == (100.0, "cpu")


def test_an_io_bound_is_capped_by_what_the_server_did_on_the_trivial_endpoint():
    server = uvicorn(2)
    assert bounds.bound_for(server, SLEEP, 1000, cores=2, compute_ms=10, cpu_ceiling=3000) == (3000, "cpu")
    assert bounds.bound_for(server, SLEEP, 16, cores=2, compute_ms=10, cpu_ceiling=3000) == (160.0, "concurrency")


def test_the_trivial_endpoint_has_no_bound_of_its_own():
    assert bounds.bound_for(waitress(4), TRIVIAL, 64, cores=2, compute_ms=10, cpu_ceiling=3000) == (None, None)


def row(fraction, via="direct", kind="concurrency", **errors):
    counts = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0, **errors}
    return {"fraction": fraction, "via": via, "bound_kind": kind, "clients": 1000, "errors": counts}


def test_a_row_near_its_bound_needs_no_reason():
    assert bounds.shortfall_reason(row(0.95)) is None
    assert bounds.shortfall_reason(row(None)) is None


def test_a_short_row_says_what_was_measured():
    reason = bounds.shortfall_reason(row(0.4, connect=120, timeout=3))
    assert "120 connections refused" in reason
    assert "3 requests timed out" in reason


def test_a_short_cpu_bound_row_behind_nginx_names_what_shares_the_cores():
    assert "load generator and nginx" in bounds.shortfall_reason(row(0.7, via="nginx", kind="cpu"))


def test_clients_left_without_answers_are_a_reason():
    reason = bounds.shortfall_reason({**row(0.5), "clients_answered": 40.0})
    assert "only about 40 of 1000 clients got answers" in reason


def test_a_deep_queue_is_a_reason():
    assert "queued longer than the run" in bounds.shortfall_reason(row(0.3), clients_waiting_beyond_run=True)


# The database endpoint: PgBouncer's pool is shared by every worker process, each worker has a
# pool of its own, and the server's slots and the clients bound it as for any IO endpoint.
BENCH_POOLS = Database(pgbouncer_pool=80, worker_pool=80)


def test_pgbouncers_pool_bounds_the_database_wait_across_every_worker():
    # gevent w2 (the default on two cores): 1000 greenlets, but 80 server connections.
    default = default_server(2)
    assert bounds.in_flight(default, DB_SLEEP, 1000, BENCH_POOLS) == (80, "database")
    assert bound_of(default, DB_SLEEP, 1000, BENCH_POOLS) == (800.0, "database")
    # Four processes share the same 80, they do not get 80 each.
    assert bound_of(gunicorn("gevent", 4), DB_SLEEP, 1000, BENCH_POOLS) == (800.0, "database")


def test_the_workers_own_pools_bound_it_when_together_they_are_fewer():
    small = Database(pgbouncer_pool=80, worker_pool=10)
    assert small.connections(processes=2) == 20
    assert small.connections(processes=16) == 80
    assert bound_of(default_server(2), DB_SLEEP, 1000, small) == (200.0, "database")
    # The threaded development server is one process: its one pool is the bound.
    assert bound_of(flask_dev(), DB_SLEEP, 1000, small) == (100.0, "database")


def test_slots_or_clients_fewer_than_the_connections_are_the_bound_as_before():
    # sync w4: four requests at a time, whatever the pools.
    assert bound_of(gunicorn("sync", 4), DB_SLEEP, 256, BENCH_POOLS) == (40.0, "concurrency")
    # 64 clients cannot fill 80 connections.
    assert bound_of(default_server(2), DB_SLEEP, 64, BENCH_POOLS) == (640.0, "concurrency")
    # Equal: the clients are named, the database is not the narrower of the two.
    assert bound_of(default_server(2), DB_SLEEP, 80, BENCH_POOLS) == (800.0, "concurrency")


def test_the_database_bound_is_capped_by_the_cpu_ceiling_as_the_others_are():
    assert bounds.bound_for(
        default_server(2), DB_SLEEP, 1000, cores=2, compute_ms=10, cpu_ceiling=500, database=BENCH_POOLS
    ) == (500, "cpu")


def test_the_pools_do_not_bound_the_endpoints_that_hold_no_connection():
    assert bound_of(default_server(2), SLEEP, 1000, Database(pgbouncer_pool=20, worker_pool=10)) == (
        10_000.0,
        "concurrency",
    )


def bound_of(server, endpoint, clients, database):
    return bounds.bound_for(server, endpoint, clients, cores=2, compute_ms=10, cpu_ceiling=None, database=database)


def test_a_database_row_says_when_its_connections_were_held_beyond_the_wait():
    measured = {"connections": 80, "wait_ms": 100, "held_ms": 160.0, "queries": 3.0, "ceiling_rps": 500.0}
    reason = bounds.shortfall_reason({**row(0.6), "database": measured})
    assert "held its PgBouncer connection 160 ms, not 100" in reason
    assert "80 connections carry at most 500 requests/s" in reason
    # Held about as long as the wait: the connections are not the reason.
    assert "PgBouncer" not in bounds.shortfall_reason({**row(0.6), "database": {**measured, "held_ms": 104.0}})
    assert "PgBouncer" not in bounds.shortfall_reason({**row(0.6), "database": None})
