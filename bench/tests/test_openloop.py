"""The open-loop generator (benchmark/openloop.py): its schedule, its mix, its percentiles,
and, against a real HTTP server on 127.0.0.1, that its correction shows the queueing a
closed loop hides, that it tells its own lateness, CPU and short pool from the server's,
and that several worker processes send exactly the one schedule."""

import asyncio
import importlib.util
import itertools
import json
import os
import socket
import sys
import time
import types
from collections import Counter
from pathlib import Path

import pytest

from benchmark import openloop


def test_the_schedule_spaces_requests_evenly_from_the_start():
    offsets = openloop.schedule(rate=200, duration_s=1.5)
    assert len(offsets) == 300
    assert offsets[0] == 0.0
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(offsets)}
    assert gaps == {0.005}


@pytest.mark.parametrize("rate, duration_s", [(0, 1), (10, 0), (-5, 1)])
def test_a_schedule_needs_a_positive_rate_and_duration(rate, duration_s):
    with pytest.raises(ValueError, match="must be positive"):
        openloop.schedule(rate, duration_s)


def test_the_mix_follows_its_weights_and_is_the_same_every_run():
    mix = ("50:/healthz", "20:/api/sleep/50", "20:/api/outbound/50", "10:/api/compute/5000")
    paths = openloop.paths_for(20_000, mix)
    assert paths == openloop.paths_for(20_000, mix)
    shares = {path: count / len(paths) for path, count in Counter(paths).items()}
    assert shares == pytest.approx(
        {"/healthz": 0.5, "/api/sleep/50": 0.2, "/api/outbound/50": 0.2, "/api/compute/5000": 0.1}, abs=0.015
    )


def test_the_generator_sleeps_in_whole_milliseconds_rounded_up():
    assert openloop.pause_s(0.0004) == 0.001
    assert openloop.pause_s(0.0101) == 0.011
    assert openloop.pause_s(0.002) == 0.002
    assert openloop.pause_s(0.0) == openloop.pause_s(-0.003) == 0.0


@pytest.mark.parametrize("pair", ["/healthz", "x:/healthz", "50:healthz"])
def test_a_malformed_mix_is_refused(pair):
    with pytest.raises(ValueError, match="weight:path"):
        openloop.paths_for(10, (pair,))


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert openloop.percentile(values, 0.50) == 50.0
    assert openloop.percentile(values, 0.99) == 99.0
    assert openloop.percentile(values, 0.999) == 100.0
    assert openloop.percentile([7.0], 0.99) == 7.0
    assert openloop.percentile([], 0.99) == 0.0


class StallingServer:
    """A real HTTP/1.1 server on 127.0.0.1 that answers at once (or after answer_after_s),
    except that the answers to requests arriving in [stall_at, stall_at + stall_s) wait
    until the stall ends; times from its first request, which is the generator's start
    whatever its pool took to open."""

    def __init__(self, stall_at_s=None, stall_s=0.0, close_every=0, drop_every=0, answer_after_s=0.0):
        self.stall_at_s, self.stall_s = stall_at_s, stall_s
        self.answer_after_s = answer_after_s
        self.close_every, self.drop_every = close_every, drop_every
        self.served = 0
        self.started = None

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def handle(self, reader, writer):
        loop = asyncio.get_running_loop()
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                self.served += 1
                if self.started is None:
                    self.started = loop.time()
                if self.drop_every and self.served % self.drop_every == 0:
                    return  # closes with no answer
                if self.stall_at_s is not None:
                    stall_ends = self.started + self.stall_at_s + self.stall_s
                    if self.started + self.stall_at_s <= loop.time() < stall_ends:
                        await asyncio.sleep(stall_ends - loop.time())
                if self.answer_after_s:
                    await asyncio.sleep(self.answer_after_s)
                closing = self.close_every and self.served % self.close_every == 0
                body = b'{"ok": true}'
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n"
                head += "Connection: close\r\n\r\n" if closing else "\r\n"
                writer.write(head.encode() + body)
                await writer.drain()
                if closing:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            pass  # the test is over and its loop is closing: nothing to answer
        finally:
            writer.close()


def run_against(server, rate, duration_s, connections, **kwargs):
    async def scenario():
        async with server:
            measured = await openloop.attack(
                f"http://127.0.0.1:{server.port}/healthz", rate, duration_s, connections, **kwargs
            )
            return openloop.summarize(measured, rate, duration_s)

    return asyncio.run(scenario())


