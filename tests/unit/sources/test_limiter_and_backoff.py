"""The rate limiter on a simulated clock, and retry timing (Retry-After, full-jitter backoff)."""

from __future__ import annotations

import asyncio
import email.utils

import pytest

from archiver.sources.workato.backoff import MAX_RETRY_AFTER, backoff_seconds, retry_after_seconds
from archiver.sources.workato.limiter import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def acquire_times(limiter: RateLimiter, clock: Clock, count: int) -> list[float]:
    async def run() -> list[float]:
        times = []
        for _ in range(count):
            await limiter.acquire()
            times.append(clock.now)
        return times

    return asyncio.run(run())


@pytest.mark.parametrize("per_minute", [1, 7, 60, 480])
def test_no_minute_holds_more_requests_than_the_limit(per_minute: int) -> None:
    # GIVEN a limiter on a simulated clock
    clock = Clock()
    limiter = RateLimiter(per_minute, clock=clock.monotonic, sleep=clock.sleep)
    # WHEN three minutes' worth of requests are made back to back
    times = acquire_times(limiter, clock, 3 * per_minute + 1)
    # THEN any 60-second window holds at most the limit, and they are evenly spaced
    assert max(sum(1 for t in times if start <= t < start + 60) for start in times) == per_minute
    assert times[-1] - times[0] == pytest.approx(180.0)


def test_an_idle_limiter_lets_the_next_request_go_at_once_and_never_saves_up_a_burst() -> None:
    # GIVEN a limiter that was idle for ten minutes after one request
    clock = Clock()
    limiter = RateLimiter(60, clock=clock.monotonic, sleep=clock.sleep)
    acquire_times(limiter, clock, 1)
    clock.now += 600
    # WHEN three more requests come
    times = acquire_times(limiter, clock, 3)
    # THEN the first goes at once and the others are spaced: idle time buys no burst
    assert times == [700.0, 701.0, 702.0]


def test_defer_holds_every_request_until_the_server_says() -> None:
    # GIVEN a limiter told to wait 30 s (a 429's Retry-After)
    clock = Clock()
    limiter = RateLimiter(60, clock=clock.monotonic, sleep=clock.sleep)
    limiter.defer(30)
    # WHEN a request comes THEN it starts 30 s later
    assert acquire_times(limiter, clock, 1) == [130.0]
    assert limiter.waited == pytest.approx(30.0)
    assert repr(limiter) == "RateLimiter(per_minute=60)"


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(0)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("99999", MAX_RETRY_AFTER),
        (email.utils.formatdate(1_000_045, usegmt=True), 45.0),
        (email.utils.formatdate(999_000, usegmt=True), 0.0),  # a date in the past: go now
        (email.utils.formatdate(1_000_030, usegmt=True)[: -len(" GMT")], 30.0),  # no zone: read as UTC
        ("soon", None),
        ("", None),
        (None, None),
        ("-5", None),
    ],
)
def test_retry_after_in_both_forms(header: str | None, expected: float | None) -> None:
    # GIVEN a Retry-After header (delta seconds or an HTTP date) and the wall clock at 1,000,000
    # WHEN it is read THEN it gives the seconds to wait, or None when unreadable
    assert retry_after_seconds(header, now=1_000_000.0) == expected


@pytest.mark.parametrize(("attempt", "ceiling"), [(0, 1.0), (1, 2.0), (3, 8.0), (6, 60.0), (100, 60.0)])
def test_backoff_is_full_jitter_under_an_exponential_ceiling(attempt: int, ceiling: float) -> None:
    # GIVEN the extremes of the random draw
    # WHEN the backoff of an attempt is computed
    # THEN it spans [0, min(60, 2**attempt)) seconds
    assert backoff_seconds(attempt, random=lambda: 0.0) == 0.0
    assert backoff_seconds(attempt, random=lambda: 0.999999) == pytest.approx(ceiling, rel=1e-5)
    assert backoff_seconds(attempt, random=lambda: 0.5) == pytest.approx(ceiling / 2)
