"""Runs a plan: each server alone on the machine, measured direct and behind nginx."""

import json
import os
import statistics
import urllib.error
import urllib.request

from . import bounds, openloop, pgbouncer, runoff, sweep, wrk
from .containers import Containers, effective_settings, settles, wait_until_serving
from .cpu import CpuMeter, per_request_us
from .plan import COMPUTE, SLEEP, STATIC_FILE, TRIVIAL
from .progress import Progress
from .targets import BARE_PROXY, OPEN_LOOP_FRACTION, SLEEP_1000, STACK_WITHOUT_LOG

WEB = "http://web:8000"
NGINX = "http://nginx:8080"
NGINX_RETURN_200 = "http://nginx:8081/"
# The same nginx image doing nothing but proxying: what the hop itself costs.
NGINX_BARE_PROXY = "http://nginx:8082"
# The stack's site without its access log: what the log costs, told apart from the rest.
NGINX_STACK_WITHOUT_LOG = "http://nginx:8083"
# Measured in turn, round after round, with the default server and nginx both up: the
# targets compare neighbours in time, so a noisy machine moves both sides of a ratio.
PAIRED_CLIENTS = 64
PAIRED = {
    "trivial direct": WEB + TRIVIAL.path,
    "trivial nginx": NGINX + TRIVIAL.path,
    BARE_PROXY: NGINX_BARE_PROXY + TRIVIAL.path,
    STACK_WITHOUT_LOG: NGINX_STACK_WITHOUT_LOG + TRIVIAL.path,
    "nginx static": NGINX + STATIC_FILE,
    "flask static": WEB + STATIC_FILE,
    "nginx return 200": NGINX_RETURN_200,
    # The sleep target: its CPU ceiling is "trivial nginx" in the same rounds.
    SLEEP_1000: NGINX + SLEEP.path,
}


def paired_clients(name):
    return 1000 if name == SLEEP_1000 else PAIRED_CLIENTS


# The path each of the static measurements (PAIRED's URLs) takes.
STATIC_VIAS = {"nginx static": "nginx", "flask static": "direct", "nginx return 200": "nginx"}


def usable_cores():
    return len(os.sched_getaffinity(0))


def measure_compute_ms(samples=15):
    """The median time of one compute request's work, by the app's own clock, one at a time."""
    times = []
    for _ in range(samples):
        with urllib.request.urlopen(WEB + COMPUTE.path, timeout=30) as response:
            times.append(json.load(response)["elapsed_ms"])
    return statistics.median(times)


