"""What a benchmark run measures: the servers, the endpoints, the client counts and durations."""

from dataclasses import dataclass, field, replace

# The trivial, IO-bound and CPU-bound endpoints, and the wait the IO-bound ones ask for.
IO_WAIT_MS = 100
COMPUTE_ROUNDS = 20_000
STATIC_FILE = "/static/css/site.css"
# Seconds of an open-loop run over 1000 connections at the least: a shorter one is mostly
# their opening and settling.
OPEN_LOOP_MIN_DURATION = 5


@dataclass(frozen=True)
class Server:
    """One server configuration of the app, started in the bench servers image."""

    name: str
    family: str
    # None: the image's own command (gunicorn with the stack's gunicorn.conf.py).
    command: tuple = None
    env: dict = field(default_factory=dict)
    # Python processes serving requests: the CPU parallelism the GIL leaves.
    processes: int = 1
    # Requests served at once; None: one per client (an event loop, or a thread per connection).
    slots: int = None
    # One of the configurations the seed articles measured.
    seed: bool = False
    # What `docker compose up` runs.
    default: bool = False
    # A server a team would pick instead of ours, set up as its documentation recommends for
    # production: always in the mixed workload's runoff against the default.
    alternative: bool = False
    # Settings of the nginx in front of it, beyond the stack's defaults.
    nginx_env: dict = field(default_factory=dict)

    def __hash__(self):
        return hash(self.name)

    @property
    def counts_metrics(self):
        """Whether the entry point counts each request for Prometheus: the metrics are exported
        from gunicorn's hooks, so under any other server it counts none (it finds no
        multiprocess folder), and APP_METRICS=off turns them off under gunicorn too."""
        return self.family == "gunicorn" and self.env.get("APP_METRICS") != "off"


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    # Milliseconds each request waits on IO (the sleep and the upstream call).
    io_ms: int = 0
    # CPU-bound: its bound is the measured cost of one request on each usable core.
    cpu_bound: bool = False
    # For the mixed workload: weight:path pairs for wrk/mixed.lua.
    mix: tuple = ()
    # Waits holding a pooled database connection: the connections bound it too (Database).
    database: bool = False


@dataclass(frozen=True)
class Database:
    """The connections the database endpoint's requests can hold at once.

    Every server under test reaches Postgres through the benchmark's PgBouncer (transaction
    pooling), as the stack's web replicas do: PgBouncer holds at most `pgbouncer_pool` server
    connections, shared by every worker, and each worker process has its own psycopg pool of
    at most `worker_pool` (APP_DB_POOL_SIZE). bench/compose.yaml sets both, and the load
    generator reads them from there; the defaults are the benchmark's, not the stack's (20
    and 10): Postgres's max_connections is 100, and 80 leaves room for psql and a migration.
    """

    pgbouncer_pool: int = 80
    worker_pool: int = 80

    def connections(self, processes):
        """Requests that can be in the database at once across `processes` worker processes."""
        return min(self.pgbouncer_pool, self.worker_pool * processes)


TRIVIAL = Endpoint("trivial", "/healthz")
SLEEP = Endpoint("sleep", f"/api/sleep/{IO_WAIT_MS}", io_ms=IO_WAIT_MS)
OUTBOUND = Endpoint("outbound", f"/api/outbound/{IO_WAIT_MS}", io_ms=IO_WAIT_MS)
COMPUTE = Endpoint("compute", f"/api/compute/{COMPUTE_ROUNDS}", cpu_bound=True)
# The seeds' IO-bound case with a real database: a pooled connection held IO_WAIT_MS in
# Postgres (SELECT pg_sleep), through PgBouncer.
DB_SLEEP = Endpoint("db-sleep", f"/api/db/sleep/{IO_WAIT_MS}", io_ms=IO_WAIT_MS, database=True)
# A day of a typical API: mostly quick answers, some waiting on IO, a little CPU work.
MIXED = Endpoint(
    "mixed",
    "/",
    mix=(
        "50:/healthz",
        "20:/api/sleep/50",
        "20:/api/outbound/50",
        "10:/api/compute/5000",
    ),
)


