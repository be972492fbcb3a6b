"""A client-side request rate limit: requests evenly spaced at N per minute.

Workato allows 60 requests a minute per workspace across all its environment
management endpoints, shared with every other tool using the same budget. Spacing
requests evenly (a token bucket holding one token) never bursts, and it keeps any
60-second window at or under the limit. Clock and sleep are injected so tests can
check the rate on a simulated clock instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class RateLimiter:
    """Lets one request start every `60 / per_minute` seconds; callers queue in arrival order."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self.interval = 60.0 / per_minute
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None
        self._lock = asyncio.Lock()
        self.waited = 0.0
        """Seconds spent waiting for the limit, for the run report."""

    def __repr__(self) -> str:
        return f"RateLimiter(per_minute={self.per_minute})"

    async def acquire(self) -> None:
        """Wait until the next request may start, and claim that slot."""
        async with self._lock:
            now = self._clock()
            start = now if self._next is None else max(now, self._next)
            if start > now:
                self.waited += start - now
                await self._sleep(start - now)
            self._next = start + self.interval

    def defer(self, seconds: float) -> None:
        """Start no request for `seconds` from now (the server asked us to wait, e.g. a 429)."""
        self._next = max(self._next or 0.0, self._clock() + seconds)
