"""PgBouncer's own counters around each database measurement: how long each transaction held
a server connection, and how long clients waited for one.

The database endpoint's bound assumes a connection is held for the wait alone (pg_sleep);
PgBouncer counts how long it was held in fact, from BEGIN to COMMIT, so a row short of its
bound can say whether the connections were the limit. Read from PgBouncer's admin console
(SHOW STATS, cumulative counters) with psql inside the benchmark's pgbouncer container.
"""

# The app's role is one of PgBouncer's stats_users (services/db/pgbouncer-entrypoint.sh); the
# password comes from the same file the container was given, never from this process.
SHOW_STATS = (
    'PGPASSWORD="$(cat "$PGBOUNCER_PASSWORD_FILE")" exec psql --no-psqlrc --quiet '
    '--host=127.0.0.1 --port=6432 --username="${PGBOUNCER_DB_USER:-app}" --dbname=pgbouncer '
    "--no-align --field-separator='|' --pset=footer=off --command='SHOW STATS'"
)
COUNTERS = ("total_xact_count", "total_xact_time", "total_query_count", "total_wait_time")
# The database the stack's app connects to (compose's POSTGRES_DB, the stack's APP_DB_NAME).
DATABASE = "app"


def parse_stats(text, database=DATABASE):
    """The cumulative counters of one database from psql's unaligned SHOW STATS, or None."""
    lines = [line for line in text.strip().splitlines() if line]
    if not lines:
        return None
    header = lines[0].split("|")
    for line in lines[1:]:
        fields = dict(zip(header, line.split("|"), strict=False))
        if fields.get("database") == database:
            return {name: int(fields[name]) for name in COUNTERS}
    return None


def per_transaction(before, after, *, connections, wait_ms):
    """What the transactions between two snapshots cost the pool, on average; None if none ran.

    held_ms: how long each held its server connection (the bound assumes wait_ms);
    queued_ms: how long a client waited for a server connection before it;
    queries: statements per transaction (psycopg sends BEGIN, the query and COMMIT apart);
    ceiling_rps: what `connections` held that long can serve at most.

    PgBouncer's transaction time runs from the transaction's first statement, its wait for a
    server connection included (measured here: at 1000 clients, 207 ms a transaction, 101 of
    them waiting, and 728 requests/s through 80 connections, which only 106 ms held allows),
    so the time held is the transaction's less its wait."""
    if before is None or after is None:
        return None
    count = after["total_xact_count"] - before["total_xact_count"]
    if count <= 0:
        return None
    queued_us = after["total_wait_time"] - before["total_wait_time"]
    held_ms = (after["total_xact_time"] - before["total_xact_time"] - queued_us) / count / 1000
    return {
        "connections": connections,
        "wait_ms": wait_ms,
        "transactions": count,
        "held_ms": round(held_ms, 1),
        "queued_ms": round(queued_us / count / 1000, 1),
        "queries": round((after["total_query_count"] - before["total_query_count"]) / count, 2),
        "ceiling_rps": round(connections * 1000 / held_ms, 1) if held_ms > 0 else None,
    }


class Stats:
    """SHOW STATS of the pgbouncer container on the benchmark's network."""

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
            code, output = self.container.exec_run(["sh", "-c", SHOW_STATS])
            text = output.decode(errors="replace")
            if code != 0:
                raise RuntimeError(f"psql exited {code}: {text.strip()[-300:]}")
            stats = parse_stats(text)
            if stats is None:
                raise RuntimeError(f"no row for the database {DATABASE!r} in SHOW STATS")
            return stats
        except Exception as error:
            if not self.warned:
                print(f"!! PgBouncer's counters could not be read: {error}", flush=True)
                self.warned = True
            return None
