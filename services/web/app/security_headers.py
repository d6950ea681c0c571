"""A Content-Security-Policy for the app's HTML: only this site's own files, nothing inline.

nginx adds the headers every response shares (nosniff, frame and referrer policies,
HSTS over https) and a deny-all policy for anything that is not HTML.
"""

HTML_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


def _html_policy(response):
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", HTML_POLICY)
    return response


def init_app(app):
    app.after_request(_html_policy)