def gunicorn(worker_class, workers, threads=1, *, seed=True, default=False):
    name = f"gunicorn {worker_class} w{workers}" + (f" t{threads}" if worker_class == "gthread" else "")
    # A gevent worker takes a greenlet per connection: no fixed number of slots.
    slots = None if worker_class == "gevent" else workers * threads
    env = {"GUNICORN_WORKER_CLASS": worker_class, "GUNICORN_WORKERS": str(workers), "GUNICORN_THREADS": str(threads)}
    return Server(name, "gunicorn", env=env, processes=workers, slots=slots, seed=seed, default=default)


def default_server(cpus):
    """What compose runs: no GUNICORN_* variable set, so stack/gunicorn_settings.py decides."""
    server = gunicorn("gevent", cpus, seed=False, default=True)
    return Server(f"{server.name} (default)", "gunicorn", env={}, processes=cpus, slots=None, default=True)


def metrics_off(server):
    """The same server with APP_METRICS=off: beside the default, it tells what the metrics
    cost, and it meets the servers that count none on equal terms."""
    return replace(
        server,
        name=f"{server.name}, APP_METRICS=off",
        env={**server.env, "APP_METRICS": "off"},
        seed=False,
        default=False,
        alternative=False,
    )


def flask_dev():
    # `flask run` serves only a Flask app object, and the stack's entry point wraps one, so the
    # same development server (werkzeug's, threaded, as `flask run --with-threads`) is started
    # on the entry point directly.
    serve = (
        "from werkzeug.serving import run_simple; from stack.wsgi import application; "
        "run_simple('0.0.0.0', 8000, application, threaded=True)"
    )
    return Server("flask dev server (threaded)", "flask-dev", command=("python", "-c", serve), seed=True)


def waitress(threads):
    command = ("waitress-serve", "--listen=0.0.0.0:8000", f"--threads={threads}", "stack.wsgi:application")
    return Server(f"waitress t{threads}", "waitress", command=command, slots=threads, seed=True)


def uwsgi(processes, threads):
    command = (
        # The HTTP/1.1 socket keeps connections alive, like every other server here.
        "uwsgi",
        "--http11-socket",
        ":8000",
        "--module",
        "stack.wsgi:application",
        "--master",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        # uWSGI otherwise reloads on SIGTERM instead of stopping.
        "--die-on-term",
    )
    name = f"uwsgi p{processes}" + (f" t{threads}" if threads > 1 else "")
    return Server(name, "uwsgi", command=command, processes=processes, slots=processes * threads, seed=True)


def uwsgi_gevent(processes, cores=1000):
    """uWSGI's gevent loop engine, as its documentation sets it up for production: a master,
    the app required to load, one interpreter, gevent's monkey patching before the app loads
    (as gunicorn's gevent worker does), and no request log (nginx logs every request)."""
    command = (
        "uwsgi",
        # Its HTTP/1.1 socket stalls and fails under the gevent engine (uWSGI issue #1964,
        # BlockingSwitchOutError in uwsgi_gevent_main, seen here with uWSGI 2.0.30): the plain
        # HTTP socket works, and closes each connection, so nginx connects anew per request.
        "--http-socket",
        ":8000",
        "--module",
        "stack.wsgi:application",
        "--master",
        "--processes",
        str(processes),
        "--gevent",
        str(cores),
        "--gevent-early-monkey-patch",
        "--need-app",
        "--single-interpreter",
        "--disable-logging",
        "--die-on-term",
    )
    name = f"uwsgi gevent p{processes}"
    return Server(name, "uwsgi", command=command, processes=processes, slots=processes * cores, alternative=True)


def granian(workers):
    """granian's WSGI interface as its README advises: one worker per core, and its own
    choice of threads and blocking threads."""
    command = (
        "granian",
        "--interface",
        "wsgi",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--workers",
        str(workers),
        # nginx speaks HTTP/1.1 to its upstreams and nothing here opens a WebSocket.
        "--http",
        "1",
        "--no-ws",
        "stack.wsgi:application",
    )
    # Requests in flight: granian's --backpressure, by default its backlog (1024) shared
    # among the workers, so the same in all whatever the worker count.
    name = f"granian wsgi w{workers}"
    return Server(name, "granian", command=command, processes=workers, slots=1024, alternative=True)


def uvicorn(workers):
    command = (
        "uvicorn",
        "asgi_reference:app",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--workers",
        str(workers),
        # Longer than nginx's upstream keepalive_timeout (5s), as the stack's gunicorn is
        # (GUNICORN_KEEPALIVE): otherwise both close idle connections at the same moment.
        "--timeout-keep-alive",
        "75",
    )
    return Server(f"uvicorn+starlette w{workers} (ASGI reference)", "uvicorn", command=command, processes=workers)


