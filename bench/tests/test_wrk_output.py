"""Reading wrk's result line (printed by wrk/report.lua) and building its command line."""

import pytest

from benchmark import wrk

OUTPUT = """Running 3s test @ http://web:8000/healthz
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.01ms    3.20ms  80.00ms   90.00%
  9000 requests in 3.00s, 1.50MB read
  Non-2xx or 3xx responses: 30
Requests/sec:   3000.00
BENCH_RESULT {"requests":9000,"duration_us":3000000,"bytes":1572864,"connect_errors":0,"read_errors":1,\
"write_errors":0,"status_errors":30,"timeouts":2,"p50_us":11500,"p90_us":15000,"p99_us":42000,"max_us":80000,"mean_us":12800}
"""


def test_requests_per_second_counts_only_good_answers():
    measured = wrk.parse(OUTPUT)
    assert measured["requests"] == 9000
    assert measured["rps"] == pytest.approx((9000 - 30) / 3)


def test_latency_is_in_milliseconds_and_errors_by_kind():
    measured = wrk.parse(OUTPUT)
    assert (measured["p50_ms"], measured["p99_ms"], measured["max_ms"]) == (11.5, 42.0, 80.0)
    assert measured["errors"] == {"connect": 0, "read": 1, "write": 0, "status": 30, "timeout": 2}


def test_clients_answered_follows_littles_law():
    # 9000 answers in 3 s, 12.8 ms each on average: 38.4 clients kept busy, of the 64.
    assert wrk.parse(OUTPUT)["clients_answered"] == 38.4


def test_output_without_a_result_line_is_an_error_that_shows_it():
    with pytest.raises(ValueError, match="unable to connect"):
        wrk.parse("unable to connect to web:8000 Connection refused\n")


def test_the_command_uses_at_most_two_threads_and_passes_the_mix_after_a_double_dash():
    args = wrk.command("http://nginx:8080/", 1, 3, mix=("50:/healthz", "50:/api/sleep/50"))
    assert args[args.index("--threads") + 1] == "1"
    assert args[args.index("--connections") + 1] == "1"
    assert args[-3:] == ["--", "50:/healthz", "50:/api/sleep/50"]
    assert args[args.index("--script") + 1].endswith("mixed.lua")
    assert wrk.command("http://web:8000/healthz", 64, 3)[2] == "2"
