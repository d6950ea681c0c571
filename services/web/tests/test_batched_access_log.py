"""Access log lines are written in whole batches of at most 4 KiB, or once the oldest has waited."""

import logging
import sys
import time

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from batched_access_log import BATCH_BYTES, BatchedLines, batch_access_log


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def handler(interval_s=1.0, clock=None):
    writes = []

    def write(data):
        writes.append(data)
        return len(data)

    batched = BatchedLines(write, interval_s, clock=clock or Clock())
    batched.setFormatter(logging.Formatter("%(message)s"))
    return batched, writes


def log(batched, message):
    batched.handle(logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, message, None, None))


def test_lines_wait_until_the_oldest_has_waited_the_interval():
    clock = Clock()
    batched, writes = handler(interval_s=1.0, clock=clock)
    log(batched, "first")
    clock.now += 0.5
    log(batched, "second")
    assert writes == []
    clock.now += 0.5
    log(batched, "third")
    assert writes == [b"first\nsecond\nthird\n"]


def test_a_full_batch_goes_out_at_once_in_whole_lines_of_at_most_4_kib():
    batched, writes = handler(interval_s=60)
    line = "x" * 99  # 100 bytes with its newline
    for _ in range(100):
        log(batched, line)
    batched.flush()
    assert b"".join(writes) == (line + "\n").encode() * 100
    assert all(len(data) <= BATCH_BYTES and data.endswith(b"\n") for data in writes)
    # 40 lines fill a batch (4,000 bytes); the 41st would not fit.
    assert [len(data) for data in writes] == [4000, 4000, 2000]


def test_a_line_longer_than_a_batch_goes_out_by_itself_after_what_was_held():
    batched, writes = handler(interval_s=60)
    log(batched, "short")
    log(batched, "y" * 5000)
    assert writes == [b"short\n", b"y" * 5000 + b"\n"]


def test_an_interval_of_zero_writes_each_line_at_once():
    batched, writes = handler(interval_s=0)
    log(batched, "one")
    log(batched, "two")
    assert writes == [b"one\n", b"two\n"]


def test_a_partial_write_is_continued_until_every_byte_is_out():
    written = []

    def write_at_most_3(data):
        written.append(data[:3])
        return min(3, len(data))

    batched = BatchedLines(write_at_most_3, interval_s=0)
    batched.setFormatter(logging.Formatter("%(message)s"))
    log(batched, "abcdefg")
    assert b"".join(written) == b"abcdefg\n"


def test_held_lines_are_written_without_another_request_once_due():
    batched, writes = handler(interval_s=0.1, clock=time.monotonic)
    batched.flush_periodically()
    try:
        log(batched, "idle afterwards")
        deadline = time.monotonic() + 2
        while not writes and time.monotonic() < deadline:
            time.sleep(0.01)
        assert writes == [b"idle afterwards\n"]
    finally:
        batched.close()


def gunicorn_logger(**settings):
    cfg = Config()
    for name, value in settings.items():
        cfg.set(name, value)
    return Logger(cfg)


def test_gunicorns_access_log_to_stdout_is_batched_with_its_own_format():
    logger = gunicorn_logger(accesslog="-", access_log_format="%(s)s %(r)s")
    stock_formatter = logger.access_log.handlers[0].formatter
    batched = batch_access_log(logger, 1)
    try:
        assert logger.access_log.handlers == [batched]
        assert batched.formatter is stock_formatter and batched._gunicorn
    finally:
        logger.access_log.removeHandler(batched)
        batched.close()


@pytest.mark.parametrize("accesslog", ["file", None])
def test_an_access_log_not_on_stdout_is_left_alone(tmp_path, accesslog):
    logger = gunicorn_logger(accesslog=str(tmp_path / "access.log") if accesslog == "file" else None)
    before = list(logger.access_log.handlers)
    try:
        assert batch_access_log(logger, 1) is None
        assert logger.access_log.handlers == before
    finally:
        for stock in before:
            logger.access_log.removeHandler(stock)
            stock.close()


def test_stdout_is_what_the_batches_are_written_to(capfd):
    logger = gunicorn_logger(accesslog="-", access_log_format="%(s)s")
    # capfd swaps the stream behind file descriptor 1: find gunicorn's handler on it.
    logger.access_log.handlers[0].stream = sys.stdout
    batched = batch_access_log(logger, 0)
    try:
        # gunicorn's own handler is gone (pytest adds capturing handlers of its own).
        assert [h for h in logger.access_log.handlers if getattr(h, "_gunicorn", False)] == [batched]
        logger.access_log.info("a line for stdout")
        # (pytest may echo the record on its own lines: only the bare line is the handler's.)
        assert "a line for stdout" in capfd.readouterr().out.splitlines()
    finally:
        logger.access_log.removeHandler(batched)
