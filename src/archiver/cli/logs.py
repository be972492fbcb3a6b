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
    """The handler this module installs (so a second call replaces it instead of adding one).

    Without a stream of its own it writes to whatever `sys.stderr` is when a record
    arrives (as logging's last-resort handler does), so a `main()` called in-process,
    for example by a test that captures stderr, never leaves it writing to a closed stream.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._own_stream = stream
        super().__init__(stream)

    @property
    def stream(self) -> TextIO:
        return self._own_stream if self._own_stream is not None else sys.stderr

    @stream.setter
    def stream(self, value: TextIO | None) -> None:
        self._own_stream = value if value is not sys.stderr else None


def configure_logging(verbosity: int, stream: TextIO | None = None) -> logging.Logger:
    """Send the `archiver` loggers to `stream` (stderr) at the level `verbosity` asks for."""
    logger = logging.getLogger(ROOT_LOGGER)
    for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(handler)
    handler = _StderrHandler(stream)
    handler.setFormatter(logging.Formatter(_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(_LEVELS[max(0, min(verbosity, len(_LEVELS) - 1))])
    logger.propagate = False
    return logger
