"""PgBouncer's own counters around each database measurement: how long each transaction held
a server connection, and how long clients waited for one.

The database endpoint's bound assumes a connection is held for the wait alone (pg_sleep);
PgBouncer counts how long it was held in fact, from BEGIN to COMMIT, so a row short of its
bound can say whether the connections were the limit. Read from PgBouncer's admin console
(SHOW STATS, cumulative counters, and SHOW POOLS, what is in progress) with psql inside the
benchmark's pgbouncer container.

How PgBouncer counts (src/client.c and src/server.c): a transaction is counted when its
first statement arrives, before it waits for a server connection; its time is added when it
ends, and runs from that first statement, so it holds the wait too; the wait is added when
a server connection is assigned. Between two snapshots, then, the count includes the
transactions still in progress at the second and misses those in progress at the first,
while the time is that of the transactions that ended: per_transaction corrects the count
by what SHOW POOLS shows in progress at each, and the time by the wait.
"""

import time

# The app's role is one of PgBouncer's stats_users (services/db/pgbouncer-entrypoint.sh); the
# password comes from the same file the container was given, never from this process.
SHOW = (
    'PGPASSWORD="$(cat "$PGBOUNCER_PASSWORD_FILE")" exec psql --no-psqlrc --quiet '
    '--host=127.0.0.1 --port=6432 --username="${PGBOUNCER_DB_USER:-app}" --dbname=pgbouncer '
    "--no-align --field-separator='|' --pset=footer=off --command='SHOW STATS' --command='SHOW POOLS'"
)
COUNTERS = ("total_xact_count", "total_xact_time", "total_query_count", "total_wait_time")
# The database the stack's app connects to (compose's POSTGRES_DB, the stack's APP_DB_NAME).
DATABASE = "app"
# After a measurement, how long to wait for the transactions it left to end: with none in
# progress at either snapshot, the counts and the times are of the same transactions.
DRAIN_S = 1.0


def tables(text):
    """Each table of psql's unaligned output (a header line starting with `database|`, then
    its rows) as a list of dicts by column name."""
    found = []
    for line in text.strip().splitlines():
        fields = line.split("|")
        if fields[0] == "database":
            header = fields
            found.append([])
        elif found and line:
            found[-1].append(dict(zip(header, fields, strict=False)))
    return found


def parse(text, database=DATABASE):
    """One database's cumulative counters (SHOW STATS) and the transactions it has in progress
    (SHOW POOLS: linked to a server connection, or waiting for one), or None."""
    parsed = tables(text)
    if len(parsed) != 2:
        return None
    stats = next((row for row in parsed[0] if row.get("database") == database), None)
    pools = [row for row in parsed[1] if row.get("database") == database]
    if stats is None:
        return None
    counters = {name: int(stats[name]) for name in COUNTERS}
    counters["in_progress"] = sum(int(pool["sv_active"]) + int(pool["cl_waiting"]) for pool in pools)
    return counters


def per_transaction(before, after, *, connections, wait_ms):
    """What the transactions that ended between two snapshots cost the pool, on average; None
    if none did, or a snapshot is missing.

    held_ms: how long each held its server connection (the bound assumes wait_ms);
    queued_ms: how long a client waited for a server connection before it;
    queries: statements per transaction (psycopg sends BEGIN, the query and COMMIT apart);
    ceiling_rps: what `connections` held that long can serve at most."""
    if before is None or after is None:
        return None
    ended = after["total_xact_count"] - before["total_xact_count"] - after["in_progress"] + before["in_progress"]
    if ended <= 0:
        return None
    queued_us = after["total_wait_time"] - before["total_wait_time"]
    held_ms = (after["total_xact_time"] - before["total_xact_time"] - queued_us) / ended / 1000
    return {
        "connections": connections,
        "wait_ms": wait_ms,
        "transactions": ended,
        # In progress at the second snapshot: the figures are exact when none is.
        "in_progress_after": after["in_progress"],
        "held_ms": round(held_ms, 1),
        "queued_ms": round(queued_us / ended / 1000, 1),
        "queries": round((after["total_query_count"] - before["total_query_count"]) / ended, 2),
        "ceiling_rps": round(connections * 1000 / held_ms, 1) if held_ms > 0 else None,
    }


class Stats:
    """SHOW STATS and SHOW POOLS of the pgbouncer container on the benchmark's network."""

    def __init__(self, client, network):
        self.client = client
        self.network = network
        self.container = None
        self.warned = False

    def _find(self):
        found = self.client.containers.list(
            filters={"network": self.network, "label": "com.docker.compose.service=pgbouncer"}
        )
        return found[0] if found else None

    def snapshot(self):
        """The counters now, or None (once said why) when they cannot be read: the measurement
        itself does not depend on them."""
        try:
            self.container = self.container or self._find()
            if self.container is None:
                raise RuntimeError(f"no pgbouncer container on the network {self.network}")
            code, output = self.container.exec_run(["sh", "-c", SHOW])
            text = output.decode(errors="replace")
            if code != 0:
                raise RuntimeError(f"psql exited {code}: {text.strip()[-300:]}")
            counters = parse(text)
            if counters is None:
                raise RuntimeError(f"no row for the database {DATABASE!r} in SHOW STATS")
            return counters
        except Exception as error:
            if not self.warned:
                print(f"!! PgBouncer's counters could not be read: {error}", flush=True)
                self.warned = True
            return None

    def drained(self, within=DRAIN_S):
        """The counters once no transaction is in progress, or after `within` seconds, whichever
        comes first (a server with few slots can have a backlog of many seconds)."""
        deadline = time.monotonic() + within
        while True:
            counters = self.snapshot()
            if counters is None or counters["in_progress"] == 0 or time.monotonic() >= deadline:
                return counters
            time.sleep(0.05)
