"""How cost grows (benchmark/growth.py, growth_report.py, bench/scale_timing.py): holding idle
connections and sending requests at once against a real HTTP server on 127.0.0.1, and the
arithmetic and wording of the tables from known figures."""

import importlib.util
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from benchmark import growth, growth_report

ROOT = Path(__file__).resolve().parents[2]


def load_scale_timing():
    spec = importlib.util.spec_from_file_location("scale_timing", ROOT / "bench" / "scale_timing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class KeepAliveHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Connections after this many are answered 503 and closed, as a full server would.
    capacity = None
    served = 0
    lock = threading.Lock()

    def do_GET(self):
        with KeepAliveHandler.lock:
            KeepAliveHandler.served += 1
            over = self.capacity is not None and KeepAliveHandler.served > self.capacity
        body = b"full\n" if over else b"x" * 3000
        self.send_response(503 if over else 200)
        self.send_header("Content-Length", str(len(body)))
        if over:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    KeepAliveHandler.served = 0
    KeepAliveHandler.capacity = None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), KeepAliveHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_held_connections_stay_open_after_their_answer(server):
    host, port = server.server_address
    with growth.HeldConnections(host, port, "/static/site.css", 50) as held:
        assert held.refused == 0
        assert held.open_now() == 50
    assert KeepAliveHandler.served == 50


def test_connections_a_full_server_refuses_or_closes_are_counted_not_held(server):
    KeepAliveHandler.capacity = 30
    host, port = server.server_address
    with growth.HeldConnections(host, port, "/", 40) as held:
        assert held.refused == 10
        assert held.open_now() == 30


def test_a_connection_the_server_closes_later_no_longer_counts(server):
    host, port = server.server_address
    KeepAliveHandler.timeout = 0.3
    try:
        with growth.HeldConnections(host, port, "/", 5) as held:
            assert held.open_now() == 5
            time.sleep(1.0)
            assert held.open_now() == 0
    finally:
        KeepAliveHandler.timeout = None


def test_sent_requests_are_all_answered_later(server):
    host, port = server.server_address
    with growth.SentRequests(host, port, "/", 20) as sent:
        assert sent.statuses() == [200] * 20


def test_the_memory_docker_stats_shows_is_usage_less_inactive_file():
    cgroup_v2 = {
        "usage": 50 * 2**20,
        "stats": {"inactive_file": 10 * 2**20, "anon": 30 * 2**20, "kernel": 4 * 2**20, "sock": 2**20},
    }
    assert growth.memory_from_stats(cgroup_v2) == {
        "usage": 40 * 2**20,
        "anon": 30 * 2**20,
        "kernel": 4 * 2**20,
        "sock": 2**20,
    }
    cgroup_v1 = {"usage": 8000, "stats": {"total_inactive_file": 1000, "rss": 5000}}
    assert growth.memory_from_stats(cgroup_v1) == {"usage": 7000, "anon": 5000, "kernel": None, "sock": None}


def test_per_item_divides_each_part_and_says_none_for_nothing_held():
    before = {"usage": 1000, "anon": 500, "sock": 0}
    after = {"usage": 5000, "anon": 2500, "sock": 1000}
    assert growth.per_item(before, after, 4) == {"usage": 1000, "anon": 500, "sock": 250}
    assert growth.per_item(before, after, 0) == {"usage": None, "anon": None, "sock": None}
    unknown = {"usage": 1000, "anon": 500, "sock": None}
    assert growth.per_item(unknown, {**after, "sock": None}, 4) == {"usage": 1000, "anon": 500, "sock": None}


def test_proc_status_fields_are_read_in_kib():
    text = "Name:\tgunicorn\nVmRSS:\t   51234 kB\nRssAnon:\t   40000 kB\n"
    assert growth.proc_status_kib(text, "VmRSS") == 51234
    assert growth.proc_status_kib(text, "RssAnon") == 40000
    with pytest.raises(ValueError, match="no VmSwap"):
        growth.proc_status_kib(text, "VmSwap")


def test_the_in_flight_gauge_is_summed_over_its_series():
    text = (
        "# HELP flask_stack_http_requests_in_flight Requests being served\n"
        "# TYPE flask_stack_http_requests_in_flight gauge\n"
        'flask_stack_http_requests_in_flight{pid="7"} 600.0\n'
        'flask_stack_http_requests_in_flight{pid="8"} 400.0\n'
        'flask_stack_http_requests_total{method="GET"} 12.0\n'
    )
    assert growth.in_flight(text) == 1000.0


def replica_run(rps, machine_us, busy, p99=5.0):
    cpu = {
        "servers": machine_us * 0.7,
        "nginx": machine_us * 0.2,
        "wrk": machine_us * 0.1,
        "rest": 0.0,
        "machine": machine_us,
    }
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    return {"rps": rps, "p99_ms": p99, "errors": errors, "cpu_us": cpu, "machine_busy": busy}


def test_replica_rows_take_medians_and_compare_with_the_fewest():
    runs = {
        1: [replica_run(3000, 600, 1.9), replica_run(3200, 580, 1.95), replica_run(2900, 620, 1.9)],
        2: [replica_run(3100, 610, 1.96), replica_run(3050, 630, 1.97), replica_run(3300, 590, 1.98)],
    }
    one, two = growth.summarize_replicas(runs)
    assert (one["replicas"], one["rps"], one["ratio"], one["cpu_us"]["machine"], one["machine_busy"]) == (
        1,
        3000,
        1.0,
        600,
        1.9,
    )
    assert (two["rps"], two["ratio"], two["cpu_us"]["machine"]) == (3100, pytest.approx(1.03), 610)
    assert two["rounds_rps"] == [3100, 3050, 3300]
    assert two["errors"] == 0


