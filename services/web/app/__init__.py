"""The Flask application: an application factory, configured from the environment."""

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import api, errors, faults, outbound, pages, request_id, security_headers, static_files
from .settings import settings_from_env


def create_app(overrides=None):
    """Build the app. `overrides` (a mapping) wins over the environment, for tests."""
    app = Flask(__name__, static_folder=None)
    app.config.update(settings_from_env())
    if overrides:
        app.config.update(overrides)

    request_id.init_app(app)
    errors.init_app(app)
    security_headers.init_app(app)
    static_files.init_app(app)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(pages.blueprint)
    if app.config["FAULT_INJECTION"]:
        app.register_blueprint(faults.blueprint)
    if app.config["OUTBOUND_URL"]:
        app.register_blueprint(outbound.blueprint)

    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        # Trust exactly `hops` proxies (nginx) for the client address and scheme.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    return app