@pytest.fixture(scope="module")
def steady():
    """One run against a server that answers at once: 200 requests/s for a second, 4 connections."""
    return run_against(StallingServer(), rate=200, duration_s=1.0, connections=4)


def test_a_steady_server_gets_every_request_at_the_offered_rate(steady):
    result = steady
    assert result["requests"] == result["answered"] == 200
    assert result["statuses"] == {"200": 200} and result["errors"] == {}
    assert result["answered_rps"] == pytest.approx(200, rel=0.1)
    assert result["generator_kept_up"], result
    assert result["corrected"]["p99_ms"] < 100
    # Four connections are more than the requests a server answering at once keeps in flight.
    assert result["connections_sufficed"], result
    assert result["processes"] == 1


def test_the_windows_cover_the_run_and_count_every_request(steady):
    assert [w["t_s"] for w in steady["windows"]] == [0.0, 0.25, 0.5, 0.75]
    assert [w["offered"] for w in steady["windows"]] == [50, 50, 50, 50]
    assert sum(w["offered"] for w in steady["windows"]) == steady["requests"]
    assert [w["answered"] for w in steady["windows"]] == [50, 50, 50, 50]
    assert all(w["errors"] == 0 and w["p99_ms"] < 100 for w in steady["windows"]), steady["windows"]


def test_the_generator_reports_its_own_cpu(steady):
    assert steady["generator_cpu_s"] > 0
    # Far from a core at this rate: between requests the generator sleeps, it does not spin.
    assert 0 < steady["generator_cores"] < 0.5, steady


def test_the_run_reports_how_busy_the_whole_machine_was(steady):
    # At least the generator's own share, at most every core. The kernel counts the machine's
    # time in ticks of 1/100 s per CPU, the generator's own to the microsecond: a few ticks of slack.
    slack = 0.05
    assert steady["machine_cores"] == os.cpu_count()
    assert steady["machine_busy_cores"] > 0, steady
    assert steady["generator_cores"] - slack <= steady["machine_busy_cores"] <= steady["machine_cores"], steady


def test_workers_that_looked_at_the_same_machine_are_merged_as_one_look():
    runs = [openloop.Run(samples=[], cpu_s=0.2, machine_busy_s=1.5, end_s=1.0) for _ in range(2)]
    runs[1].machine_busy_s = 1.6
    merged = openloop.merge(runs)
    assert (merged.cpu_s, merged.machine_busy_s) == (0.4, 1.6)


def test_windows_count_by_due_time_and_take_failures_as_errors():
    samples = [
        openloop.Sample(due=0.0, queued=0.0, sent=0.0, done=0.010, status=200),
        openloop.Sample(due=0.1, queued=0.1, sent=0.1, done=0.130, status=200),
        openloop.Sample(due=0.3, queued=0.3, sent=0.3, done=0.4, status=0, error="timeout"),
        openloop.Sample(due=0.5, queued=0.5, sent=0.5, done=0.52, status=503),
    ]
    assert openloop.windows(samples, unsent=[1.0]) == [
        {"t_s": 0.0, "offered": 2, "answered": 2, "errors": 0, "p99_ms": 30.0},
        {"t_s": 0.25, "offered": 1, "answered": 0, "errors": 1, "p99_ms": None},
        {"t_s": 0.5, "offered": 1, "answered": 1, "errors": 1, "p99_ms": 20.0},
        {"t_s": 0.75, "offered": 0, "answered": 0, "errors": 0, "p99_ms": None},
        {"t_s": 1.0, "offered": 1, "answered": 0, "errors": 1, "p99_ms": None},
    ]
    assert openloop.windows([]) == []


def test_a_stall_shows_in_the_corrected_latency_and_hides_from_the_uncorrected():
    # One connection, 200 requests/s, the server stalls for 0.5 s a second into the run: the
    # ~100 requests due during the stall wait behind it. A closed loop would have sent none of
    # them, and the uncorrected latency, from when each left, shows only the one that stalled.
    result = run_against(StallingServer(stall_at_s=1.0, stall_s=0.5), rate=200, duration_s=3.0, connections=1)
    assert result["errors"] == {} and result["answered"] == 600
    assert result["uncorrected"]["p99_ms"] < 50, result
    assert result["uncorrected"]["max_ms"] >= 400, result
    # Corrected: about a sixth of the requests waited, up to the whole stall.
    assert result["corrected"]["p99_ms"] >= 350, result
    assert result["corrected"]["max_ms"] >= 450, result
    assert result["corrected"]["p50_ms"] < 50, result
    # The generator itself stayed on schedule: the wait was the server's.
    assert result["generator_kept_up"], result


