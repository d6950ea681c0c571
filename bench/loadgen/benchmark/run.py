"""Runs a plan: each server alone on the machine, measured direct and behind nginx."""

import json
import os
import statistics
import urllib.error
import urllib.request

from . import bounds, ceiling, openloop, pgbouncer, runoff, sweep, wrk
from .containers import Containers, effective_settings, settles, wait_until_serving
from .cpu import CpuMeter, per_request_us
from .plan import COMPUTE, SLEEP, STATIC_FILE, TRIVIAL, metrics_off
from .progress import Progress
from .targets import (
    BARE_PROXY,
    METRICS_OFF,
    OPEN_LOOP_FRACTIONS,
    SLEEP_1000,
    STACK_WITHOUT_LOG,
    UNLOADED_FRACTION,
    find,
)

WEB = "http://web:8000"
NGINX = "http://nginx:8080"
NGINX_RETURN_200 = "http://nginx:8081/"
# The same nginx image doing nothing but proxying: what the hop itself costs.
NGINX_BARE_PROXY = "http://nginx:8082"
# The stack's site without its access log: what the log costs, told apart from the rest.
NGINX_STACK_WITHOUT_LOG = "http://nginx:8083"
# The default again with APP_METRICS=off, beside it during the paired rounds.
METRICS_OFF_ALIAS = "web-metrics-off"
WEB_METRICS_OFF = f"http://{METRICS_OFF_ALIAS}:8000"
# Measured in turn, round after round, with the default server and nginx both up: the
# targets compare neighbours in time, so a noisy machine moves both sides of a ratio.
PAIRED_CLIENTS = 64
PAIRED = {
    "trivial direct": WEB + TRIVIAL.path,
    # Next to the default direct, in either order of the rounds: the metrics' cost.
    METRICS_OFF: WEB_METRICS_OFF + TRIVIAL.path,
    "trivial nginx": NGINX + TRIVIAL.path,
    BARE_PROXY: NGINX_BARE_PROXY + TRIVIAL.path,
    STACK_WITHOUT_LOG: NGINX_STACK_WITHOUT_LOG + TRIVIAL.path,
    "nginx static": NGINX + STATIC_FILE,
    "flask static": WEB + STATIC_FILE,
    "nginx return 200": NGINX_RETURN_200,
    # The sleep target: its CPU ceiling is "trivial nginx" in the same rounds.
    SLEEP_1000: NGINX + SLEEP.path,
}
# The open loop's connections on sleep/100, as in the latency target.
OPEN_LOOP_CONNECTIONS = 1000


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


def closed_loop_sleep_rps(rows, paired_runs, server):
    """What wrk measured for `server` on sleep/100 at 1000 clients behind nginx: for the
    default, the paired rounds' median once they have run; else its single run's row; None
    when neither has an answer."""
    runs = ((paired_runs or {}).get(SLEEP_1000) or []) if server.default else []
    if runs:
        return statistics.median(run["rps"] for run in runs)
    row = find(rows, SLEEP.name, 1000, "nginx", server=server.name)
    return row["rps"] if row and row["rps"] else None


