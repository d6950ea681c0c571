"""The replica's metrics endpoint: a process of its own, beside gunicorn's master, serving
every worker's metrics (metrics.py) summed on APP_METRICS_PORT, with prometheus_client's own
HTTP server.

A process apart from the workers, so a scrape is answered while every worker is busy or
stuck (and a Prometheus sees a saturated replica rather than a silent one), and on a port
apart from the app's, which nginx never proxies and compose never publishes: only
containers on the stack's network (Prometheus) reach it.

gunicorn.conf.py starts it from the master's `when_ready` hook and stops it from `on_exit`;
it also exits as soon as the master that started it is gone.
"""

import os
import signal
import subprocess
import sys
import time

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector


def start(port):
    """Start the exporter as a child of this process (gunicorn's master)."""
    return subprocess.Popen(  # noqa: S603 our own module, with the interpreter running us
        [sys.executable, "-m", "stack.metrics_exporter", str(port), str(os.getpid())],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )


def stop(process):
    if process is not None and process.poll() is None:
        process.terminate()
        process.wait(timeout=5)


def serve(port, master_pid):
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(port, addr="0.0.0.0", registry=registry)  # noqa: S104 the container's network only
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while os.getppid() == master_pid:
        time.sleep(1)


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
