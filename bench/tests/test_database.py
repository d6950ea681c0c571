"""The database endpoint: how the servers reach it, PgBouncer's counters around a measurement,
and the report's rows with their connection bound."""

from benchmark import pgbouncer, report
from benchmark.containers import DatabaseAccess

# psql's unaligned SHOW STATS then SHOW POOLS (PgBouncer 1.26), trimmed to a few columns.
SHOW = """\
database|total_server_assignment_count|total_xact_count|total_query_count|total_xact_time|total_wait_time
app|29403|29621|88148|5100226201|1688158230
pgbouncer|0|2|2|0|0
database|user|cl_active|cl_waiting|sv_active|sv_idle|pool_mode
app|app|105|55|80|0|transaction
pgbouncer|pgbouncer|1|0|0|0|statement
"""


def counters(xacts, xact_us, queries, wait_us, in_progress=0):
    return {
        "total_xact_count": xacts,
        "total_xact_time": xact_us,
        "total_query_count": queries,
        "total_wait_time": wait_us,
        "in_progress": in_progress,
    }


def test_the_app_databases_counters_and_what_it_has_in_progress_are_read_by_column_name():
    # In progress: 80 transactions on a server connection, 55 waiting for one.
    assert pgbouncer.parse(SHOW) == counters(29621, 5100226201, 88148, 1688158230, in_progress=135)
    assert pgbouncer.parse(SHOW, database="other") is None
    assert pgbouncer.parse("") is None
    # SHOW STATS alone: the pools are missing, and so is the reading.
    assert pgbouncer.parse(SHOW.split("database|user")[0]) is None


def test_the_time_held_is_the_transactions_less_their_wait_for_a_connection():
    # 1000 transactions of 207 ms, 101 of them waiting for a server connection.
    before = counters(100, 1_000_000, 300, 500_000)
    after = counters(1100, 1_000_000 + 207_000_000, 3300, 500_000 + 101_000_000)
    measured = pgbouncer.per_transaction(before, after, connections=80, wait_ms=100)
    assert measured == {
        "connections": 80,
        "wait_ms": 100,
        "transactions": 1000,
        "in_progress_after": 0,
        "held_ms": 106.0,
        "queued_ms": 101.0,
        "queries": 3.0,
        "ceiling_rps": 754.7,
    }


def test_transactions_in_progress_at_a_snapshot_are_counted_with_the_ones_whose_time_is():
    # PgBouncer counts a transaction when it starts and adds its time when it ends: 80 started
    # before the first snapshot ended within, 80 started within have not ended at the second.
    before = counters(1000, 0, 3000, 0, in_progress=80)
    after = counters(1700, 70_000_000, 5100, 0, in_progress=80)
    measured = pgbouncer.per_transaction(before, after, connections=80, wait_ms=100)
    assert measured["transactions"] == 700
    assert measured["held_ms"] == 100.0
    assert measured["in_progress_after"] == 80
    # Not corrected, the 80 still running would pass for 80 that took no time.
    assert 70_000_000 / (1700 - 1000) / 1000 == 100.0
    assert 70_000_000 / (1700 - 1000 + 80) / 1000 < 90


def test_no_transaction_or_no_reading_is_no_figure():
    same = counters(5, 10, 15, 0)
    assert pgbouncer.per_transaction(same, same, connections=80, wait_ms=100) is None
    assert pgbouncer.per_transaction(None, same, connections=80, wait_ms=100) is None


def test_the_servers_get_the_database_as_the_stacks_web_service_does():
    # A path on the Docker host, not a password.
    host_file = "/srv/bench-run/db_password"
    access = DatabaseAccess(host="pgbouncer", port=6432, password_file=host_file, pool_size=80)
    assert access.environment() == {
        "APP_DB_HOST": "pgbouncer",
        "APP_DB_PORT": "6432",
        "APP_DB_PASSWORD_FILE": "/run/secrets/db_password",
        "APP_DB_POOL_SIZE": "80",
    }
    # The password is a read-only file, never a variable.
    assert access.volumes() == {host_file: {"bind": "/run/secrets/db_password", "mode": "ro"}}
    assert not any("PASSWORD" in name and name != "APP_DB_PASSWORD_FILE" for name in access.environment())


def db_row(server, via, rps, *, slots=None, held=None, default=False):
    measured = None
    if held is not None:
        measured = {"connections": 80, "wait_ms": 100, "held_ms": held, "queued_ms": 90.0, "queries": 3.0}
    return {
        "server": server,
        "family": "gunicorn",
        "seed": False,
        "default": default,
        "via": via,
        "endpoint": "db-sleep",
        "clients": 256,
        "rps": rps,
        "p50_ms": 300.0,
        "p99_ms": 450.0,
        "errors": {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0},
        "bound_rps": 800.0 if slots is None else slots * 10.0,
        "bound_kind": "database" if slots is None else "concurrency",
        "fraction": rps / (800.0 if slots is None else slots * 10.0),
        "shortfall": None,
        "db_connections": 80,
        "slots": slots,
        "database": measured,
    }


def test_the_report_states_each_database_rows_connection_bound_and_how_long_they_were_held():
    rows = [
        db_row("gunicorn gevent w2 (default)", "direct", 683, held=100.8, default=True),
        db_row("gunicorn sync w4", "nginx", 37, slots=4, held=101.0),
        db_row("granian wsgi w2", "direct", 600),
    ]
    result = {
        "rows": rows,
        "plan": {
            "name": "quick",
            "duration": 1,
            "clients": [64, 1000],
            "database": {"pgbouncer_pool_size": 80, "app_db_pool_size": 80},
        },
        "machine": {"date": "today", "cores": 2, "memory_gib": 24, "kernel": "Linux", "docker": "26.1"},
        "compute_ms": 7.5,
        "targets": [],
        "failures": [],
        "settings": {},
    }
    text = report.render(result)
    section = text.split("### IO-bound in the database")[1]
    assert "| server | via | connection bound | 256 clients |" in section
    assert "| **gunicorn gevent w2 (default)** | direct | db bound 80 | 683 · 450 ms · 85% |" in section
    assert "| gunicorn sync w4 | nginx | 4 slots; db bound 80 | 37 · 450 ms · 92% |" in section
    assert "PgBouncer holds at most 80 server connections, shared by every worker process" in section
    assert "| gunicorn gevent w2 (default) | direct | 256 | 683 | db bound 80 | 100.8 ms | 90.0 ms |" in section
    assert "| granian wsgi w2 | direct | 256 | 600 | db bound 80 | not read | not read |" in section
    # The other endpoints' tables have no such column.
    assert "connection bound" not in text.split("### IO-bound in the database")[0]