class Runner:
    def __init__(self, plan, containers: Containers, cores):
        self.plan = plan
        self.containers = containers
        self.cores = cores
        self.rows = []
        self.settings = {}
        self.failures = []
        self.compute_ms = None
        # Each paired measurement's requests/s, p99 and errors, round by round.
        self.paired_runs = {name: [] for name in PAIRED}
        # CPU microseconds per request of each part, for each paired measurement and round.
        self.paired_cpu = {name: [] for name in PAIRED}
        # The containers of the server being measured: "server", and "nginx" when in front.
        self.deployed = {}
        # The mixed workload's runoff (see runoff.py), when the plan measures mixed at its client count.
        self.runoff = None
        # Each paired round's open-loop run at OPEN_LOOP_FRACTION of that round's sleep ceiling.
        self.open_loop_rounds = []
        # The sweep (sweep.py): each workload's ceiling on the default, then every point.
        self.sweeps = {"ceilings": {}, "points": []}
        # PgBouncer's counters, read around each database measurement.
        self.pgbouncer = pgbouncer.Stats(containers.client, containers.network) if plan.measures_database else None
        points = sum(1 for _ in plan.measurements()) + len(plan.static_measurements())
        runoff_rounds = plan.paired_rounds if runoff.CLIENTS in plan.mixed_clients else 0
        alternatives = sum(server.alternative for server in plan.servers)
        paired_points = plan.paired_rounds * (len(PAIRED) + 1) + runoff_rounds * (1 + runoff.RIVALS + alternatives)
        sweep_points = sweep.points(plan)
        seconds = (
            points * (plan.duration + 1)
            + paired_points * (plan.paired_duration + 1)
            + sweep_points * (plan.sweep_duration + 2)
        )
        total = points + paired_points + sweep_points
        self.progress = Progress(total, seconds / total)

    def run(self):
        self.containers.remove_leftovers()
        for server in self.plan.servers:
            try:
                self.run_server(server)
            except Exception as error:
                self.failures.append(f"{server.name}: {error}")
                print(f"!! {server.name}: {error}", flush=True)
            finally:
                self.containers.remove_leftovers()
        self.run_runoff()
        self.run_sweeps()
        return self.rows

    def run_sweeps(self):
        if not self.plan.sweep_fractions:
            return
        ceilings = self.sweeps["ceilings"]
        for server in sweep.servers(self.plan):
            try:
                base, _ = self.deploy(server, "nginx")
                for name, endpoint, connections in sweep.WORKLOADS:
                    if name not in ceilings:
                        # The default's, first: every server is offered fractions of it.
                        measured = wrk.run(base + endpoint.path, connections, self.plan.sweep_duration, endpoint.mix)
                        ceilings[name] = measured["rps"]
                        self.progress.step(f"sweep ceiling: {server.name} {name}", outcome(measured))
                    for fraction, rate in sweep.offered_rates(ceilings[name], self.plan.sweep_fractions):
                        url = base + endpoint.path
                        measured = openloop.run(url, rate, self.plan.sweep_duration, connections, endpoint.mix)
                        self.sweeps["points"].append(
                            {"server": server.name, "default": server.default, "workload": name}
                            | {"fraction": fraction, **measured}
                        )
                        self.progress.step(f"sweep {server.name} {name} at {fraction:.0%}", open_outcome(measured))
                        if not settles(base + TRIVIAL.path):
                            self.containers.remove_leftovers()
                            base, _ = self.deploy(server, "nginx")
            except Exception as error:
                self.failures.append(f"sweep of {server.name}: {error}")
                print(f"!! sweep of {server.name}: {error}", flush=True)
            finally:
                self.containers.remove_leftovers()

    def run_runoff(self):
        if runoff.CLIENTS not in self.plan.mixed_clients or not self.plan.paired_rounds:
            return
        candidates = runoff.candidates(self.rows, self.plan.servers)
        if len(candidates) < 2:
            return
        try:
            self.runoff = runoff.run(
                self.containers, candidates, self.plan.paired_rounds, self.plan.paired_duration, self.progress
            )
        except Exception as error:
            self.failures.append(f"mixed runoff: {error}")
            print(f"!! mixed runoff: {error}", flush=True)

    def run_server(self, server):
        for via in self.plan.vias:
            base, web = self.deploy(server, via)
            database_warm = False
            for endpoint, clients in self.plan.points():
                if endpoint.database:
                    if not database_warm:
                        self.warm_database(server, base, endpoint)
                        database_warm = True
                    measured = self.measure_database(server, base, endpoint, clients)
                else:
                    measured = wrk.run(base + endpoint.path, clients, self.plan.duration, endpoint.mix)
                self.record(server, via, endpoint.name, clients, measured)
                if not settles(base + TRIVIAL.path):
                    # Still busy with requests the last clients left queued: start afresh, so
                    # the next measurement does not pay for them.
                    self.containers.remove_leftovers()
                    base, web = self.deploy(server, via)
                    database_warm = False
            if server.default and via == "nginx":
                for name, clients in self.plan.static_measurements():
                    measured = wrk.run(PAIRED[name], clients, self.plan.duration)
                    self.record_static(name, STATIC_VIAS[name], clients, measured)
                self.run_paired()
            self.settings[server.name] = effective_settings(web)
            self.containers.remove_leftovers()

    def warm_database(self, server, base, endpoint):
        """Open and grow every worker's database pool before the database is measured: psycopg's
        pool starts with one connection (gunicorn's workers open it as they start, the other
        servers at their first request) and adds one at a time while requests wait for it, and
        a 1 s run would mostly measure the growing."""
        clients = self.plan.database_warmup_clients(server)
        wrk.run(base + endpoint.path, clients, self.plan.warmup)
        settles(base + TRIVIAL.path)

    def measure_database(self, server, base, endpoint, clients):
        """wrk on the database endpoint, with PgBouncer's counters around it (pgbouncer.py)."""
        _, limit = bounds.in_flight(server, endpoint, clients, self.plan.database)
        before = self.pgbouncer.drained()
        measured = wrk.run(base + endpoint.path, clients, self.plan.duration, endpoint.mix)
        # Where the connections are the bound, the transactions the run left are let end, so
        # the figures are of whole transactions; where the server's slots are, its backlog can
        # last many seconds, and the counts are corrected by what is still in progress.
        after = self.pgbouncer.drained() if limit == "database" else self.pgbouncer.snapshot()
        measured["database"] = pgbouncer.per_transaction(
            before, after, connections=self.plan.database.connections(server.processes), wait_ms=endpoint.io_ms
        )
        return measured

    @property
    def paired(self):
        """Each paired measurement's requests/s, round by round: what the targets' ratios take."""
        return {name: [run["rps"] for run in runs] for name, runs in self.paired_runs.items()}

    def run_paired(self):
        names = list(PAIRED)
        meter = CpuMeter(self.deployed)
        for number in range(self.plan.paired_rounds):
            # Every other round backwards, so no side always runs first.
            for name in names if number % 2 == 0 else names[::-1]:
                before = meter.snapshot()
                measured = wrk.run(PAIRED[name], paired_clients(name), self.plan.paired_duration)
                self.paired_cpu[name].append(per_request_us(before, meter.snapshot(), measured["requests"]))
                self.paired_runs[name].append(
                    {"rps": measured["rps"], "p99_ms": measured["p99_ms"], "errors": measured["errors"]}
                )
                self.progress.step(f"paired round {number + 1}: {name}", outcome(measured))
                settles(NGINX + TRIVIAL.path)
            self.run_open_loop_round(number)

    def run_open_loop_round(self, number):
        """The latency target's point: sleep/100 over 1000 open connections, offered
        OPEN_LOOP_FRACTION of the rate the same workload reached closed-loop in this round."""
        ceiling = self.paired_runs[SLEEP_1000][-1]["rps"]
        if not ceiling:
            self.open_loop_rounds.append({"ceiling_rps": 0.0})
            return
        rate = OPEN_LOOP_FRACTION * ceiling
        measured = openloop.run(NGINX + SLEEP.path, rate, self.plan.paired_duration, 1000)
        self.open_loop_rounds.append({"ceiling_rps": ceiling, **measured})
        label = f"paired round {number + 1}: sleep/100 open loop at {OPEN_LOOP_FRACTION:.0%}"
        self.progress.step(label, open_outcome(measured))
        settles(NGINX + TRIVIAL.path)

    def deploy(self, server, via):
        """Start the server (and nginx in front of it), wait until it serves, warm it up."""
        web = self.containers.start_server(server)
        self.deployed = {"server": web}
        wait_until_serving(WEB + TRIVIAL.path, web)
        if server.default and self.compute_ms is None:
            self.compute_ms = measure_compute_ms()
        base = WEB
        if via == "nginx":
            nginx = self.containers.start_nginx(server)
            self.deployed["nginx"] = nginx
            wait_until_serving(NGINX + TRIVIAL.path, nginx)
            base = NGINX
        wrk.run(base + TRIVIAL.path, 16, self.plan.warmup)
        return base, web

    def record(self, server, via, endpoint, clients, measured):
        row = {
            "server": server.name,
            "family": server.family,
            "seed": server.seed,
            "default": server.default,
            "via": via,
            "endpoint": endpoint,
            "clients": clients,
            **measured,
        }
        self.rows.append(row)
        self.progress.step(f"{server.name} {via} {endpoint} c={clients}", outcome(measured))

    def record_static(self, name, via, clients, measured):
        row = {
            "server": name,
            "family": "static",
            "seed": False,
            "default": False,
            "via": via,
            "endpoint": "static",
            "clients": clients,
            **measured,
        }
        self.rows.append(row)
        self.progress.step(f"{name} c={clients}", outcome(measured))


