"""The CPUs this process may really use, which the worker count is derived from."""

import math
import os
from pathlib import Path


def usable_cpu_count(cgroup_root="/sys/fs/cgroup", affinity=None):
    """CPUs this process may really use: its affinity mask capped by any cgroup CPU quota.

    os.cpu_count() reports the host's CPUs even when the container is limited to fewer
    (docker run --cpus, ECS task cpu), which would start too many workers.
    """
    if affinity is None:
        affinity = len(os.sched_getaffinity(0))
    quota = cgroup_cpu_quota(Path(cgroup_root))
    if quota is not None:
        return max(1, min(affinity, math.ceil(quota)))
    return max(1, affinity)


def cgroup_cpu_quota(root):
    """The CPU quota in CPUs (e.g. 1.5), or None when unlimited or unknown."""
    v2 = root / "cpu.max"
    if v2.is_file():
        quota, _, period = v2.read_text().strip().partition(" ")
        if quota == "max":
            return None
        return int(quota) / int(period or 100000)
    v1_quota = root / "cpu" / "cpu.cfs_quota_us"
    v1_period = root / "cpu" / "cpu.cfs_period_us"
    if v1_quota.is_file() and v1_period.is_file():
        quota = int(v1_quota.read_text())
        if quota <= 0:
            return None
        return quota / int(v1_period.read_text())
    return None
