"""gunicorn settings computed from environment variables (imported by gunicorn.conf.py).

Kept apart from gunicorn.conf.py so the logic can be unit tested without starting gunicorn.
Every value is one of gunicorn's documented settings; the stack's own hooks' settings are in
settings.py.
"""

from . import env
from .cpus import usable_cpu_count

WORKER_CLASSES = ("sync", "gthread", "gevent")
LOG_FORMATS = ("json", "text")

# Settings logged once at start, in this order.
LOGGED_SETTINGS = (
    "bind",
    "worker_class",
    "workers",
    "threads",
    "worker_connections",
    "timeout",
    "graceful_timeout",
    "keepalive",
    "max_requests",
    "max_requests_jitter",
    "worker_tmp_dir",
    "accesslog",
    "forwarded_allow_ips",
    "preload_app",
    "reload",
)


def default_workers(worker_class, cpus):
    """Processes to start when GUNICORN_WORKERS is not set."""
    if worker_class == "sync":
        # A sync worker is idle while it waits on IO: the classic 2 x CPUs + 1.
        return 2 * cpus + 1
    # gevent and gthread wait on IO inside the worker: one process per CPU keeps each busy.
    return cpus


# gunicorn's heartbeat files, and the drain flag: on tmpfs, writable under a read-only root.
DEFAULT_WORKER_TMP_DIR = "/dev/shm"  # noqa: S108 container-private tmpfs


def settings_from_env(environ, cpus=None):
    """Return gunicorn settings (names as in a gunicorn config file) for this environment."""
    worker_class = env.text(environ, "GUNICORN_WORKER_CLASS", "gevent")
    if worker_class not in WORKER_CLASSES:
        raise ValueError(f"GUNICORN_WORKER_CLASS must be one of {', '.join(WORKER_CLASSES)}, got {worker_class!r}")
    preload = env.switch(environ, "GUNICORN_PRELOAD", False)
    if preload and worker_class == "gevent":
        # Loading the app before gevent patches the standard library in each worker
        # leaves unpatched sockets and locks behind: never combine the two.
        raise ValueError("GUNICORN_PRELOAD cannot be used with GUNICORN_WORKER_CLASS=gevent")
    reload = env.switch(environ, "GUNICORN_RELOAD", False)
    if reload and preload:
        # gunicorn's reloader restarts workers, which would only fork the master's old copy.
        raise ValueError("GUNICORN_RELOAD cannot be used with GUNICORN_PRELOAD")
    if cpus is None:
        cpus = usable_cpu_count()
    log_format = log_format_from_env(environ)
    # Every interface of the container by default, where nginx is another container; the
    # ECS task, whose nginx shares web's network namespace, sets the loopback.
    host = env.text(environ, "GUNICORN_HOST", "0.0.0.0")  # noqa: S104 the container's network only
    return {
        "bind": f"{host}:{env.whole(environ, 'GUNICORN_PORT', 8000, minimum=1)}",
        "worker_class": worker_class,
        "workers": env.whole(environ, "GUNICORN_WORKERS", 0) or default_workers(worker_class, cpus),
        # gunicorn turns sync into gthread when threads > 1; keep sync single-threaded.
        "threads": 1 if worker_class == "sync" else env.whole(environ, "GUNICORN_THREADS", 4, minimum=1),
        "worker_connections": env.whole(environ, "GUNICORN_WORKER_CONNECTIONS", 1000, minimum=1),
        "timeout": env.whole(environ, "GUNICORN_TIMEOUT", 30, minimum=1),
        # Time a stopping worker gets to finish its requests; compose's stop_grace_period is longer.
        "graceful_timeout": env.whole(environ, "GUNICORN_GRACEFUL_TIMEOUT", 25, minimum=1),
        # Longer than nginx's upstream keepalive_timeout, so nginx always closes first
        # and never sends a request on a connection gunicorn is closing.
        "keepalive": env.whole(environ, "GUNICORN_KEEPALIVE", 75, minimum=1),
        # Recycle workers now and then so slow leaks of anything but memory (which has its
        # own ceiling, recycling.py) cannot grow forever. Rare, because a recycle costs
        # throughput (bench/README.md, "Tunings"). 0 = never. The jitter is as wide as the
        # count, so each worker draws its share between the count and twice it: workers with
        # equal parts of the load then come due far apart, since a replica whose workers all
        # recycle at once answers nothing until one is back (docs/configuration.md,
        # "Recycling", gives the odds; change the two together).
        "max_requests": env.whole(environ, "GUNICORN_MAX_REQUESTS", 100_000),
        "max_requests_jitter": env.whole(environ, "GUNICORN_MAX_REQUESTS_JITTER", 100_000),
        "worker_tmp_dir": worker_tmp_dir(environ),
        # nginx refuses what is too large (large_client_header_buffers 4 8k: a request line or
        # header line up to 8k, 32k of headers in all); gunicorn must take whatever nginx
        # passes on, or its own HTML 414/431 pages reach clients. So: its longest request
        # line, header lines with room for the X-Forwarded-For entry nginx appends, and as
        # many header lines as 32k can hold (nginx cannot count them).
        "limit_request_line": 8190,
        "limit_request_field_size": 16384,
        "limit_request_fields": 32768,
        # Only nginx reaches web on the private network; ProxyFix decides what to trust.
        "forwarded_allow_ips": env.text(environ, "GUNICORN_FORWARDED_ALLOW_IPS", "*"),
        "preload_app": preload,
        # The runtime control socket would need a writable home; operations use signals instead.
        "control_socket_disable": True,
        "loglevel": env.text(environ, "GUNICORN_LOG_LEVEL", "info"),
        # nginx's JSON access log already has every request with its id, replica, status and
        # time; gunicorn's own line costs Docker's log pipeline a share of the throughput
        # (bench/README.md, "Tunings"), so it is off unless asked for.
        "accesslog": "-" if env.switch(environ, "GUNICORN_ACCESS_LOG", False) else None,
        "errorlog": "-",
        **log_format_settings(log_format),
        **reload_settings(reload),
    }