def outcome(measured):
    errors = sum(measured["errors"].values())
    return f"{measured['rps']:>8.0f} rps  p99 {measured['p99_ms']:>7.1f} ms" + (f"  {errors} errors" if errors else "")


def open_outcome(measured):
    latency = measured["corrected"]
    errors = sum(measured["errors"].values())
    text = f"{measured['offered_rps']:>8.0f} offered  p99 {latency['p99_ms']:>7.1f} ms"
    text += f"  p99.9 {latency['p999_ms']:>7.1f} ms"
    if errors:
        text += f"  {errors} errors"
    if not measured["generator_kept_up"]:
        text += "  (the generator fell behind)"
    return text


def add_bounds(rows, plan, cores, compute_ms):
    """Give each row its theoretical bound, the fraction of it achieved, and a reason if short."""
    servers = {server.name: server for server in plan.servers}
    endpoints = {endpoint.name: endpoint for endpoint in plan.endpoints}
    ceilings = {}
    for row in rows:
        if row["endpoint"] == TRIVIAL.name:
            key = (row["server"], row["via"])
            ceilings[key] = max(ceilings.get(key, 0), row["rps"])
    for row in rows:
        server, endpoint = servers.get(row["server"]), endpoints.get(row["endpoint"])
        bound = kind = None
        if server and endpoint and (compute_ms or not endpoint.cpu_bound):
            bound, kind = bounds.bound_for(
                server,
                endpoint,
                row["clients"],
                cores=cores,
                compute_ms=compute_ms,
                cpu_ceiling=ceilings.get((row["server"], row["via"])),
                database=plan.database,
            )
        row["bound_rps"] = bound
        row["bound_kind"] = kind
        row["fraction"] = row["rps"] / bound if bound else None
        queued_too_long = False
        if server and endpoint and endpoint.io_ms:
            waiting_at_once, _ = bounds.in_flight(server, endpoint, row["clients"], plan.database)
            # Each client's request waits behind clients / waiting_at_once others' waits.
            queued_too_long = row["clients"] / waiting_at_once * endpoint.io_ms / 1000 > plan.duration / 2
        if server and endpoint and endpoint.database:
            # The connection bound, stated in the report's row: the database's, and the
            # server's own slots when it has fewer.
            row["db_connections"] = plan.database.connections(server.processes)
            row["slots"] = server.slots
        row["shortfall"] = bounds.shortfall_reason(row, queued_too_long)
    return rows
