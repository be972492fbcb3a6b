"""The CLI configures the process's `archiver` logger (handler, level, propagation) the way a
command line should; tests call `main()` in-process, so each gets the logger back as it was."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from archiver.cli.logs import ROOT_LOGGER


@pytest.fixture(autouse=True)
def restore_archiver_logger() -> Iterator[None]:
    logger = logging.getLogger(ROOT_LOGGER)
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate
