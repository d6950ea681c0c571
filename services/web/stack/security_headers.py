"""A Content-Security-Policy for HTML the app sends without one: only this site's own files,
nothing inline.

nginx adds the headers every response shares (nosniff, frame and referrer policies, HSTS
over https) and a deny-all policy for anything that is not HTML. An app whose pages need
more (a CDN, an inline script) sends its own Content-Security-Policy, which is kept.
"""

HTML_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class HtmlPolicy:
    def __init__(self, app, policy=HTML_POLICY):
        self.app = app
        self.policy = policy

    def __call__(self, environ, start_response):
        def start_with_policy(status, headers, exc_info=None):
            names = {name.lower(): value for name, value in headers}
            if "content-security-policy" not in names and names.get("content-type", "").startswith("text/html"):
                headers = [*headers, ("Content-Security-Policy", self.policy)]
            return start_response(status, headers, exc_info)

        return self.app(environ, start_with_policy)
