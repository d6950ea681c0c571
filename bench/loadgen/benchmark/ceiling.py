"""A server's ceiling in the open loop itself: the highest offered rate it serves.

A closed loop's ceiling (wrk) is what a server does when every client waits for its last
answer before asking again, with a generator in C. Fractions of it are a poor yardstick for
an open loop: the open loop's generator is Python on the same cores and costs CPU the
closed loop's did not, so "80% of the wrk ceiling" can already be more than the server and
this generator together can serve. Here the rate is judged by the open loop's own runs.

A rate is served when every request got an answer with no error, and the generator kept
its schedule and found an idle connection for each request when it was due. A server that
cannot keep pace fills the connections with its queue, so its requests wait for one: the
last condition catches it. On cores the server and the generator share, the generator
falling behind is the machine running out of CPU for both: a limit of this machine, and
where the figures stop being the server's alone. A rate that is not served is run once
more before it counts, so one noisy moment on a shared machine does not set the ceiling.

The search doubles or halves from a first guess until it has one rate served and one not,
then halves the gap a fixed number of times: a bounded number of runs per server.
"""

# Runs spent bracketing, then narrowing: the gap left is the bracket / 2**NARROWING_RUNS.
BRACKETING_RUNS_MAX = 4
NARROWING_RUNS = 4
# A search's first guess, as a share of what wrk did closed-loop on the same workload: the
# open loop's generator is Python on the same cores, so less is served.
FIRST_GUESS_SHARE = 0.7
# The least a first guess starts from: a closed-loop run that got next to nothing back
# still leaves the search a rate to double.
FIRST_GUESS_MIN_RPS = 100.0


def first_guess(closed_loop_rps):
    """Where a search starts, from what wrk did closed-loop on the same workload."""
    return FIRST_GUESS_SHARE * max(closed_loop_rps, FIRST_GUESS_MIN_RPS)


def why_not_served(result):
    """The reasons an open-loop run does not count as served; empty when it does."""
    reasons = []
    errors = result.get("errors") or {}
    if errors:
        statuses = result.get("statuses") or {}
        reasons.append("errors " + ", ".join(_error(kind, count, statuses) for kind, count in sorted(errors.items())))
    if not result.get("generator_kept_up", False):
        reasons.append("the generator fell behind its schedule")
    if not result.get("connections_sufficed", True):
        reasons.append("requests waited for an idle connection")
    return reasons


def _error(kind, count, statuses):
    """One kind of error and its count; for answers that were errors ("status"), which."""
    if kind != "status":
        return f"{kind} {count}"
    refused = [f"{code}: {n}" for code, n in sorted(statuses.items()) if int(code) >= 400]
    return f"status {count} ({', '.join(refused)})" if refused else f"status {count}"


def search(measure, first_guess_rps, bracketing_runs=BRACKETING_RUNS_MAX, narrowing_runs=NARROWING_RUNS):
    """The highest rate `measure(rate)` serves, from `first_guess_rps`.

    `measure` runs the open loop at a rate and returns its result (openloop.summarize's).
    Returns {"ceiling_rps": the highest rate served (0.0 if none was), "runs": [{"rate_rps",
    "served", "reasons", "p99_ms"}, ...] in the order run (a rate not served appears twice),
    "bracketed": whether a rate served and a rate not served were both found}.
    """
    if first_guess_rps <= 0:
        raise ValueError("the first guess must be a positive rate")
    runs = []

    def attempt(rate):
        for _ in range(2):
            result = measure(rate)
            reasons = why_not_served(result)
            runs.append(
                {
                    "rate_rps": round(rate, 1),
                    "served": not reasons,
                    "reasons": reasons,
                    "p99_ms": result.get("corrected", {}).get("p99_ms"),
                }
            )
            if not reasons:
                return True
        return False

    served, refused = None, None
    rate = first_guess_rps
    for _ in range(bracketing_runs):
        if attempt(rate):
            served = rate
            if refused is not None:
                break
            rate *= 2
        else:
            refused = rate
            if served is not None:
                break
            rate /= 2
    if served is None or refused is None:
        # Never bracketed: the bracketing runs were all served, or none was.
        return {"ceiling_rps": float(served or 0.0), "runs": runs, "bracketed": False}
    for _ in range(narrowing_runs):
        middle = (served + refused) / 2
        if attempt(middle):
            served = middle
        else:
            refused = middle
    return {"ceiling_rps": float(served), "runs": runs, "bracketed": True}
