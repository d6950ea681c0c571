"""Where the machine's CPU went during a measurement, per request: the server under test,
nginx, wrk, Docker's own processes (the pipeline that carries every container's stdout to
its log), and the rest (the kernel's network path between containers, anything else).

On a machine where all of them share the cores, a throughput ratio is the inverse ratio of
the CPU each request costs; this says which part of a request's cost each one adds."""

import os
import resource

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WRK = "wrk"
DOCKER = "docker"
REST = "rest"
MACHINE = "machine"
# Docker's processes on the host that carry a container's output (each line written to
# stdout) into its log: the shim of each container, which reads it, and the daemon, which
# writes it through the log driver. Names as the kernel keeps them (/proc/<pid>/comm, at
# most 15 characters: containerd-shim-runc-v2 is containerd-shim).
DOCKER_PROCESSES = ("dockerd", "containerd-shim")


def machine_busy_s(proc_stat_text):
    """CPU seconds the whole machine has spent busy, from /proc/stat's first line (not
    namespaced: inside a container it counts the host's CPUs)."""
    fields = proc_stat_text.splitlines()[0].split()
    if fields[0] != "cpu":
        raise ValueError(f"/proc/stat does not start with the machine's cpu line: {fields[0]!r}")
    # user nice system idle iowait irq softirq steal [guest guest_nice, already in user and nice]
    ticks = [int(value) for value in fields[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / CLOCK_TICKS


def machine_busy_now_s():
    """The machine's busy CPU seconds so far, read from /proc/stat now."""
    with open("/proc/stat") as stat:
        return machine_busy_s(stat.read())


def container_cpu_s(container):
    """CPU seconds a container's processes have used (Docker's cumulative counter)."""
    stats = container.stats(stream=False, one_shot=True)
    return stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9


def processes_cpu_s(names, proc="/proc"):
    """CPU seconds (user and system) the running processes of these names have used, or None
    when none is visible: outside the host's process namespace (the load generator's
    compose service shares it, `pid: host`), only the container's own processes are."""
    total, seen = 0.0, False
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(f"{proc}/{entry}/comm") as comm:
                if comm.read().strip() not in names:
                    continue
            with open(f"{proc}/{entry}/stat") as stat:
                # The fields after the name, which may hold spaces, in parentheses:
                # state is the first, utime and stime the 12th and 13th (proc(5)).
                fields = stat.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # gone between the listing and the read
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        seen = True
    return total if seen else None


def children_cpu_s():
    """CPU seconds of this process's finished children: the wrk runs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """Snapshots of the named containers', wrk's and the machine's CPU seconds."""

    def __init__(self, containers):
        self.containers = containers

    def snapshot(self):
        parts = {name: container_cpu_s(container) for name, container in self.containers.items()}
        parts[MACHINE] = machine_busy_now_s()
        parts[WRK] = children_cpu_s()
        docker = processes_cpu_s(DOCKER_PROCESSES)
        if docker is not None:
            parts[DOCKER] = docker
        return parts


def per_request_us(before, after, requests):
    """Microseconds of CPU per request of each part between two snapshots; the rest is the
    machine's busy time that none of the named parts used."""
    if not requests:
        return {}
    used = {name: max(0.0, after[name] - before[name]) for name in before if name in after}
    named = sum(seconds for name, seconds in used.items() if name != MACHINE)
    used[REST] = max(0.0, used[MACHINE] - named)
    return {name: round(seconds / requests * 1e6, 1) for name, seconds in used.items()}
