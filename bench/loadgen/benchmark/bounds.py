"""The theoretical bound of each measurement, and why a measurement fell short of it."""

# Below this fraction of its bound a seed configuration's row must say why.
NEAR_BOUND = 0.90


def concurrency_bound(slots, clients, io_ms):
    """Requests/s when each of min(slots, clients) requests in flight waits io_ms: slots x 1000/ms."""
    in_flight = clients if slots is None else min(slots, clients)
    return in_flight * 1000 / io_ms


def in_flight(server, endpoint, clients, database=None):
    """(requests that can wait at once, what limits them): the clients, the server's slots, or,
    for the database endpoint, the connections that can hold a wait in Postgres at once
    (Database.connections: PgBouncer's pool, shared by every worker process, or the workers'
    own pools together when those are fewer)."""
    count, limit = clients, "concurrency"
    if server.slots is not None and server.slots < count:
        count = server.slots
    if endpoint.database and database is not None:
        connections = database.connections(server.processes)
        if connections < count:
            count, limit = connections, "database"
    return count, limit


def cpu_bound(processes, cores, clients, request_ms):
    """Requests/s of CPU work costing request_ms each, on as many cores as processes can use at once."""
    return min(processes, cores, clients) * 1000 / request_ms


def bound_for(server, endpoint, clients, *, cores, compute_ms, cpu_ceiling, database=None):
    """(requests/s, what limits it) for one measurement; (None, None) where no bound applies.

    The kinds: "concurrency" (the clients or the server's slots), "database" (the database
    connections, for the database endpoint), "cpu". cpu_ceiling is the most this server and
    path did on the trivial endpoint in the run: an IO-bound request costs at least that
    much CPU, so it caps the concurrency bound.
    """
    if endpoint.io_ms:
        count, kind = in_flight(server, endpoint, clients, database)
        bound = count * 1000 / endpoint.io_ms
        if cpu_ceiling is not None and cpu_ceiling < bound:
            return cpu_ceiling, "cpu"
        return bound, kind
    if endpoint.cpu_bound:
        return cpu_bound(server.processes, cores, clients, compute_ms), "cpu"
    return None, None


# A transaction held its connection this much longer than the wait before it is a reason.
HELD_BEYOND_WAIT = 1.10


def database_held(row):
    """For the database endpoint: that PgBouncer's connections were each held longer than the
    wait the bound assumes (its counters, benchmark/pgbouncer.py), so fewer requests fit
    through them; None when they were not, or were not read."""
    measured = row.get("database")
    if not measured or not measured.get("held_ms") or measured["held_ms"] <= measured["wait_ms"] * HELD_BEYOND_WAIT:
        return None
    return (
        f"each transaction held its PgBouncer connection {measured['held_ms']:.0f} ms, not "
        f"{measured['wait_ms']}: the rest went between its {measured['queries']:.0f} statements (BEGIN, "
        "the query, COMMIT), in the server under test and on the way, so "
        f"{measured['connections']} connections carry at most {measured['ceiling_rps']:,.0f} requests/s"
    )


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
    held = database_held(row)
    if held:
        reasons.append(held)
    if row["bound_kind"] == "cpu":
        reasons.append(
            "CPU-bound: the 2 cores are shared with the load generator"
            + (" and nginx" if row["via"] == "nginx" else "")
        )
    if not reasons:
        reasons.append("per-request overhead of the server on top of the wait")
    return "; ".join(reasons)
