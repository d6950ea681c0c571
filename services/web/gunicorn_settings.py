"""gunicorn settings computed from environment variables (imported by gunicorn.conf.py).

Kept apart from gunicorn.conf.py so the logic can be unit tested without starting gunicorn.
"""

import math
import os
from pathlib import Path

WORKER_CLASSES = ("sync", "gthread", "gevent")

# Settings logged once at start, in this order.
LOGGED_SETTINGS = (
    "bind", "worker_class", "workers", "threads", "worker_connections", "timeout",
    "graceful_timeout", "keepalive", "max_requests", "max_requests_jitter",
    "worker_tmp_dir", "forwarded_allow_ips", "preload_app",
)


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


def default_workers(worker_class, cpus):
    """Processes to start when GUNICORN_WORKERS is not set."""
    if worker_class == "sync":
        # A sync worker is idle while it waits on IO: the classic 2 x CPUs + 1.
        return 2 * cpus + 1
    # gevent and gthread wait on IO inside the worker: one process per CPU keeps each busy.
    return cpus


def _int(environ, name, default, minimum=0):
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _flag(environ, name):
    raw = environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def settings_from_env(environ, cpus=None):
    """Return gunicorn settings (names as in a gunicorn config file) for this environment."""
    worker_class = environ.get("GUNICORN_WORKER_CLASS", "").strip() or "gevent"
    if worker_class not in WORKER_CLASSES:
        raise ValueError(f"GUNICORN_WORKER_CLASS must be one of {', '.join(WORKER_CLASSES)}, got {worker_class!r}")
    preload = _flag(environ, "GUNICORN_PRELOAD")
    if preload and worker_class == "gevent":
        # Loading the app before gevent patches the standard library in each worker
        # leaves unpatched sockets and locks behind: never combine the two.
        raise ValueError("GUNICORN_PRELOAD cannot be used with GUNICORN_WORKER_CLASS=gevent")
    if cpus is None:
        cpus = usable_cpu_count()
    timeout = _int(environ, "GUNICORN_TIMEOUT", 30, minimum=1)
    return {
        "bind": f"0.0.0.0:{_int(environ, 'GUNICORN_PORT', 8000, minimum=1)}",
        "worker_class": worker_class,
        "workers": _int(environ, "GUNICORN_WORKERS", 0) or default_workers(worker_class, cpus),
        # gunicorn turns sync into gthread when threads > 1; keep sync single-threaded.
        "threads": 1 if worker_class == "sync" else _int(environ, "GUNICORN_THREADS", 4, minimum=1),
        "worker_connections": _int(environ, "GUNICORN_WORKER_CONNECTIONS", 1000, minimum=1),
        "timeout": timeout,
        # Time a stopping worker gets to finish its requests; compose's stop_grace_period is longer.
        "graceful_timeout": _int(environ, "GUNICORN_GRACEFUL_TIMEOUT", 25, minimum=1),
        # Longer than nginx's upstream keepalive_timeout (5s), so nginx always closes first
        # and never sends a request on a connection gunicorn is closing.
        "keepalive": _int(environ, "GUNICORN_KEEPALIVE", 75, minimum=1),
        # Recycle workers now and then so slow leaks of anything but memory (which has its
        # own ceiling) cannot grow forever; jitter keeps them from all restarting at once.
        # Rare: at 5000, a busy worker restarted every few seconds and cost 12% of the
        # throughput (make bench-tuning).
        "max_requests": _int(environ, "GUNICORN_MAX_REQUESTS", 100_000),
        "max_requests_jitter": _int(environ, "GUNICORN_MAX_REQUESTS_JITTER", 10_000),
        # Heartbeat files on tmpfs: a disk-backed /tmp can stall workers on slow IO.
        "worker_tmp_dir": environ.get("GUNICORN_WORKER_TMP_DIR", "").strip() or "/dev/shm",  # noqa: S108 container-private tmpfs
        # nginx refuses what is too large (large_client_header_buffers 4 8k: a request line or
        # header line up to 8k, 32k of headers in all); gunicorn must take whatever nginx
        # passes on, or its own HTML 414/431 pages reach clients. So: its longest request
        # line, header lines with room for the X-Forwarded-For entry nginx appends, and as
        # many header lines as 32k can hold (nginx cannot count them).
        "limit_request_line": 8190,
        "limit_request_field_size": 16384,
        "limit_request_fields": 32768,
        # Only nginx reaches web on the private network; ProxyFix decides what to trust.
        "forwarded_allow_ips": environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "").strip() or "*",
        "preload_app": preload,
        # The runtime control socket would need a writable home; operations use signals instead.
        "control_socket_disable": True,
        "loglevel": environ.get("GUNICORN_LOG_LEVEL", "").strip() or "info",
        "accesslog": "-",
        "errorlog": "-",
        "access_log_format": (
            '%(h)s "%(r)s" %(s)s %(b)s duration_ms=%(M)s request_id=%({x-request-id}o)s'
        ),
    }


def lifecycle_settings_from_env(environ):
    """Settings of this stack's own worker hooks: how long to drain, when to recycle a fat
    worker (worker_lifecycle.py), how long access log lines may wait (batched_access_log.py)."""
    return {
        # Long enough for nginx to see this replica's 503 and stop choosing it.
        "drain_seconds": _int(environ, "GUNICORN_DRAIN_SECONDS", 3),
        # Resident memory a worker may hold before it is recycled; 0 = no ceiling.
        "max_worker_memory_mb": _int(environ, "GUNICORN_MAX_WORKER_MEMORY_MB", 256),
        # Access log lines are written in batches; a line waits about this long at most
        # (up to a quarter more), or until 4 KiB of lines are held. 0: each line at once.
        "access_log_flush_seconds": _int(environ, "GUNICORN_ACCESS_LOG_FLUSH_SECONDS", 1),
    }


def describe(cfg, lifecycle=None):
    """One log line with the effective value of each setting that shapes capacity."""
    def shown(value):
        return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)

    pairs = [(name, cfg.settings[name].get()) for name in LOGGED_SETTINGS]
    pairs += list((lifecycle or {}).items())
    return "effective settings: " + " ".join(f"{name}={shown(value)}" for name, value in pairs)
