"""gunicorn's configuration: its documented settings, read from the environment
(stack/gunicorn_settings.py, .env.example), and its documented server hooks. Nothing of
gunicorn's is replaced: the hooks read what gunicorn passes them and stop a worker the
way gunicorn's own workers stop, by setting `worker.alive` to False."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stack import database, metrics_files
from stack.connection_turns import take_turns
from stack.gunicorn_settings import describe, effective, settings_from_env
from stack.recycling import Recycler
from stack.settings import hook_settings
from stack.settings import settings_from_env as stack_settings_from_env

# gunicorn's settings, each named as gunicorn's documentation names it.
gunicorn = settings_from_env(os.environ)
bind = gunicorn["bind"]
worker_class = gunicorn["worker_class"]
workers = gunicorn["workers"]
threads = gunicorn["threads"]
worker_connections = gunicorn["worker_connections"]
timeout = gunicorn["timeout"]
graceful_timeout = gunicorn["graceful_timeout"]
keepalive = gunicorn["keepalive"]
max_requests = gunicorn["max_requests"]
max_requests_jitter = gunicorn["max_requests_jitter"]
worker_tmp_dir = gunicorn["worker_tmp_dir"]
limit_request_line = gunicorn["limit_request_line"]
limit_request_field_size = gunicorn["limit_request_field_size"]
limit_request_fields = gunicorn["limit_request_fields"]
forwarded_allow_ips = gunicorn["forwarded_allow_ips"]
preload_app = gunicorn["preload_app"]
control_socket_disable = gunicorn["control_socket_disable"]
loglevel = gunicorn["loglevel"]
accesslog = gunicorn["accesslog"]
errorlog = gunicorn["errorlog"]
logger_class = gunicorn["logger_class"]
access_log_format = gunicorn["access_log_format"]
reload = gunicorn["reload"]
if reload:
    reload_engine = gunicorn["reload_engine"]
    reload_extra_files = gunicorn["reload_extra_files"]

# The stack's own settings: its hooks' below, and the metrics'.
stack_settings = stack_settings_from_env(os.environ)
hooks = hook_settings(stack_settings)
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

recycler = Recycler(ceiling_bytes=stack_settings["MAX_WORKER_MEMORY_MB"] * 2**20)
# Set in each worker by post_worker_init: what post_request calls (connection_turns.py).
take_turn = None


def on_starting(server):
    # Workers inherit the environment: /api/whoami reports the class actually running, and
    # /api/settings what gunicorn actually holds (probes/contract.py).
    os.environ["SERVER_WORKER_CLASS"] = server.cfg.worker_class_str
    os.environ["SERVER_SETTINGS"] = json.dumps(effective(server.cfg))
    server.log.info(describe(server.cfg, hooks))


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
    recycler.start(worker.log, worker)
    take_turn = take_turns(worker.cfg.worker_class_str, stack_settings["CONNECTION_TURNS"])
    if metrics_port:
        # worker.wsgi: the application this worker has just loaded and serves.
        metrics.start_sampling_in_flight(worker.wsgi)
    # The database probes' pool, made in the worker after gevent's patching, never in the
    # master: psycopg must first be imported with the patches in place (stack/database.py).
    if stack_settings["PROBES"] and database.configured(stack_settings):
        database.open_pool(stack_settings)


def worker_exit(server, worker):
    # Postgres (through PgBouncer) sees a leaving worker's connections close at once.
    database.close_pool()


def post_request(worker, req, environ, resp):
    reason = recycler.due(worker.log, worker)
    if reason:
        worker.alive = False  # gunicorn's own way to stop a worker after its requests in flight
        if metrics_port:
            metrics.WORKER_RECYCLES.labels(reason).inc()
    take_turn()
