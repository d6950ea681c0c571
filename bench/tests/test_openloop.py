"""The open-loop generator (benchmark/openloop.py): its schedule, its mix, its percentiles,
and, against a real HTTP server on 127.0.0.1, that its correction shows the queueing a
closed loop hides."""

import asyncio
import itertools
import json
from collections import Counter

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
    """A real HTTP/1.1 server on 127.0.0.1 that answers at once, except that the answers to
    requests arriving in [stall_at, stall_at + stall_s) wait until the stall ends."""

    def __init__(self, stall_at_s=None, stall_s=0.0, close_every=0, drop_every=0):
        self.stall_at_s, self.stall_s = stall_at_s, stall_s
        self.close_every, self.drop_every = close_every, drop_every
        self.served = 0
        self.started = None

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        self.started = asyncio.get_running_loop().time()
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def handle(self, reader, writer):
        loop = asyncio.get_running_loop()
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                self.served += 1
                if self.drop_every and self.served % self.drop_every == 0:
                    return  # closes with no answer
                if self.stall_at_s is not None:
                    stall_ends = self.started + self.stall_at_s + self.stall_s
                    if self.started + self.stall_at_s <= loop.time() < stall_ends:
                        await asyncio.sleep(stall_ends - loop.time())
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
            samples, errors, unsent, opened = await openloop.attack(
                f"http://127.0.0.1:{server.port}/healthz", rate, duration_s, connections, **kwargs
            )
            return openloop.summarize(samples, rate, duration_s, opened, errors, unsent)

    return asyncio.run(scenario())


def test_a_steady_server_gets_every_request_at_the_offered_rate():
    result = run_against(StallingServer(), rate=200, duration_s=1.0, connections=4)
    assert result["requests"] == result["answered"] == 200
    assert result["statuses"] == {"200": 200} and result["errors"] == {}
    assert result["answered_rps"] == pytest.approx(200, rel=0.1)
    assert result["generator_kept_up"], result
    assert result["corrected"]["p99_ms"] < 100


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


def test_run_starts_the_generator_as_a_process_of_its_own_and_reads_its_result():
    async def serve_and_run():
        async with StallingServer() as server:
            url = f"http://127.0.0.1:{server.port}/healthz"
            return await asyncio.to_thread(openloop.run, url, 40, 0.5, 2, ("1:/healthz", "1:/other"))

    result = asyncio.run(serve_and_run())
    assert result["answered"] == 20 and result["errors"] == {}


def test_a_missing_result_line_is_an_error_that_shows_the_output():
    with pytest.raises(ValueError, match="no result line:\nTraceback"):
        openloop.parse("Traceback (most recent call last):\n  ...")
