"""What the renewal runs did, kept in the state volume so that a run started by hand
(make acme-renew) and the daily job's runs count alike, and a restart forgets nothing."""

import json
import os
import tempfile
from dataclasses import asdict, dataclass


@dataclass
class Status:
    attempts: int = 0
    failures: int = 0
    last_attempt_succeeded: bool | None = None
    last_attempt_time: float | None = None
    last_success_time: float | None = None
    last_error: str = ""
    # The ACME directory that issued the installed certificate: switching ACME_DIRECTORY
    # (staging to production) must replace it even though it is not due.
    issued_by_directory: str = ""
    # The request from `make acme-renew` the last run answered (request.py waits for it).
    last_request_id: str = ""


def read(path):
    """The status written last; a fresh one when there is none, or when it cannot be read
    (its counts start again rather than the job stopping)."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return Status()
    if not isinstance(data, dict):
        return Status()
    known = Status.__dataclass_fields__
    return Status(**{key: value for key, value in data.items() if key in known})


def write(path, status):
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as file:
        json.dump(asdict(status), file)
    os.replace(temporary, path)