def seed_gunicorn_matrix():
    """The seed's -k sync/gevent x -w 1,2,4 x --threads 1,2,4 (gunicorn runs sync with threads as gthread)."""
    servers = []
    for workers in (1, 2, 4):
        servers.append(gunicorn("sync", workers))
        servers += [gunicorn("gthread", workers, threads) for threads in (2, 4)]
        servers.append(gunicorn("gevent", workers))
    return servers


def full_servers(cpus):
    default = default_server(cpus)
    matrix = [s for s in seed_gunicorn_matrix() if s.env != {**gunicorn("gevent", cpus).env}]
    return [
        flask_dev(),
        waitress(4),
        waitress(10),
        uwsgi(4, 1),
        uwsgi(1, 4),
        uwsgi_gevent(cpus),
        granian(cpus),
        *matrix,
        default,
        uvicorn(cpus),
    ]


def quick_servers(cpus):
    return [
        flask_dev(),
        waitress(4),
        uwsgi(4, 1),
        gunicorn("sync", 4),
        gunicorn("gthread", 2, 4),
        uwsgi_gevent(cpus),
        granian(cpus),
        default_server(cpus),
        uvicorn(cpus),
    ]


def tuning_variants(cpus, chosen=()):
    """The default configuration, then the same with one setting changed at a time (only those
    whose names contain one of the `chosen` words, when given)."""
    default = default_server(cpus)
    variants = {
        # The default itself again, in a container of its own: what a ratio reads when nothing
        # differs, so a variant's distance from 1 can be told from the bench's own spread.
        "nothing changed (A/A control)": ({}, {}),
        # The default before the benchmark: a busy worker recycled every few seconds.
        "GUNICORN_MAX_REQUESTS=5000": ({"GUNICORN_MAX_REQUESTS": "5000", "GUNICORN_MAX_REQUESTS_JITTER": "500"}, {}),
        # Two processes per core instead of one.
        f"GUNICORN_WORKERS={2 * cpus}": ({"GUNICORN_WORKERS": str(2 * cpus)}, {}),
        "GUNICORN_WORKER_CLASS=gthread": ({"GUNICORN_WORKER_CLASS": "gthread"}, {}),
        # gunicorn's own access log on (off by default: nginx's has every request).
        "GUNICORN_ACCESS_LOG=on": ({"GUNICORN_ACCESS_LOG": "on"}, {}),
        # No Prometheus metrics (on by default): what counting every request costs.
        "APP_METRICS=off": ({"APP_METRICS": "off"}, {}),
        # gunicorn's own text lines instead of JSON ones (json_logs.py, the default).
        "GUNICORN_LOG_FORMAT=text": ({"GUNICORN_LOG_FORMAT": "text"}, {}),
        # Next to no idle connections kept from nginx to gunicorn: most requests connect anew.
        "NGINX_UPSTREAM_KEEPALIVE=1": ({}, {"NGINX_UPSTREAM_KEEPALIVE": "1"}),
        # Enough idle connections per nginx worker for 1000 clients' requests to reuse them.
        "NGINX_UPSTREAM_KEEPALIVE=512": ({}, {"NGINX_UPSTREAM_KEEPALIVE": "512"}),
        # A gevent worker's connections without turns (connection_turns.py): each greenlet
        # reads its connection's next request as soon as it has answered one.
        "GUNICORN_CONNECTION_TURNS=off": ({"GUNICORN_CONNECTION_TURNS": "off"}, {}),
        # No recycling by request count (memory's ceiling still recycles): no worker restarts
        # during a measurement.
        "GUNICORN_MAX_REQUESTS=0": ({"GUNICORN_MAX_REQUESTS": "0", "GUNICORN_MAX_REQUESTS_JITTER": "0"}, {}),
    }
    chosen = [word.lower() for word in chosen]
    return [default] + [
        Server(f"default, but {name}", "gunicorn", env=env, processes=cpus, nginx_env=nginx_env)
        for name, (env, nginx_env) in variants.items()
        if not chosen or any(word in name.lower() for word in chosen)
    ]