def planned(plan):
    """(measurements, seconds): what a plan runs, for the progress's count and first estimate."""
    points = sum(1 for _ in plan.measurements()) + len(plan.static_measurements())
    runoff_rounds = plan.paired_rounds if runoff.CLIENTS in plan.mixed_clients else 0
    alternatives = sum(server.alternative for server in plan.servers)
    # The default, itself with APP_METRICS=off, its rivals and every alternative (at most:
    # an alternative may be a rival).
    contenders = 2 + runoff.RIVALS + alternatives
    paired_points = plan.paired_rounds * len(PAIRED) + runoff_rounds * contenders
    # The default's ceiling search and its unloaded run, then each round's runs.
    open_loop_runs = sweep.SEARCH_RUNS + 1 + plan.paired_rounds * len(OPEN_LOOP_FRACTIONS) if plan.paired_rounds else 0
    open_loop_runs += sweep.searches(plan) * sweep.SEARCH_RUNS
    sweep_points = sweep.points(plan)
    seconds = (
        points * (plan.duration + 1)
        + paired_points * (plan.paired_duration + 1)
        + open_loop_runs * (plan.open_loop_duration + 2)
        + sweep_points * (plan.sweep_duration + 2)
    )
    return points + paired_points + open_loop_runs + sweep_points, seconds


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
        # The default in the open loop on sleep/100, found when the paired rounds start:
        # {"ceiling": ceiling.search's result, "unloaded": the run at UNLOADED_FRACTION of it,
        # "rounds": each round's runs at OPEN_LOOP_FRACTIONS of it}.
        self.open_loop = None
        # The sweep (sweep.py): each workload's ceiling on the default and what kind it is,
        # each server's own open-loop ceiling, then every point.
        self.sweeps = {"ceilings": {}, "ceiling_kinds": {}, "open_loop_ceilings": {}, "points": []}
        # PgBouncer's counters, read around each database measurement.
        self.pgbouncer = pgbouncer.Stats(containers.client, containers.network) if plan.measures_database else None
        total, seconds = planned(plan)
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
        for server in sweep.servers(self.plan):
            try:
                self.sweep_server(server)
            except Exception as error:
                self.failures.append(f"sweep of {server.name}: {error}")
                print(f"!! sweep of {server.name}: {error}", flush=True)
            finally:
                self.containers.remove_leftovers()

    def sweep_server(self, server):
        """The server's own open-loop ceiling, then each workload at every fraction of the
        default's ceiling on it (the default, swept first, sets them)."""
        base, _ = self.deploy(server, "nginx")
        found = self.own_open_loop_ceiling(server, base)
        self.sweeps["open_loop_ceilings"][server.name] = {"default": server.default, "family": server.family, **found}
        for name, endpoint, connections in sweep.WORKLOADS:
            if name not in self.sweeps["ceilings"]:
                if not server.default:
                    # The default's sweep failed: no rates to offer that are fractions of its.
                    continue
                self.set_sweep_ceiling(base, name, endpoint, connections, found["ceiling_rps"])
            base = self.sweep_workload(server, base, name, endpoint, connections)

    def own_open_loop_ceiling(self, server, base):
        """The server's open-loop ceiling on sleep/100: the default's as the paired rounds found
        it, when they did; searched now otherwise."""
        if server.default and self.open_loop:
            return self.open_loop["ceiling"]
        return self.search_open_loop_ceiling(server, base)

    def set_sweep_ceiling(self, base, name, endpoint, connections, open_loop_ceiling_rps):
        """The rate every server is offered fractions of on a workload, from the default."""
        kind = sweep.yardstick(name, open_loop_ceiling_rps)
        if kind == sweep.OPEN_LOOP:
            rps = open_loop_ceiling_rps
        else:
            measured = wrk.run(base + endpoint.path, connections, self.plan.sweep_duration, endpoint.mix)
            self.progress.step(f"sweep ceiling: {name}", outcome(measured))
            rps = measured["rps"]
        self.sweeps["ceilings"][name], self.sweeps["ceiling_kinds"][name] = rps, kind

    def sweep_workload(self, server, base, name, endpoint, connections):
        """The open loop at each fraction of the workload's ceiling; the base URL, as a server
        that does not settle is started afresh."""
        for fraction, rate in sweep.offered_rates(self.sweeps["ceilings"][name], self.plan.sweep_fractions):
            measured = openloop.run(base + endpoint.path, rate, self.plan.sweep_duration, connections, endpoint.mix)
            self.sweeps["points"].append(
                {"server": server.name, "default": server.default, "workload": name}
                | {"fraction": fraction, **measured}
            )
            self.progress.step(f"sweep {server.name} {name} at {fraction:.0%}", open_outcome(measured))
            if not settles(base + TRIVIAL.path):
                self.containers.remove_leftovers()
                base, _ = self.deploy(server, "nginx")
        return base

    def search_open_loop_ceiling(self, server, base):
        """The highest rate `server` serves on sleep/100 over 1000 open connections behind
        nginx (ceiling.py), from a first guess under what wrk did there."""
        closed = closed_loop_sleep_rps(self.rows, self.paired_runs, server)
        if closed is None:
            closed = wrk.run(base + SLEEP.path, OPEN_LOOP_CONNECTIONS, self.plan.duration)["rps"]
        first_guess = ceiling.first_guess(closed)

        def measure(rate):
            measured = self.open_loop_run(base, rate)
            reasons = ceiling.why_not_served(measured)
            label = f"open-loop ceiling of {server.name}: {rate:,.0f} rps"
            self.progress.step(label, "; ".join(reasons) or "served")
            return measured

        return ceiling.search(measure, first_guess) | {"first_guess_rps": round(first_guess, 1)}

    def open_loop_run(self, base, rate):
        """sleep/100 over 1000 open connections at `rate`, from one generator process; then the
        server is let settle."""
        url = base + SLEEP.path
        measured = openloop.run(url, rate, self.plan.open_loop_duration, OPEN_LOOP_CONNECTIONS, processes=1)
        settles(base + TRIVIAL.path)
        return measured

    def run_runoff(self):
        if runoff.CLIENTS not in self.plan.mixed_clients or not self.plan.paired_rounds:
            return
        candidates = runoff.candidates(self.rows, self.plan.servers)
        # The default and itself without metrics compare with no one.
        if len(candidates) < 3:
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
                self.run_paired(server)
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

    def run_paired(self, server):
        """The targets' paired rounds, with the default and its nginx up: the default's
        open-loop ceiling first, then each round's closed-loop measurements and open-loop runs.
        The default with APP_METRICS=off runs beside it meanwhile, and is removed after."""
        if not self.plan.paired_rounds:
            return
        beside = self.start_metrics_off(server)
        try:
            self.measure_open_loop_ceiling(server)
            meters = self.paired_meters(beside)
            for number in range(self.plan.paired_rounds):
                self.run_closed_loop_round(number, meters)
                self.run_open_loop_round(number)
        finally:
            self.containers.stop(beside)

    def start_metrics_off(self, server):
        """The default again with APP_METRICS=off, serving and warmed up, beside the default."""
        container = self.containers.start_server(metrics_off(server), alias=METRICS_OFF_ALIAS)
        wait_until_serving(WEB_METRICS_OFF + TRIVIAL.path, container)
        wrk.run(WEB_METRICS_OFF + TRIVIAL.path, 16, self.plan.warmup)
        return container

    def paired_meters(self, beside):
        """Each paired measurement's CPU meter: the default's containers, but for the
        measurement without metrics, whose server is the container beside it."""
        default = CpuMeter(self.deployed)
        without_metrics = CpuMeter({**self.deployed, "server": beside})
        return {name: without_metrics if name == METRICS_OFF else default for name in PAIRED}

    def run_closed_loop_round(self, number, meters):
        names = list(PAIRED)
        # Every other round backwards, so no side always runs first.
        for name in names if number % 2 == 0 else names[::-1]:
            before = meters[name].snapshot()
            measured = wrk.run(PAIRED[name], paired_clients(name), self.plan.paired_duration)
            self.paired_cpu[name].append(per_request_us(before, meters[name].snapshot(), measured["requests"]))
            self.paired_runs[name].append(
                {"rps": measured["rps"], "p99_ms": measured["p99_ms"], "errors": measured["errors"]}
            )
            self.progress.step(f"paired round {number + 1}: {name}", outcome(measured))
            settles(NGINX + TRIVIAL.path)

    def measure_open_loop_ceiling(self, server):
        """The default's open-loop ceiling on sleep/100 behind its nginx, then one run at
        UNLOADED_FRACTION of it: the p99 with no queue, that the loaded runs' is judged against."""
        found = self.search_open_loop_ceiling(server, NGINX)
        self.open_loop = {"ceiling": found, "unloaded": None, "rounds": []}
        if not found["ceiling_rps"]:
            return
        measured = self.open_loop_run(NGINX, UNLOADED_FRACTION * found["ceiling_rps"])
        self.open_loop["unloaded"] = {"fraction": UNLOADED_FRACTION, **measured}
        self.progress.step(f"sleep/100 open loop at {UNLOADED_FRACTION:.0%} of its ceiling", open_outcome(measured))

    def run_open_loop_round(self, number):
        """sleep/100 over 1000 open connections at each of OPEN_LOOP_FRACTIONS of the default's
        open-loop ceiling, the other way round every other round."""
        ceiling_rps = self.open_loop["ceiling"]["ceiling_rps"]
        if not ceiling_rps:
            return
        for fraction in OPEN_LOOP_FRACTIONS if number % 2 == 0 else OPEN_LOOP_FRACTIONS[::-1]:
            measured = self.open_loop_run(NGINX, fraction * ceiling_rps)
            self.open_loop["rounds"].append(
                {"round": number + 1, "fraction": fraction, "ceiling_rps": ceiling_rps, **measured}
            )
            self.progress.step(
                f"paired round {number + 1}: sleep/100 open loop at {fraction:.0%}", open_outcome(measured)
            )

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
