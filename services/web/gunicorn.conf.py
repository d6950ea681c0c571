"""gunicorn's configuration: its documented settings, read from the environment
(stack/gunicorn_settings.py, .env.example), and its documented server hooks. Nothing of
gunicorn's is replaced: the hooks read what gunicorn passes them and stop a worker the
way gunicorn's own workers stop, by setting `worker.alive` to False."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stack import metrics_files
from stack.connection_turns import take_turns
from stack.gunicorn_settings import describe, effective, lifecycle_settings_from_env, settings_from_env
from stack.recycle_turns import RecycleTurn
from stack.recycling import Recycler
from stack.settings import settings_from_env as stack_settings_from_env

stack_settings = stack_settings_from_env(os.environ)
# APP_METRICS=off: no exporter, no metrics files, nothing counted.
# Also off without prometheus_client's multiprocess folder, which the image sets: gunicorn run
# by hand elsewhere. The folder is emptied here, in the master at start, before
# prometheus_client is imported (metrics_files.py).
metrics_port = stack_settings["METRICS_PORT"] if stack_settings["METRICS"] else None
if metrics_port and not metrics_files.fresh_directory(os.environ):
    metrics_port = None
if metrics_port:
    from prometheus_client import multiprocess

    from stack import metrics, metrics_exporter
# The exporter process, started once the master is ready (when_ready).
exporter = None

settings = settings_from_env(os.environ)
globals().update(settings)
lifecycle = lifecycle_settings_from_env(os.environ)
recycler = Recycler(
    max_requests=lifecycle["max_requests"],
    jitter=lifecycle["max_requests_jitter"],
    ceiling_bytes=lifecycle["max_worker_memory_mb"] * 2**20,
    # Made before the workers fork, so they all share whose turn it is to recycle. A worker
    # still recycling after its graceful timeout (and 10 s) no longer holds up the others.
    turn=RecycleTurn(stale_after_s=settings["graceful_timeout"] + 10, directory=settings["worker_tmp_dir"]),
)
# Set in each worker by post_worker_init: what post_request calls (connection_turns.py).
take_turn = None


def on_starting(server):
    # Workers inherit the environment: /api/whoami reports the class actually running, and
    # /api/settings what gunicorn actually holds (probes/contract.py).
    os.environ["SERVER_WORKER_CLASS"] = server.cfg.worker_class_str
    os.environ["SERVER_SETTINGS"] = json.dumps(effective(server.cfg))
    server.log.info(describe(server.cfg, lifecycle))


def when_ready(server):
    global exporter
    if metrics_port:
        exporter = metrics_exporter.start(metrics_port)
        server.log.info("metrics on port %s (stack/metrics_exporter.py)", metrics_port)


def on_exit(server):
    if metrics_port:
        metrics_exporter.stop(exporter)


def child_exit(server, worker):
    # In the master: the worker's gauges leave the sums; its counts stay (metrics.py).
    if metrics_port:
        metrics.WORKER_EXITS.inc()
        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    global take_turn
    recycler.start(worker.log, worker.pid)
    take_turn = take_turns(worker.cfg.worker_class_str)


def post_request(worker, req, environ, resp):
    if worker.alive and recycler.due(worker.log, worker.pid):
        worker.alive = False
        if metrics_port:
            metrics.WORKER_RECYCLES.labels(recycler.reason).inc()
    take_turn()