@dataclass(frozen=True)
class Plan:
    name: str
    servers: tuple
    endpoints: tuple
    clients: tuple
    mixed_clients: tuple
    # Seconds of load per measurement, and of warm-up after each server starts.
    duration: int
    warmup: int
    # Rounds of the paired measurements behind the targets (see run.PAIRED), and seconds of
    # each: longer, as 1000 clients spend the first part of a run connecting.
    paired_rounds: int = 3
    paired_duration: int = 2
    vias: tuple = ("direct", "nginx")
    # The open-loop sweep (sweep.py): fractions of the default's ceiling on each workload,
    # seconds of each rate, and whether the other servers are swept beside the default.
    sweep_fractions: tuple = ()
    sweep_duration: int = 5
    sweep_others: bool = False
    # The database endpoint's client counts, when not `clients` (the quick plan's shorter list).
    db_clients: tuple = None
    database: Database = Database()

    def clients_of(self, endpoint):
        """The client counts an endpoint is measured at."""
        if endpoint.database and self.db_clients is not None:
            return self.db_clients
        return self.clients

    @property
    def open_loop_duration(self):
        """Seconds of each open-loop run on sleep/100 over 1000 connections, in the paired rounds
        and in every ceiling search: the paired rounds' own, but never under
        OPEN_LOOP_MIN_DURATION. One length for all, so that the servers' ceilings compare."""
        return max(self.paired_duration, OPEN_LOOP_MIN_DURATION)

    @property
    def measures_database(self):
        return any(endpoint.database for endpoint in self.endpoints)

    def database_warmup_clients(self, server):
        """Clients enough to grow every worker's pool as far as the database measurements can
        use it (Runner.warm_database): no more than the server serves at once, the largest
        client count measured, or all the workers' pools together."""
        most = max((max(self.clients_of(endpoint)) for endpoint in self.endpoints if endpoint.database), default=0)
        clients = min(most, server.processes * self.database.worker_pool)
        return clients if server.slots is None else min(clients, server.slots)

    def points(self):
        """The (endpoint, clients) measured on each server and path, in run order."""
        # CPU-bound runs last: a CPU backlog that 1000 clients leave behind can outlast the
        # settling check and would starve the run after it.
        io_first = [(e, c) for e in self.endpoints if not e.cpu_bound for c in self.clients_of(e)]
        cpu_last = [(e, c) for e in self.endpoints if e.cpu_bound for c in self.clients_of(e)]
        return io_first + [(MIXED, clients) for clients in self.mixed_clients] + cpu_last

    def measurements(self):
        """Every (server, via, endpoint, clients) the plan measures, in run order, static ones aside."""
        for server in self.servers:
            for via in self.vias:
                for endpoint, clients in self.points():
                    yield server, via, endpoint, clients

    def static_measurements(self):
        """The static file three ways, and nginx's own answer, measured with the default server."""
        names = ("nginx static", "flask static", "nginx return 200")
        return [(name, clients) for name in names for clients in self.clients]


def make_plan(name, cpus, duration=None, database=None):
    database = database or Database()
    if name == "full":
        return Plan(
            "full",
            tuple(full_servers(cpus)),
            (TRIVIAL, SLEEP, OUTBOUND, DB_SLEEP, COMPUTE),
            clients=(16, 64, 256, 1000),
            mixed_clients=(64,),
            duration=duration or 2,
            warmup=1,
            paired_rounds=5,
            paired_duration=5,
            sweep_fractions=tuple(step / 10 for step in range(1, 11)),
            sweep_duration=5,
            sweep_others=True,
            database=database,
        )
    if name == "quick":
        return Plan(
            "quick",
            tuple(quick_servers(cpus)),
            (TRIVIAL, SLEEP, OUTBOUND, DB_SLEEP, COMPUTE),
            clients=(64, 1000),
            # One count, where PgBouncer's pool binds (more clients than its connections) and
            # the queue for them (256 / 80 x 100 ms) still fits well inside a 1 s run; at 1000
            # the queue alone would outlast it.
            db_clients=(256,),
            mixed_clients=(64,),
            duration=duration or 1,
            warmup=1,
            paired_rounds=2,
            paired_duration=2,
            sweep_fractions=(0.3, 0.8),
            sweep_duration=2,
            database=database,
        )
    raise ValueError(f"unknown plan {name!r}: full or quick")
