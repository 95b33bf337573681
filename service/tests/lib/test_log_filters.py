"""Keeping an outage out of the disk: one traceback per distinct error a minute, and no second
line from Django about a 503 that was already logged."""

import io
import logging

from signing_service.log_filters import OneTracebackPerMinute, SkipServiceUnavailable


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def logger_into(stream: io.StringIO, log_filter: logging.Filter) -> logging.Logger:
    logger = logging.getLogger(f"test_log_filters.{id(stream)}")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.addFilter(log_filter)
    logger.addHandler(handler)
    return logger


def fail(logger: logging.Logger, error: Exception) -> None:
    try:
        raise error
    except Exception:
        logger.exception("The database failed during GET /audit/")


def test_the_same_error_gets_one_traceback_a_minute_and_a_line_each_time():
    stream, clock = io.StringIO(), Clock()
    logger = logger_into(stream, OneTracebackPerMinute(clock=clock))
    for _ in range(50):
        fail(logger, ConnectionError("connection refused\ndetail line"))
    lines = stream.getvalue().splitlines()
    assert stream.getvalue().count("Traceback") == 1
    failures = [line for line in lines if line.startswith("The database failed")]
    assert len(failures) == 50
    assert failures[1] == (
        "The database failed during GET /audit/ [ConnectionError: connection refused]"
    )
    logger.error("Lost: %s", "connection refused", exc_info=ConnectionError("connection refused"))
    assert stream.getvalue().splitlines()[-1] == "Lost: connection refused [ConnectionError]"
    clock.now += 60
    fail(logger, ConnectionError("connection refused"))
    assert stream.getvalue().count("Traceback") == 2


def test_each_distinct_error_gets_its_own_traceback():
    stream = io.StringIO()
    logger = logger_into(stream, OneTracebackPerMinute(clock=Clock()))
    for error in [ConnectionError("refused"), ConnectionError("reset"), TimeoutError("refused")]:
        fail(logger, error)
        fail(logger, error)
    assert stream.getvalue().count("Traceback") == 3


def test_records_without_an_error_pass_untouched():
    stream = io.StringIO()
    logger = logger_into(stream, OneTracebackPerMinute(clock=Clock()))
    logger.warning("Ready again (%s).", "database")
    logger.warning("Ready again (%s).", "database")
    assert stream.getvalue() == "Ready again (database).\n" * 2


def test_django_request_lines_about_a_503_are_left_out_and_others_kept():
    keep = SkipServiceUnavailable()

    def record(status: int | None) -> logging.LogRecord:
        made = logging.LogRecord("django.request", logging.ERROR, "", 0, "x", None, None)
        if status is not None:
            made.status_code = status
        return made

    assert not keep.filter(record(503))
    assert keep.filter(record(500))
    assert keep.filter(record(404))
    assert keep.filter(record(None))


def test_errors_not_seen_for_a_minute_are_forgotten():
    clock = Clock()
    throttle = OneTracebackPerMinute(clock=clock)
    logger = logger_into(io.StringIO(), throttle)
    for number in range(100):  # messages that carry a value: each a distinct error
        fail(logger, ConnectionError(f"duplicate key {number}"))
    clock.now += 61
    fail(logger, ConnectionError("refused"))
    assert list(throttle.shown) == [("ConnectionError", "refused")]
