"""The user's Flask app inside the stack, from the outside in:

- RequestMetrics: each request counted and timed for Prometheus (metrics.py; APP_METRICS);
- DrainingMiddleware: a stopping replica's retryable 503 (drain.py);
- ProxyFix: the client's address and scheme from exactly APP_TRUSTED_PROXY_HOPS proxies;
- RequestId: X-Request-ID kept or made, and echoed (request_id.py);
- HtmlPolicy: a Content-Security-Policy for HTML sent without one (security_headers.py);
- ProbeRouter: the probes' paths (/healthz, and the test contract's when on) go to the
  stack's own Flask app (probes.py), everything else to the user's app, through
  Fingerprints (static_urls.py).

The app itself is changed only through Flask's documented interfaces: a url_defaults hook
for fingerprinted static URLs, and its TRUSTED_HOSTS setting when APP_TRUSTED_HOSTS is set.
"""

from werkzeug.middleware.proxy_fix import ProxyFix

from . import probes, static_urls
from .drain import DrainingMiddleware
from .request_id import RequestId
from .security_headers import HtmlPolicy


class ProbeRouter:
    """Requests for a path the probes answer go to them; all others to the app."""

    def __init__(self, app, probes_app):
        self.app = app
        self.probes_app = probes_app
        self.paths = frozenset(probes.mounts(probes_app))
        self.prefixes = tuple(f"{path}/" for path in self.paths)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path in self.paths or path.startswith(self.prefixes):
            return self.probes_app(environ, start_response)
        return self.app(environ, start_response)


def wrap(app, settings, drain_flag):
    """The Flask `app` inside the stack, as one WSGI application."""
    if settings["TRUSTED_HOSTS"]:
        # Flask's own setting: a request for any other host is a 400.
        app.config["TRUSTED_HOSTS"] = settings["TRUSTED_HOSTS"]
    served = app
    if app.has_static_folder:
        static_urls.init_app(app)
        served = static_urls.Fingerprints(app, app.static_folder, app.static_url_path)
    wrapped = RequestId(HtmlPolicy(ProbeRouter(served, probes.create_probes(settings))))
    hops = settings["TRUSTED_PROXY_HOPS"]
    if hops:
        # Trust exactly `hops` proxies (nginx) for the client address and scheme.
        wrapped = ProxyFix(wrapped, x_for=hops, x_proto=hops)
    wrapped = DrainingMiddleware(wrapped, drain_flag)
    if settings["METRICS"]:
        # Imported only when on: prometheus_client's multiprocess mode needs its folder first.
        from .metrics import RequestMetrics

        wrapped = RequestMetrics(wrapped)
    return wrapped
