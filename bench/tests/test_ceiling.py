"""The open-loop ceiling's search (benchmark/ceiling.py): what counts as served, and that the
search brackets and narrows to the highest rate served within its bounded runs."""

import pytest

from benchmark import ceiling


def result(offered, answered=None, errors=None, kept_up=True, connections_sufficed=True, p99=120.0):
    return {
        "offered_rps": offered,
        "answered_rps": offered if answered is None else answered,
        "errors": errors or {},
        "generator_kept_up": kept_up,
        "connections_sufficed": connections_sufficed,
        "corrected": {"p99_ms": p99},
    }


def test_a_run_with_no_error_and_the_generator_on_time_with_a_connection_for_each_request_is_served():
    assert ceiling.why_not_served(result(1000, answered=960)) == []


@pytest.mark.parametrize(
    "run, reason",
    [
        (result(1000, errors={"timeout": 3}), "errors timeout 3"),
        (result(1000, kept_up=False), "generator fell behind"),
        (result(1000, connections_sufficed=False), "waited for an idle connection"),
    ],
)
def test_each_way_a_run_falls_short_is_named(run, reason):
    reasons = ceiling.why_not_served(run)
    assert len(reasons) == 1 and reason in reasons[0]


def test_error_answers_are_named_by_status():
    run = result(1000, errors={"status": 30, "timeout": 2}) | {"statuses": {"200": 4970, "502": 20, "504": 10}}
    assert ceiling.why_not_served(run) == ["errors status 30 (502: 20, 504: 10), timeout 2"]


def server_that_serves_up_to(limit):
    tried = []

    def measure(rate):
        tried.append(rate)
        if rate <= limit:
            return result(rate)
        # Past its limit a server's queue grows: all its connections fill up.
        return result(rate, answered=limit, connections_sufficed=False)

    return measure, tried


@pytest.mark.parametrize("limit, first_guess", [(1234, 1000), (1234, 3000), (700, 2500), (2600, 800)])
def test_the_search_finds_the_limit_within_the_gap_its_runs_leave(limit, first_guess):
    measure, tried = server_that_serves_up_to(limit)
    found = ceiling.search(measure, first_guess)
    assert found["bracketed"]
    assert found["ceiling_rps"] <= limit
    # The bracket is one doubling wide, halved once per narrowing run.
    assert found["ceiling_rps"] >= limit - limit / 2**ceiling.NARROWING_RUNS
    # A rate not served is run twice.
    rates = set(tried)
    assert len(rates) <= ceiling.BRACKETING_RUNS_MAX + ceiling.NARROWING_RUNS
    assert all(tried.count(rate) == (1 if rate <= limit else 2) for rate in rates)
    assert [run["rate_rps"] for run in found["runs"]] == [round(rate, 1) for rate in tried]
    assert all(run["served"] == (run["rate_rps"] <= limit) for run in found["runs"])


def test_a_rate_that_fails_once_and_is_served_on_its_second_run_counts_as_served():
    failing = result(8000, errors={"timeout": 1})
    answers = iter([result(2000, kept_up=False), result(2000), result(4000), failing, failing])

    def measure(rate):
        return next(answers)

    found = ceiling.search(measure, 2000, bracketing_runs=3, narrowing_runs=0)
    assert [(run["rate_rps"], run["served"]) for run in found["runs"]][:3] == [
        (2000.0, False),
        (2000.0, True),
        (4000.0, True),
    ]


def test_a_server_that_serves_nothing_has_a_ceiling_of_zero_and_says_it_never_bracketed():
    found = ceiling.search(lambda rate: result(rate, errors={"ConnectionRefusedError": 5}), 1000)
    assert found == {"ceiling_rps": 0.0, "runs": found["runs"], "bracketed": False}
    assert len(found["runs"]) == 2 * ceiling.BRACKETING_RUNS_MAX
    assert all(not run["served"] for run in found["runs"])


def test_a_server_beyond_every_rate_tried_reports_the_highest_served_unbracketed():
    found = ceiling.search(lambda rate: result(rate), 500, bracketing_runs=3)
    assert found["bracketed"] is False
    assert found["ceiling_rps"] == 2000.0


def test_the_first_guess_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        ceiling.search(lambda rate: result(rate), 0)


def test_the_first_guess_is_under_the_closed_loop_rate_and_never_nothing():
    assert ceiling.first_guess(3000) == pytest.approx(3000 * ceiling.FIRST_GUESS_SHARE)
    assert ceiling.first_guess(0) == ceiling.FIRST_GUESS_SHARE * ceiling.FIRST_GUESS_MIN_RPS > 0