def test_a_stall_shows_in_the_windows_around_it():
    # Enough connections for every request due during the stall to leave on time: each waits
    # at the server until the stall ends, so only the windows it spans see a high p99.
    result = run_against(StallingServer(stall_at_s=0.5, stall_s=0.5), rate=200, duration_s=2.0, connections=128)
    assert result["errors"] == {} and result["connections_sufficed"], result
    by_start = {w["t_s"]: w["p99_ms"] for w in result["windows"]}
    assert by_start[0.5] >= 200 and by_start[0.75] >= 200, by_start
    assert by_start[0.0] < 50 and by_start[0.25] < 50, by_start
    assert all(p99 < 50 for t_s, p99 in by_start.items() if t_s >= 1.25), by_start


def test_too_few_connections_show_as_send_lag_not_as_the_generator_falling_behind():
    # 100 requests/s that each take 50 ms keep 5 in flight; 2 connections carry 40/s, so the
    # rest wait in the generator for an idle connection, while its scheduler stays on time.
    result = run_against(StallingServer(answer_after_s=0.05), rate=100, duration_s=0.5, connections=2)
    assert result["answered"] == 50 and result["errors"] == {}, result
    assert result["generator_kept_up"], result
    assert result["send_lag"]["p99_ms"] > result["schedule_lag"]["p99_ms"] + 100, result
    assert result["send_lag"]["max_ms"] >= result["send_lag"]["p99_ms"] >= result["send_lag"]["p50_ms"]
    assert result["generator_lag_p99_ms"] == result["schedule_lag"]["p99_ms"]
    assert not result["connections_sufficed"], result


def test_a_server_closing_its_connections_costs_no_request():
    result = run_against(StallingServer(close_every=10), rate=200, duration_s=1.0, connections=2)
    assert result["errors"] == {} and result["answered"] == 200


def test_a_dropped_connection_is_an_error_and_the_run_goes_on():
    result = run_against(StallingServer(drop_every=25), rate=200, duration_s=1.0, connections=2)
    assert result["errors"] == {"IncompleteReadError": 8}, result
    assert result["answered"] == 192


def test_a_request_unanswered_within_the_timeout_is_a_timeout():
    stalled = StallingServer(stall_at_s=0.0, stall_s=5.0)
    result = run_against(stalled, rate=20, duration_s=0.5, connections=2, timeout_s=0.3)
    assert result["answered"] == 0
    assert result["errors"] == {"timeout": 10}, result


def test_the_command_line_prints_one_result_line(capsys):
    async def serve_and_run():
        async with StallingServer() as server:
            url = f"http://127.0.0.1:{server.port}/healthz"
            await asyncio.to_thread(openloop.main, [url, "--rate", "50", "--duration", "0.4", "--connections", "2"])

    asyncio.run(serve_and_run())
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith(openloop.MARKER)]
    result = json.loads(line[len(openloop.MARKER) :])
    assert result["answered"] == 20 and result["offered_rps"] == 50
    assert result["processes"] == 1 and len(result["windows"]) == 2


@pytest.mark.parametrize("processes", [1, 2])
def test_run_starts_the_generator_as_a_process_of_its_own_and_reads_its_result(processes):
    async def serve_and_run():
        async with StallingServer() as server:
            url = f"http://127.0.0.1:{server.port}/healthz"
            mix = ("1:/healthz", "1:/other")
            return await asyncio.to_thread(openloop.run, url, 40, 0.5, 2, mix, processes=processes)

    result = asyncio.run(serve_and_run())
    assert result["answered"] == 20 and result["errors"] == {}
    assert result["processes"] == processes and result["connections"] == 2
    assert result["event_loop"] == ("uvloop" if importlib.util.find_spec("uvloop") else "asyncio")
    # Whichever the loop, it sleeps between requests rather than spinning until the next is due.
    assert 0 < result["generator_cores"] < 0.5, result


