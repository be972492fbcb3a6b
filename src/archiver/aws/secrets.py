"""Reading secrets in Lambda without their values reaching a log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def without_response_bodies_in_debug_logs() -> Iterator[None]:
    """botocore logs every response body at DEBUG: a secret's holds its value. Not while it is read."""
    parsers = logging.getLogger("botocore.parsers")

    def drop(record: logging.LogRecord) -> bool:
        return False

    parsers.addFilter(drop)
    try:
        yield
    finally:
        parsers.removeFilter(drop)
