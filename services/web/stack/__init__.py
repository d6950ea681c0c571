"""The stack around the user's Flask app: everything here wraps whatever `app.create_app()`
builds, and the app imports nothing from it.

- wsgi.py: the entry point gunicorn serves, which assembles the rest around the app;
- request_id.py, security_headers.py, static_urls.py, drain.py: WSGI middleware and
  Flask hooks the stack adds;
- probes/: /healthz, and the test contract's endpoints (contract.py, faults.py, outbound.py);
- drain_then_stop.py: the container's first process, which drains before gunicorn stops;
- gunicorn_settings.py (with cpus.py), recycling.py, connection_turns.py:
  gunicorn's settings, and what gunicorn.conf.py calls from gunicorn's documented hooks;
- env.py, settings.py: the one reader of the environment knobs, and the stack's own
  settings (the wrapper's, the probes', and its hooks': drain, memory ceiling, turns).
"""