def test_the_reading_names_busy_cores_as_the_reason_only_when_they_were():
    busy = growth.summarize_replicas({1: [replica_run(3000, 600, 1.9)], 2: [replica_run(3030, 640, 1.95)]})
    said = " ".join(growth_report.replicas_reading(busy, cores=2))
    assert "+1% requests/s" in said and "already busy with 1 (1.90 of 2)" in said and "+7% CPU" in said
    assert "not CPU to use" in said
    idle = growth.summarize_replicas({1: [replica_run(1000, 600, 0.8)], 2: [replica_run(1900, 600, 1.6)]})
    said = " ".join(growth_report.replicas_reading(idle, cores=2))
    assert "+90% requests/s" in said and "were 40% busy with 1" in said and "left CPU unused" in said


def test_first_answers_name_only_new_replicas_at_their_first_answer():
    scale_timing = load_scale_timing()
    events = [(0.1, "old"), (0.2, None), (1.5, "new-a"), (1.6, "old"), (1.7, "new-a"), (2.4, "new-b")]
    assert scale_timing.first_answers(events, {"old"}) == {"new-a": 1.5, "new-b": 2.4}


def test_a_scale_row_says_when_make_returned_and_each_new_replica_answered():
    scale_timing = load_scale_timing()
    events = [(0.1, "old"), (0.2, None), (1.5, "a"), (2.4, "b"), (3.0, "c")]
    row = scale_timing.summarize(4, events, 2.0, {"old"}, failed=1)
    assert row == {
        "replicas": 4,
        "new_replicas": 3,
        "answered": 3,
        "make_returned_s": 2.0,
        "first_new_answered_s": 1.5,
        "all_answered_s": 3.0,
        "failed_requests": 1,
        "requests": 5,
    }
    short = scale_timing.summarize(4, events[:4], None, {"old"}, failed=1)
    assert short["all_answered_s"] is None and short["answered"] == 2 and short["make_returned_s"] is None


def test_the_report_holds_every_table_with_its_figures():
    memory = {"usage": 10 * 2**20, "anon": 6 * 2**20, "kernel": 2 * 2**20, "sock": 0}
    held = {"usage": 42 * 2**20, "anon": 20 * 2**20, "kernel": 18 * 2**20, "sock": 8 * 2**20}
    result = {
        "machine": {
            "cpu": "Test CPU",
            "cores": 2,
            "memory_gib": 24,
            "kernel": "Linux 6",
            "docker": "26",
            "date": "today",
        },
        "duration": 5,
        "rounds": 3,
        "replica_clients": 64,
        "idle_connections": [
            {
                "connections": 10_000,
                "held": 8_000,
                "refused": 500,
                "closed": 1_500,
                "before": memory,
                "during": held,
                "per_connection": growth.per_item(memory, held, 8_000),
            }
        ],
        "sleeping_worker": {
            "concurrent": 1000,
            "sleep_ms": 6000,
            "in_flight": 1000,
            "answered_200": 1000,
            "idle_kib": {"rss": 50_000, "anon": 30_000},
            "loaded_kib": {"rss": 90_000, "anon": 70_000},
            "container_idle": memory,
            "container_loaded": held,
            "per_request_bytes": {"rss": 40_960, "anon": 40_960},
        },
        "replicas": growth.summarize_replicas({1: [replica_run(3000, 600, 1.9)], 2: [replica_run(3030, 640, 1.95)]}),
        "scale": [
            {
                "replicas": 8,
                "new_replicas": 7,
                "answered": 6,
                "make_returned_s": 20.5,
                "first_new_answered_s": 4.2,
                "all_answered_s": None,
                "failed_requests": 0,
                "requests": 900,
            }
        ],
    }
    text = growth_report.render(json.loads(json.dumps(result)))
    assert "| 10,000 | 8,000 | 500 | 1,500 | 10.0 | 42.0 | 4.1 | 1.8 | 2.0 | 1.0 |" in text
    assert "| 1,000 (`/api/sleep/6000`) | 1,000 | 48.8 | 87.9 | 40.0 | 40.0 | 32.8 | 1,000 of 1,000 |" in text
    assert "| 2 | 3,030 | 1.01 | 3,030 |" in text
    assert "| 8 | 7 | 20.5 | 4.2 | 6 of 7 only | 0 of 900 |" in text
    result.pop("scale")
    assert "Not measured in this run" in growth_report.render(result)


def test_the_replicas_table_shows_dockers_cpu_when_measured_and_na_when_not():
    row = {"replicas": 1, "rps": 3000.0, "ratio": 1.0, "rounds_rps": [3000.0], "p99_ms": 40.0, "errors": 0}
    cpu_parts = {"servers": 400.0, "nginx": 100.0, "wrk": 40.0, "rest": 10.0, "machine": 570.0}
    seen = {**row, "cpu_us": {**cpu_parts, "docker": 20.0}, "machine_busy": 2.0}
    unseen = {**row, "cpu_us": cpu_parts, "machine_busy": 2.0}
    header, _, with_docker, without = growth_report.replicas_table([seen, unseen])
    assert "| wrk | Docker | the rest | machine |" in header
    assert with_docker.endswith("| 400 | 100 | 40 | 20 | 10 | 570 | 2.00 |")
    assert without.endswith("| 400 | 100 | 40 | n/a | 10 | 570 | 2.00 |")
