"""Where the archiver's log goes when it runs from the command line: one stderr handler.

Library code only logs, through `logging.getLogger(__name__)` (one logger per
module under `archiver`); the entry point decides what is shown. `-v` shows INFO,
`-vv` DEBUG, otherwise warnings and errors only. Only the `archiver` loggers get
the handler: botocore's own debug log carries request headers (credentials
included), so it is never switched on here.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

ROOT_LOGGER = "archiver"
_LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler this module installs (so a second call replaces it instead of adding one)."""


def configure_logging(verbosity: int, stream: TextIO | None = None) -> logging.Logger:
    """Send the `archiver` loggers to `stream` (stderr) at the level `verbosity` asks for."""
    logger = logging.getLogger(ROOT_LOGGER)
    for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(handler)
    handler = _StderrHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(_LEVELS[max(0, min(verbosity, len(_LEVELS) - 1))])
    logger.propagate = False
    return logger
