"""The composed stack with its database (compose.db.yaml), and what the database tests ask
of it: SQL run inside the db container, and a loop of writes whose acknowledgements can be
counted against the rows afterwards."""

import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from composed import ROOT, Stack
from load import LoadLoop, one_request

DB_FILES = ("compose.yaml", "compose.db.yaml")


@contextmanager
def database_stack(name_hint, env=None, compose_files=DB_FILES, root=ROOT):
    """A started stack with Postgres and PgBouncer, migrated, with a password of its own
    (written as make up writes one), always torn down with its data."""
    secrets = Path(tempfile.mkdtemp(prefix="flaskstack-secrets-"))
    password_file = secrets / "db_password"
    subprocess.run([str(ROOT / "scripts/db-password.sh"), str(password_file)], check=True, timeout=30)
    composed = Stack(
        name_hint,
        compose_files=compose_files,
        env={"NGINX_LIMITS": "off", "DB_PASSWORD_FILE": str(password_file), **(env or {})},
        root=root,
    )
    composed.password = password_file.read_text().strip()
    try:
        composed.up()
        composed.make("migrate", timeout=600)
        yield composed
    finally:
        composed.down()
        shutil.rmtree(secrets, ignore_errors=True)


def sql(stack, statement, timeout=30, **values):
    """Run `statement` with psql in the db container, over its socket as the database's owner;
    the rows as lists of strings. Each of `values` is a psql variable the statement quotes
    as :'name' (psql quotes it as a literal), so no value is pasted into SQL."""
    variables = [f"--set={name}={value}" for name, value in values.items()]
    result = stack.compose(
        "exec", "-T", "db", "psql", "--username=app", "--dbname=app", "--no-align", "--tuples-only",
        "--field-separator=|", "--set=ON_ERROR_STOP=1", *variables, "--file=-",
        timeout=timeout, input=statement,
    )  # fmt: skip
    return [line.split("|") for line in result.stdout.splitlines() if line]


def server_connections(stack):
    """The connections Postgres holds for clients of the app's database from other containers,
    as (pid, client address, state, backend start) rows: the app's, through PgBouncer. Not
    the db container's own: psql over the socket (this query, and the last one, whose backend
    may not have exited yet on a loaded machine) and the health check's pg_isready over
    loopback."""
    return sql(
        stack,
        "SELECT pid, host(client_addr), state, backend_start FROM pg_stat_activity "
        "WHERE datname = 'app' AND backend_type = 'client backend' AND client_addr IS NOT NULL "
        "AND host(client_addr) NOT IN ('127.0.0.1', '::1')",
    )


class WriteLoop(LoadLoop):
    """Clients POSTing /api/db/writes, each write a new id, on a new connection each time
    (LoadLoop's threads, stop and waits). Every answer is kept by id: a 201 is an
    acknowledged write, which must be in the table. With `retries`, a client sends a write
    that was not acknowledged again under the same id, as a client with an idempotency key
    does (`retried` lists those; `outcomes` holds each write's first try)."""

    def __init__(self, base_url, clients=6, max_seconds=240, max_requests=100_000, retries=0):
        super().__init__(base_url, ("/api/db/writes",), clients, max_seconds, max_requests)
        self.retries = retries
        self.retried = []

    def _client(self, index):
        deadline = time.monotonic() + self.max_seconds
        turn = 0
        while not self._stop.is_set() and time.monotonic() < deadline and len(self.outcomes) < self.max_requests:
            write_id = f"{self.request_id_prefix}{index}-{turn}"
            turn += 1
            for attempt in range(1 + self.retries):
                if attempt:
                    time.sleep(0.2)
                outcome = one_request(
                    self.base_url,
                    "/api/db/writes",
                    method="POST",
                    headers={"X-Request-ID": write_id, "Content-Type": "application/octet-stream"},
                    body=write_id.encode(),
                )
                with self._lock:
                    if attempt:
                        self.retried.append(outcome)
                    else:
                        self.outcomes.append(outcome)
                if outcome.status == 201:
                    break

    @property
    def failures(self):
        """First tries that were not acknowledged (a write's success is a 201, not a 200)."""
        return [o for o in self.outcomes if o.status != 201]

    def acknowledged(self):
        return {o.request_id for o in self.outcomes + self.retried if o.status == 201}

    def unacknowledged(self):
        """Writes with no 201 to any attempt."""
        acknowledged = self.acknowledged()
        return [o for o in self.outcomes if o.request_id not in acknowledged]

    def stored(self, stack):
        """The ids of this loop's writes in the table, with how often each is there."""
        rows = sql(
            stack,
            "SELECT id, count(*) FROM stack_probe_writes WHERE starts_with(id, :'prefix') GROUP BY id",
            prefix=self.request_id_prefix,
        )
        return {write_id: int(count) for write_id, count in rows}
