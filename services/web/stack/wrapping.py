"""The user's Flask app inside the stack, from the outside in:

- RequestMetrics: each request counted and timed for Prometheus (metrics.py; APP_METRICS);
- RequestId: X-Request-ID kept or made, and echoed (request_id.py), on every answer,
  a draining replica's 503 included;
- DrainingMiddleware: a stopping replica's retryable 503 (drain.py);
- ProxyFix: the client's address and scheme from exactly APP_TRUSTED_PROXY_HOPS proxies;
- HtmlPolicy: a Content-Security-Policy for HTML sent without one (security_headers.py);
- ProbeRouter: /healthz, and the test contract's paths when on, go to the stack's own Flask
  apps (probes/), everything else to the user's app, through Fingerprints (static_urls.py).

The app itself is changed only through Flask's documented interfaces: a url_defaults hook
for fingerprinted static URLs, and its config: TRUSTED_HOSTS when APP_TRUSTED_HOSTS is
set, and MAX_CONTENT_LENGTH (APP_MAX_BODY_BYTES) unless the app sets its own.
"""

from werkzeug.middleware.proxy_fix import ProxyFix

from . import probes, static_urls
from .drain import DrainingMiddleware
from .request_id import RequestId
from .security_headers import HtmlPolicy


class ProbeRouter:
    """Requests for a path one of the stack's apps answers go to it; all others to the app."""

    def __init__(self, app, stack_apps):
        self.app = app
        self.routes = {path: stack_app for stack_app in stack_apps for path in probes.mounts(stack_app)}
        self.prefixes = {f"{path}/": stack_app for path, stack_app in self.routes.items()}
        # Every request of the user's app passes here: one C-level check tells it apart.
        self.any_prefix = tuple(self.prefixes)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        routed = self.routes.get(path)
        if routed is None and path.startswith(self.any_prefix):
            routed = next(app for prefix, app in self.prefixes.items() if path.startswith(prefix))
        return (routed or self.app)(environ, start_response)


def wrap(app, settings, drain_flag):
    """The Flask `app` inside the stack, as one WSGI application."""
    if settings["TRUSTED_HOSTS"]:
        # Flask's own setting: a request for any other host is a 400 (/healthz excepted).
        app.config["TRUSTED_HOSTS"] = settings["TRUSTED_HOSTS"]
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        # Flask's own setting: a larger body is a 413, as nginx answers when it is in front.
        app.config["MAX_CONTENT_LENGTH"] = settings["MAX_CONTENT_LENGTH"]
    served = app
    if app.has_static_folder:
        static_urls.init_app(app)
        served = static_urls.Fingerprints(app, app.static_folder, app.static_url_path)
    stack_apps = [probes.create_health(), probes.create_probes(settings)]
    wrapped = HtmlPolicy(ProbeRouter(served, [stack_app for stack_app in stack_apps if stack_app]))
    hops = settings["TRUSTED_PROXY_HOPS"]
    if hops:
        # Trust exactly `hops` proxies (nginx) for the client address and scheme.
        wrapped = ProxyFix(wrapped, x_for=hops, x_proto=hops)
    wrapped = RequestId(DrainingMiddleware(wrapped, drain_flag))
    if settings["METRICS"]:
        # Imported only when on: prometheus_client's multiprocess mode needs its folder first.
        from .metrics import RequestMetrics

        wrapped = RequestMetrics(wrapped)
    return wrapped
