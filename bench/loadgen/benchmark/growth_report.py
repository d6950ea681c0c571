"""growth.md: the four "how cost grows" measurements as small tables (plots.py draws the two
curves, nginx's memory by idle connections and requests/s by replicas, as growth.png)."""

import itertools

MIB = 2**20
# A machine this busy (cores' worth of CPU, out of all of them) has nothing left to give a replica.
SATURATED = 0.9


def mib(value):
    return f"{value / MIB:.1f}"


def kib(value):
    return f"{value / 1024:.1f}" if value is not None else "n/a"


def idle_connections_table(rows):
    lines = [
        (
            "| idle connections asked | held open | refused | answered, then closed | "
            "nginx memory before (MiB) | holding them (MiB) | per connection (KiB): all | of it heap | "
            "of it the kernel's | of that socket buffers |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        per = row["per_connection"]
        lines.append(
            f"| {row['connections']:,} | {row['held']:,} | {row['refused']:,} | {row.get('closed', 0):,} "
            f"| {mib(row['before']['usage'])} | {mib(row['during']['usage'])} | {kib(per['usage'])} "
            f"| {kib(per['anon'])} | {kib(per.get('kernel'))} | {kib(per['sock'])} |"
        )
    return lines


def sleeping_worker_lines(worker):
    idle, loaded = worker["idle_kib"], worker["loaded_kib"]
    per = worker["per_request_bytes"]
    asleep = worker["in_flight"] or None
    container = (worker["container_loaded"]["usage"] - worker["container_idle"]["usage"]) / asleep if asleep else None
    return [
        (
            "| requests asleep at once | in flight by the gauge | worker RSS idle (MiB) | "
            "with them (MiB) | per request (KiB): RSS | of it heap | "
            "the container's growth per request (KiB) | answered 200 |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {worker['concurrent']:,} (`/api/sleep/{worker['sleep_ms']}`) | {worker['in_flight']:,.0f} "
        f"| {idle['rss'] / 1024:.1f} | {loaded['rss'] / 1024:.1f} | {kib(per['rss'])} | {kib(per['anon'])} "
        f"| {kib(container)} | {worker['answered_200']:,} of {worker['concurrent']:,} |",
    ]


def replicas_table(rows):
    lines = [
        (
            "| replicas | requests/s (median) | vs one replica | each round | p99 (ms) | errors | "
            "CPU per request (µs): replicas | nginx | wrk | Docker | the rest | machine | machine busy (cores) |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        cpu = row["cpu_us"]
        # Docker's processes are counted only where the host's are in view (cpu.processes_cpu_s).
        docker = f"{cpu['docker']:.0f}" if "docker" in cpu else "n/a"
        rounds = ", ".join(f"{value:,.0f}" for value in row["rounds_rps"])
        lines.append(
            f"| {row['replicas']} | {row['rps']:,.0f} | {row['ratio']:.2f} | {rounds} | {row['p99_ms']} "
            f"| {row['errors']} | {cpu.get('servers', 0):.0f} | {cpu.get('nginx', 0):.0f} | {cpu.get('wrk', 0):.0f} "
            f"| {docker} | {cpu.get('rest', 0):.0f} | {cpu.get('machine', 0):.0f} | {row['machine_busy']:.2f} |"
        )
    return lines


def replicas_reading(rows, cores):
    """What the replica rows say, from their own figures: where another replica stopped
    adding requests/s, and whether the cores or the cost per request is why."""
    if not rows:
        return []
    first = rows[0]
    said = []
    for previous, row in itertools.pairwise(rows):
        gain = row["rps"] / previous["rps"] - 1 if previous["rps"] else 0.0
        busy = previous["machine_busy"] / cores
        cost = row["cpu_us"].get("machine", 0) / previous["cpu_us"].get("machine", 1) - 1
        reason = (
            f"the cores were already busy with {previous['replicas']} ({previous['machine_busy']:.2f} of {cores})"
            if busy >= SATURATED
            else f"the cores were {busy:.0%} busy with {previous['replicas']}"
        )
        said.append(
            f"- {previous['replicas']} to {row['replicas']} replicas: {gain:+.0%} requests/s; {reason}; "
            f"a request cost the machine {cost:+.0%} CPU."
        )
    if first["machine_busy"] / cores >= SATURATED:
        said.append(
            f"- With {first['replicas']} replica the machine was already {first['machine_busy']:.2f} of {cores} cores "
            "busy: replicas share the same cores, so another replica adds processes to schedule, not CPU to use."
        )
    else:
        said.append(
            f"- With {first['replicas']} replica the machine was {first['machine_busy']:.2f} of {cores} cores busy: "
            "one replica left CPU unused, which more replicas could take."
        )
    return said


def scale_table(rows):
    lines = [
        (
            "| make scale N= | new replicas | `make scale` returned (s) | "
            "first new replica answered (s) | all new replicas answered (s) | failed requests |"
        ),
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        every = (
            row["all_answered_s"]
            if row["all_answered_s"] is not None
            else f"{row['answered']} of {row['new_replicas']} only"
        )
        lines.append(
            f"| {row['replicas']} | {row['new_replicas']} | {row['make_returned_s']} | {row['first_new_answered_s']} "
            f"| {every} | {row['failed_requests']} of {row['requests']:,} |"
        )
    return lines


def render(growth):
    machine = growth["machine"]
    cores = machine["cores"]
    out = [
        "# How cost grows",
        "",
        f"Measured on {machine['cpu']}, {cores} cores, {machine['memory_gib']} GiB, {machine['kernel']}, "
        f"Docker {machine['docker']}, {machine['date']}.",
        "",
        "## nginx holding idle keep-alive client connections",
        "",
        "A fresh nginx of the stack's (limits off) for each count; each connection fetches the static",
        "file, which nginx serves itself, and stays open, idle. Memory as `docker stats` shows it",
        "(the cgroup's, less its inactive file cache); heap is the processes' anonymous memory, the",
        "kernel's is what the kernel keeps for the container (its sockets among it), socket buffers part of that;",
        "n/a where the cgroup (v1) counts them in the total without saying how much.",
        "",
        *idle_connections_table(growth["idle_connections"]),
        "",
        "## One gevent worker with requests asleep in it",
        "",
        "The default configuration with `GUNICORN_WORKERS=1`, direct; the worker's own memory from",
        "its `/proc/<pid>/status` while the requests sleep, the in-flight gauge (Prometheus's) read",
        "at the same moment.",
        "",
        *sleeping_worker_lines(growth["sleeping_worker"]),
        "",
        "## Replicas on these cores",
        "",
        f"The trivial endpoint through nginx, {growth['replica_clients']} clients, in {growth['rounds']} rounds of "
        f"{growth['duration']} s, the replica counts in turn (every other round reversed); each count has an",
        "nginx of its own in front of that many replicas of the default configuration, all started at once.",
        "",
        *replicas_table(growth["replicas"]),
        "",
        *replicas_reading(growth["replicas"], cores),
        "",
        "## From `make scale N=k` to the new replicas taking traffic",
        "",
    ]
    if growth.get("scale"):
        out += [
            "From one replica, on a stack of its own (`bench/scale_timing.py`): nginx is asked `/api/whoami`",
            "20 ms apart from the moment `make scale` starts; a replica takes traffic when it first answers.",
            "",
            *scale_table(growth["scale"]),
        ]
    else:
        out.append(
            "Not measured in this run (`bench/scale_timing.py` runs on the host: `make bench` or `make bench-growth`)."
        )
    return "\n".join(out) + "\n"