def reload_settings(reload):
    """GUNICORN_RELOAD=on (compose.override.yaml, development only): each worker restarts
    when a file of the app changes, so the next request runs an edit of the bind-mounted app
    (docs/operations.md, "The development loop"; tests/test_dev_loop.py times it)."""
    if not reload:
        return {"reload": False}
    return {
        "reload": True,
        # Polling the files' times works on every bind mount, Docker Desktop's file sharing
        # included, where inotify events from the host may never arrive.
        "reload_engine": "poll",
        # The modules a worker imported are watched anyway; this adds the templates and
        # static files (Flask caches templates, the stack the static files' fingerprints),
        # and files created after the start. Relative to the folder gunicorn runs in.
        "reload_extra_files": ["app/**/*"],
    }


def log_format_from_env(environ):
    """GUNICORN_LOG_FORMAT, for gunicorn's loggers and the first process's alike."""
    log_format = env.text(environ, "GUNICORN_LOG_FORMAT", "json")
    if log_format not in LOG_FORMATS:
        raise ValueError(f"GUNICORN_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    return log_format


def log_format_settings(log_format):
    """json: every line a JSON object (json_logs.py); text: gunicorn's own lines."""
    if log_format == "json":
        return {
            "logger_class": "stack.json_logs.JsonLogger",
            # The message of a JSON access line; the other fields are its own (AccessFields).
            "access_log_format": "%(r)s %(s)s",
        }
    return {
        "logger_class": "gunicorn.glogging.Logger",
        # gunicorn's default format, then the time taken and the request id nginx sent.
        "access_log_format": (
            '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" '
            "duration_ms=%(M)s request_id=%({x-request-id}o)s"
        ),
    }


def worker_tmp_dir(environ):
    return env.text(environ, "GUNICORN_WORKER_TMP_DIR", DEFAULT_WORKER_TMP_DIR)


def effective(cfg, hooks=None):
    """The effective value of each setting that shapes capacity, as gunicorn holds it, then
    the stack's own hooks' settings (settings.hook_settings): logged at start, and reported
    by /api/settings."""

    def shown(value):
        return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value

    pairs = {name: shown(cfg.settings[name].get()) for name in LOGGED_SETTINGS}
    return {**pairs, **(hooks or {})}


def describe(cfg, hooks=None):
    """One log line with the effective value of each setting that shapes capacity."""
    pairs = effective(cfg, hooks).items()
    return "effective settings: " + " ".join(f"{name}={value}" for name, value in pairs)
