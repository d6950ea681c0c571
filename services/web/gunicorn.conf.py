"""gunicorn configuration: every value comes from an environment variable with a
production default (see gunicorn_settings.py and .env.example)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gunicorn_errors
import gunicorn_single_write
from batched_access_log import batch_access_log
from connection_turns import take_turns
from gunicorn_settings import describe, lifecycle_settings_from_env, settings_from_env
from recycle_turns import RecycleTurn
from worker_lifecycle import (
    DrainFlag,
    DrainingMiddleware,
    drain_then_stop,
    recycle_when_due,
    resident_memory_bytes,
)

settings = settings_from_env(os.environ)
globals().update(settings)
gunicorn_errors.install()
gunicorn_single_write.install()
lifecycle = lifecycle_settings_from_env(os.environ)
# Created before the workers fork, so the master and every worker share it.
drain_flag = DrainFlag()
# Also shared: which worker is recycling, so that they recycle one at a time. A worker
# still recycling after its graceful timeout (and 10 s) no longer holds up the others.
recycle_turn = RecycleTurn(stale_after_s=settings["graceful_timeout"] + 10, directory=settings["worker_tmp_dir"])


def on_starting(server):
    # Workers inherit the environment: /api/whoami reports the class actually running.
    os.environ["SERVER_WORKER_CLASS"] = server.cfg.worker_class_str
    server.log.info(describe(server.cfg, lifecycle))


def when_ready(server):
    # The master looks its signal handlers up by name each time: this one drains first.
    original_stop = server.handle_term
    server.handle_term = lambda: drain_then_stop(server, drain_flag, lifecycle["drain_seconds"], original_stop)


def post_worker_init(worker):
    worker.wsgi = DrainingMiddleware(worker.wsgi, drain_flag)
    recycle_turn.pass_on_if_gone()
    # gunicorn would recycle the worker at its max_requests without waiting for its turn:
    # recycle_when_due does it instead, after the same number of requests.
    worker.recycle_after, worker.max_requests = worker.max_requests, sys.maxsize
    if worker.cfg.max_requests:
        # gunicorn drew this worker's share (max_requests plus up to max_requests_jitter):
        # logged so that the share and its spread can be checked against the composed stack.
        worker.log.info("worker %s recycles after %s requests (GUNICORN_MAX_REQUESTS with jitter)",
                        worker.pid, worker.recycle_after)
    # Opens this worker's own /proc/self/statm before any request (see ResidentMemory).
    resident_memory_bytes()
    # Called after each response: a gevent worker's connections take turns (connection_turns.py).
    worker.take_turn = take_turns(worker.cfg.worker_class_str)
    worker.batched_access_log = batch_access_log(worker.log, lifecycle["access_log_flush_seconds"])


def post_request(worker, req, environ, resp):
    recycle_when_due(worker, recycle_turn, lifecycle["max_worker_memory_mb"] * 2**20)
    worker.take_turn()


def worker_exit(server, worker):
    # The lines still held go out before the worker does.
    if getattr(worker, "batched_access_log", None):
        worker.batched_access_log.flush()