def test_workers_send_exactly_the_one_schedule_between_them():
    async def scenario():
        async with StallingServer() as server:
            url = f"http://127.0.0.1:{server.port}/healthz"
            return await openloop.attack_in_processes(url, 200, 1.0, 4, processes=2)

    measured = asyncio.run(scenario())
    assert sorted(s.due for s in measured.samples) == openloop.schedule(200, 1.0)
    assert measured.unsent == [] and measured.connections == 4 and measured.processes == 2
    result = openloop.summarize(measured, 200, 1.0)
    assert result["requests"] == result["answered"] == 200, result
    assert sum(w["offered"] for w in result["windows"]) == 200
    # The workers started together: none of the schedule waited on the other's start.
    assert result["generator_kept_up"] and result["corrected"]["p99_ms"] < 100, result
    assert result["generator_cpu_s"] > 0 and 0 < result["generator_cores"] <= 2.5, result


def test_the_connections_are_shared_as_evenly_as_can_be():
    assert openloop.connection_shares(1000, 3) == [334, 333, 333]
    assert openloop.connection_shares(2, 2) == [1, 1]
    with pytest.raises(ValueError, match="one connection each"):
        openloop.connection_shares(2, 3)


def test_a_worker_run_travels_to_its_parent_and_back():
    run = openloop.Run(
        samples=[
            openloop.Sample(0.1, 0.1000004, 0.1002, 0.15, 200),
            openloop.Sample(0.3, 0.3, 0.31, 0.5, 0, "timeout"),
        ],
        unsent=[0.7],
        connect_errors=["ConnectionRefusedError"],
        connections=3,
        cpu_s=0.25,
        machine_busy_s=1.75,
        end_s=1.2,
    )
    back = openloop.decode_run(openloop.encode_run(run))
    assert back.machine_busy_s == 1.75
    assert back.samples[0] == openloop.Sample(0.1, 0.1, 0.1002, 0.15, 200)
    assert back.samples[1] == run.samples[1]
    assert (back.unsent, back.connect_errors, back.connections, back.cpu_s, back.end_s) == (
        [0.7],
        run.connect_errors,
        3,
        0.25,
        1.2,
    )


def children_of(pid):
    """The processes (zombies too) whose parent is `pid`."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended meanwhile
        if int(fields[1]) == pid:
            children.add(int(stat.parent.name))
    return children


def test_a_parent_that_gives_up_ends_and_reaps_its_workers():
    before = children_of(os.getpid())

    async def scenario():
        async with StallingServer() as server:
            url = f"http://127.0.0.1:{server.port}/healthz"
            # No worker can start and open its pool that fast.
            await openloop.attack_in_processes(url, 100, 5.0, 4, processes=2, ready_within_s=0.01)

    with pytest.raises(TimeoutError):
        asyncio.run(scenario())
    assert children_of(os.getpid()) - before == set()


def test_a_worker_that_cannot_connect_fails_the_run_with_its_reason(capfd):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    # Nothing listens on the port once its socket is closed.
    with pytest.raises(RuntimeError, match=r"worker \d ended \(1\) before its connections were open"):
        asyncio.run(openloop.attack_in_processes(f"http://127.0.0.1:{port}/", 10, 1.0, 2, processes=2))
    assert "no connection to 127.0.0.1" in capfd.readouterr().err


def test_a_worker_whose_parent_is_gone_stops():
    async def scenario():
        async with StallingServer() as server:
            url = f"http://127.0.0.1:{server.port}/healthz"
            command = openloop.worker_command(url, 10.0, 30.0, 1, (), 1.0, 0, 1)
            worker = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=openloop.PACKAGE_PARENT
            )
            try:
                assert await asyncio.wait_for(worker.stdout.readline(), 30) == b"BENCH_READY\n"
                worker.stdin.write(f"{time.monotonic()!r}\n".encode())
                await asyncio.sleep(0.3)
                served = server.served
                # As when the parent dies: its end of the pipe closes, mid-schedule.
                worker.stdin.close()
                code = await asyncio.wait_for(worker.wait(), 5)
            finally:
                if worker.returncode is None:
                    worker.kill()
                    await worker.wait()
            return code, served

    code, served = asyncio.run(scenario())
    assert code == 1 and served >= 1


def test_uvloop_drives_the_run_when_it_is_installed(monkeypatch):
    fake = types.ModuleType("uvloop")
    fake.new_event_loop = object()
    monkeypatch.setitem(sys.modules, "uvloop", fake)
    assert openloop.event_loop_factory() is fake.new_event_loop
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if not installed
    assert openloop.event_loop_factory() is asyncio.new_event_loop


def test_a_missing_result_line_is_an_error_that_shows_the_output():
    with pytest.raises(ValueError, match="no result line:\nTraceback"):
        openloop.parse("Traceback (most recent call last):\n  ...")
