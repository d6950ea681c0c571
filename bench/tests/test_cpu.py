"""Where the CPU goes: per-request shares from two snapshots, and the machine's busy time."""

import os
import subprocess
import sys

from benchmark import cpu, report, targets

TICKS = os.sysconf("SC_CLK_TCK")


def test_the_machine_is_busy_for_all_but_its_idle_and_iowait_ticks():
    # user nice system idle iowait irq softirq steal guest guest_nice
    first = f"cpu  {3 * TICKS} {TICKS} {2 * TICKS} {50 * TICKS} {9 * TICKS} 0 {TICKS} {TICKS} {7 * TICKS} 0\n"
    assert cpu.machine_busy_s(first + "cpu0 1 2 3 4 5 6 7 8 9 10\n") == 8.0


def test_this_machines_proc_stat_reads():
    assert cpu.machine_busy_now_s() > 0


def test_each_part_is_its_cpu_over_the_requests_and_the_rest_is_what_no_part_used():
    before = {"server": 10.0, "nginx": 1.0, cpu.MACHINE: 100.0, cpu.WRK: 5.0}
    after = {"server": 10.5, "nginx": 1.1, cpu.MACHINE: 101.0, cpu.WRK: 5.2}
    shares = cpu.per_request_us(before, after, requests=1000)
    assert shares == {"server": 500.0, "nginx": 100.0, cpu.MACHINE: 1000.0, cpu.WRK: 200.0, cpu.REST: 200.0}


def test_the_rest_is_never_negative_and_no_requests_gives_nothing():
    before = {"server": 0.0, cpu.MACHINE: 0.0, cpu.WRK: 0.0}
    after = {"server": 1.0, cpu.MACHINE: 0.99, cpu.WRK: 0.0}  # /proc/stat counts in whole ticks
    assert cpu.per_request_us(before, after, requests=100)[cpu.REST] == 0.0
    assert cpu.per_request_us(before, after, requests=0) == {}


def test_wrks_cpu_is_counted_once_it_has_exited():
    before = cpu.children_cpu_s()
    # A child that burns some CPU, like a wrk run does.
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(2_000_000))"], check=True)
    assert cpu.children_cpu_s() > before


def fake_process(proc, pid, comm, utime_ticks, stime_ticks):
    folder = proc / str(pid)
    folder.mkdir()
    (folder / "comm").write_text(comm + "\n")
    # pid (comm) state ppid ... utime stime: the 14th and 15th fields; a name may hold spaces.
    rest = ["S", "1"] + ["0"] * 9 + [str(utime_ticks), str(stime_ticks)] + ["0"] * 20
    (folder / "stat").write_text(f"{pid} ({comm}) " + " ".join(rest) + "\n")


def test_dockers_processes_are_summed_by_name_and_others_left_out(tmp_path):
    fake_process(tmp_path, 10, "dockerd", 3 * TICKS, TICKS)
    fake_process(tmp_path, 11, "containerd-shim", TICKS, TICKS)
    fake_process(tmp_path, 12, "containerd-shim", 0, TICKS)
    fake_process(tmp_path, 13, "containerd", 50 * TICKS, 0)
    fake_process(tmp_path, 14, "nginx: worker", 50 * TICKS, 0)
    (tmp_path / "self").mkdir()
    assert cpu.processes_cpu_s(cpu.DOCKER_PROCESSES, proc=tmp_path) == 7.0


def test_dockers_processes_out_of_view_are_none_not_zero(tmp_path):
    fake_process(tmp_path, 14, "nginx: worker", 50 * TICKS, 0)
    assert cpu.processes_cpu_s(cpu.DOCKER_PROCESSES, proc=tmp_path) is None


def test_a_process_that_exits_while_listed_is_skipped(tmp_path):
    fake_process(tmp_path, 10, "dockerd", TICKS, 0)
    (tmp_path / "11").mkdir()  # listed, then gone: no comm, no stat
    assert cpu.processes_cpu_s(cpu.DOCKER_PROCESSES, proc=tmp_path) == 1.0


def test_this_machines_processes_read():
    # This test's own process is in view wherever it runs.
    with open("/proc/self/comm") as comm:
        name = comm.read().strip()
    assert cpu.processes_cpu_s((name,)) > 0


def test_a_part_missing_from_the_later_snapshot_is_left_out():
    before = {"server": 1.0, cpu.DOCKER: 5.0, cpu.MACHINE: 10.0}
    after = {"server": 1.5, cpu.MACHINE: 11.0}
    assert cpu.DOCKER not in cpu.per_request_us(before, after, requests=1000)


PAIRED_CPU = {
    "trivial direct": [{"server": 500.0, "nginx": 0.0, cpu.WRK: 100.0, cpu.REST: 100.0, cpu.MACHINE: 700.0}] * 2,
    "trivial nginx": [
        {"server": 520.0, "nginx": 100.0, cpu.WRK: 100.0, cpu.REST: 130.0, cpu.MACHINE: 850.0},
        {"server": 540.0, "nginx": 120.0, cpu.WRK: 100.0, cpu.REST: 140.0, cpu.MACHINE: 890.0},
    ],
}
PAIRED = {"trivial direct": [3000, 3100], "trivial nginx": [2500, 2450]}


def test_the_full_stack_target_says_what_a_request_cost_the_machine_each_way():
    check = targets.full_stack_vs_direct([], PAIRED, PAIRED_CPU)
    assert check["holds"] is False
    assert check["measured"].endswith(
        "700 µs direct, 870 µs through nginx, 110 µs of it nginx's own (see Where the CPU goes)"
    )


def test_the_report_tables_the_median_share_of_each_part():
    lines = report.cpu_breakdown(PAIRED, PAIRED_CPU)
    assert "| measurement | requests/s | server | nginx | wrk | the rest | machine |" in lines
    assert "| trivial direct | 3,050 | 500 | 0 | 100 | 100 | 700 |" in lines
    assert "| trivial nginx | 2,475 | 530 | 110 | 100 | 135 | 870 |" in lines
    assert report.cpu_breakdown(PAIRED, {"trivial direct": []}) == []
    # Docker's processes out of view: no column for them, and the rest is said to hold them.
    assert not any("Docker |" in line for line in lines)
    assert any("none of them used (Docker's log pipeline" in line for line in lines)


def test_the_report_has_a_docker_column_when_its_processes_were_measured():
    paired_cpu = {
        name: [{**measured, cpu.DOCKER: 20.0, cpu.REST: measured[cpu.REST] - 20.0} for measured in rounds]
        for name, rounds in PAIRED_CPU.items()
    }
    lines = report.cpu_breakdown(PAIRED, paired_cpu)
    assert "| measurement | requests/s | server | nginx | wrk | Docker | the rest | machine |" in lines
    assert "| trivial nginx | 2,475 | 530 | 110 | 100 | 20 | 115 | 870 |" in lines
