"""The job's log: one JSON object a line on stdout, like the rest of the stack's logs."""

import json
import sys
from datetime import UTC, datetime


def log(level, message, **fields):
    line = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "level": level, "message": message, **fields}
    print(json.dumps(line), file=sys.stdout, flush=True)
