"""The theoretical bound of each measurement, and why a measurement fell short of it."""

# Below this fraction of its bound a seed configuration's row must say why.
NEAR_BOUND = 0.90


def concurrency_bound(slots, clients, io_ms):
    """Requests/s when each of min(slots, clients) requests in flight waits io_ms: slots x 1000/ms."""
    in_flight = clients if slots is None else min(slots, clients)
    return in_flight * 1000 / io_ms


def cpu_bound(processes, cores, clients, request_ms):
    """Requests/s of CPU work costing request_ms each, on as many cores as processes can use at once."""
    return min(processes, cores, clients) * 1000 / request_ms


def bound_for(server, endpoint, clients, *, cores, compute_ms, cpu_ceiling):
    """(requests/s, what limits it) for one measurement; (None, None) where no bound applies.

    cpu_ceiling is the most this server and path did on the trivial endpoint in the run:
    an IO-bound request costs at least that much CPU, so it caps the concurrency bound.
    """
    if endpoint.io_ms:
        bound = concurrency_bound(server.slots, clients, endpoint.io_ms)
        if cpu_ceiling is not None and cpu_ceiling < bound:
            return cpu_ceiling, "cpu"
        return bound, "concurrency"
    if endpoint.cpu_bound:
        return cpu_bound(server.processes, cores, clients, compute_ms), "cpu"
    return None, None


def stalled(row):
    """Fewer than half the clients got answers during the run (see wrk.parse)."""
    answered = row.get("clients_answered")
    return answered is not None and answered < row["clients"] / 2


def shortfall_reason(row, clients_waiting_beyond_run=False):
    """Why a row is below NEAR_BOUND of its bound, from what was measured; None when it is not."""
    if row["fraction"] is None or row["fraction"] >= NEAR_BOUND:
        return None
    reasons = []
    errors = row["errors"]
    if errors["connect"]:
        reasons.append(
            f"{errors['connect']} connections refused or reset: the server's accept queue "
            f"or connection limit is smaller than {row['clients']} clients"
        )
    if errors["read"] or errors["write"]:
        reasons.append(f"{errors['read'] + errors['write']} connections dropped mid-request")
    if errors["status"]:
        reasons.append(f"{errors['status']} error responses")
    if errors["timeout"]:
        reasons.append(f"{errors['timeout']} requests timed out")
    answered = row.get("clients_answered")
    if row.get("requests") == 0:
        reasons.append("no request completed within the run: each waited behind too many others")
    elif answered is not None and stalled(row):
        reasons.append(
            f"only about {answered:.0f} of {row['clients']} clients got answers during the run: "
            "the others waited in a queue or on a stalled worker"
        )
    elif clients_waiting_beyond_run:
        reasons.append("most requests queued longer than the run lasted, so few completed")
    if row["bound_kind"] == "cpu":
        reasons.append(
            "CPU-bound: the 2 cores are shared with the load generator"
            + (" and nginx" if row["via"] == "nginx" else "")
        )
    if not reasons:
        reasons.append("per-request overhead of the server on top of the wait")
    return "; ".join(reasons)
