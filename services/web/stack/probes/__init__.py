"""/healthz and the probe endpoints, which the stack mounts around any app.

Two small Flask apps of the stack's own, beside the user's (wrapping.ProbeRouter):
- health: /healthz alone, answered for any Host header, since the health checks of
  Docker, nginx and a load balancer come from loopback or an address with whatever Host
  they use; APP_TRUSTED_HOSTS guards the user's app and the probes below;
- probes: the test contract (contract.py), plus faults.py, outbound.py and database.py
  when switched on. Mounted only when APP_PROBES is on: the production overlay leaves them off.
"""

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from .. import database as stack_database
from . import contract, database, faults, outbound
from .answers import http_error, unexpected_error


def _json_errors(app):
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)
    return app


def create_health():
    """/healthz: the replica's process serves. Never subject to the Host check."""
    app = Flask(__name__, static_folder=None)
    app.add_url_rule("/healthz", "healthz", lambda: jsonify(status="ok"))
    return _json_errors(app)


def create_probes(settings):
    """The probes' app, or None when APP_PROBES is off."""
    if not settings["PROBES"]:
        return None
    app = Flask(__name__, static_folder=None)
    app.config.update(settings)
    app.register_blueprint(contract.blueprint)
    if settings["FAULT_INJECTION"]:
        app.register_blueprint(faults.blueprint)
    if settings["OUTBOUND_URL"]:
        app.register_blueprint(outbound.blueprint)
    if stack_database.configured(settings):
        app.register_blueprint(database.blueprint)
    return _json_errors(app)


def mounts(app):
    """The paths an app answers: each route's first two segments (/healthz, /api/sleep)."""
    return sorted({"/".join(rule.rule.split("/")[:3]) for rule in app.url_map.iter_rules()})
