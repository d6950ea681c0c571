"""One log format: each line the web container writes is a JSON object, like nginx's access
log, so that one jq filter follows a request through both (docs/configuration.md,
"Request ids and logs").

JsonLogger, given to gunicorn by its documented `logger_class` setting
(gunicorn_settings.py), lets gunicorn set its logs up as usual, then hands its error log,
its access log (GUNICORN_ACCESS_LOG=on) and every other logger, the app's included, to
python-json-logger's formatter with the standard library's dictConfig. (gunicorn's
`logconfig_dict` setting would do the same, but with any logging config set, gunicorn
builds an access record for every request even while the access log is off: a measured
share of the trivial endpoint's throughput, bench/README.md, "Tunings".)

Two logging filters, the standard library's way to add fields to a record, supply what a
formatter cannot know:

- RequestIdField: the id of the request being served (request_id.current()), on each line
  logged while it is;
- AccessFields: the fields of gunicorn's access line, named as in nginx's, from the values
  gunicorn hands its access logger.
"""

import logging
import logging.config
from collections.abc import Mapping

from gunicorn.glogging import Logger

from . import request_id

# Every line: when, how bad, which logger, which process, what; renamed to short names.
RECORD_FIELDS = ("levelname", "name", "process", "message")
RENAMED = {"levelname": "level", "name": "logger", "process": "pid"}
FORMATTER = {
    "()": "pythonjsonlogger.json.JsonFormatter",
    "fmt": RECORD_FIELDS,
    "rename_fields": RENAMED,
    # An ISO 8601 time in UTC, under the name nginx's log uses.
    "timestamp": "time",
}
# nginx's access log field: gunicorn's atom (gunicorn's docs, access_log_format).
ACCESS_ATOMS = {
    "remote_addr": "h",
    "request": "r",
    "user_agent": "a",
    "request_id": "{x-request-id}o",
}


def formatter():
    """The formatter itself, for a process that logs outside gunicorn (drain_then_stop.py)."""
    from pythonjsonlogger.json import JsonFormatter

    options = {key: value for key, value in FORMATTER.items() if key != "()"}
    return JsonFormatter(**options)


class RequestIdField(logging.Filter):
    def filter(self, record):
        serving = request_id.current()
        if serving is not None and not hasattr(record, "request_id"):
            record.request_id = serving
        return True


class AccessFields(logging.Filter):
    """gunicorn logs a request with access_log_format as the message and its atoms, a
    mapping, as the arguments: the atoms become fields."""

    def filter(self, record):
        atoms = record.args
        if isinstance(atoms, Mapping):
            for field, atom in ACCESS_ATOMS.items():
                setattr(record, field, atoms[atom])
            record.status = _number(atoms["s"], int)
            record.bytes = atoms["B"] or 0
            # Seconds, with microseconds, as nginx's request_time.
            record.request_time = _number(atoms["L"], float)
        return True


def _number(text, kind):
    try:
        return kind(text)
    except (TypeError, ValueError):
        return text


class JsonLogger(Logger):
    """gunicorn's logger, its lines JSON. setup() is what gunicorn calls at start and on
    each reload (SIGHUP) with the settings in force."""

    def setup(self, cfg):
        super().setup(cfg)
        logging.config.dictConfig(logconfig(cfg.loglevel, cfg.accesslog is not None))


def logconfig(level, access_log):
    """JSON lines: errors and the app's on stderr, gunicorn's access log on stdout."""
    handlers = {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "json",
            "filters": ["request_id"],
        },
    }
    # With the access log off, gunicorn does not call its access logger at all.
    access = {"level": "WARNING", "handlers": [], "propagate": False}
    if access_log:
        handlers["stdout"] = {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["access_fields"],
        }
        access = {"level": "INFO", "handlers": ["stdout"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": FORMATTER},
        "filters": {
            "request_id": {"()": "stack.json_logs.RequestIdField"},
            "access_fields": {"()": "stack.json_logs.AccessFields"},
        },
        "handlers": handlers,
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": access,
        },
        # The app's loggers, and any library's, reach the root: same handler, same format.
        "root": {"level": "INFO", "handlers": ["stderr"]},
    }
