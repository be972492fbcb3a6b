"""How long to wait before retrying a request: the server's Retry-After, else backoff.

Pure functions of their inputs (the wall clock and the random draw are passed in).
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Callable

BASE_SECONDS = 1.0
CAP_SECONDS = 60.0
MAX_RETRY_AFTER = 900.0
"""Longest Retry-After honoured as given; a larger or absurd value is clamped to this."""


def retry_after_seconds(header: str | None, *, now: float) -> float | None:
    """Seconds to wait per a Retry-After header (delta seconds or an HTTP date), or None.

    `now` is the wall clock (Unix seconds), needed for the date form. An unreadable
    header is None, so the caller falls back to its own backoff.
    """
    if header is None:
        return None
    text = header.strip()
    if not text:
        return None
    if text.isdigit() or _is_decimal(text):
        return min(max(float(text), 0.0), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a bare one is read as UTC
        when = when.replace(tzinfo=dt.UTC)
    return min(max(when.timestamp() - now, 0.0), MAX_RETRY_AFTER)


def backoff_seconds(
    attempt: int,
    *,
    random: Callable[[], float],
    base: float = BASE_SECONDS,
    cap: float = CAP_SECONDS,
) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)).

    `attempt` counts from 0 for the first retry. Full jitter spreads retries of many
    clients evenly instead of in waves (AWS Architecture Blog, "Exponential Backoff
    And Jitter").
    """
    ceiling = min(cap, base * (2.0 ** min(attempt, 30)))
    return random() * ceiling


def _is_decimal(text: str) -> bool:
    head, dot, tail = text.partition(".")
    return bool(dot) and head.isdigit() and tail.isdigit()
