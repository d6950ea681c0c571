"""One line per measurement: how far the run is, and an estimate of the time left."""

import sys
import time


def clock(seconds):
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    def __init__(self, total, seconds_each, out=sys.stdout):
        self.total = total
        self.seconds_each = seconds_each
        self.done = 0
        self.started = time.monotonic()
        self.out = out

    def estimate_left(self):
        """Time left: the pace so far (server starts included), or the plan's own until then."""
        elapsed = time.monotonic() - self.started
        pace = elapsed / self.done if self.done else self.seconds_each
        return (self.total - self.done) * pace

    def step(self, label, outcome):
        self.done += 1
        elapsed = time.monotonic() - self.started
        print(
            f"[{self.done:>4}/{self.total}] {label:<62} {outcome:<38} "
            f"elapsed {clock(elapsed)}, about {clock(self.estimate_left())} left",
            file=self.out,
            flush=True,
        )
