"""The demo app: the example of what the stack runs. Replace it with your own.

The stack (services/web/stack/) needs only this: a Flask application factory named
`create_app` in this file, and the app's static files in its `static/` folder (Flask's
default), which nginx serves. The app imports nothing from the stack.
"""

from flask import Flask

from . import errors, pages


def create_app(overrides=None):
    """Build the app. `overrides` (a mapping) is applied to its config, for tests."""
    app = Flask(__name__)
    if overrides:
        app.config.update(overrides)
    errors.init_app(app)
    app.register_blueprint(pages.blueprint)
    return app
