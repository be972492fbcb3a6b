"""One aiobotocore S3 client: configured from the standard AWS settings, made on first use.

The client's connection pool is sized for the caller's concurrency, and botocore's
own retries (throttling, 5xx, resets, timeouts) are configured here. Bad endpoint
or profile settings surface as `ConfigError` when the client is made.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import ProfileNotFound

from archiver.errors import ConfigError
from archiver.storage.s3_errors import one_line, public_endpoint

logger = logging.getLogger(__name__)

_SESSION_ARGUMENTS = frozenset(
    {"aws_access_key_id", "aws_secret_access_key", "aws_session_token", "region_name", "profile_name"}
)


class S3Connection:
    """A lazily created S3 client and what it needs; closing it releases the pool."""

    def __init__(
        self,
        *,
        session: aioboto3.Session | None,
        credentials: Mapping[str, str] | None,
        endpoint_url: str | None,
        max_connections: int,
        max_attempts: int,
        retry_mode: str,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        if session is None:
            unknown = set(credentials or {}) - _SESSION_ARGUMENTS
            if unknown:
                raise ConfigError(f"unknown credential settings: {', '.join(sorted(unknown))}")
            try:
                session = aioboto3.Session(**dict(credentials or {}))
            except ProfileNotFound as error:
                raise ConfigError(f"cannot configure the S3 client: {one_line(str(error))}") from None
        self._session = session
        self._endpoint_url = endpoint_url
        self._config = Config(
            max_pool_connections=max_connections,
            retries={"total_max_attempts": max_attempts, "mode": retry_mode},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        self._client: Any = None
        self._resolved_endpoint: str | None = None
        self._stack: AsyncExitStack | None = None
        self._lock = asyncio.Lock()

    @property
    def endpoint(self) -> str:
        """The endpoint in use (known once the client exists), without credentials."""
        if self._resolved_endpoint is not None:
            return self._resolved_endpoint
        return public_endpoint(self._endpoint_url) if self._endpoint_url else "the default S3 endpoint"

    async def client(self) -> Any:
        """The client, made on first use."""
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                stack = AsyncExitStack()
                try:
                    self._client = await stack.enter_async_context(
                        self._session.client("s3", endpoint_url=self._endpoint_url, config=self._config)
                    )
                except (ValueError, ProfileNotFound) as error:  # botocore: "Invalid endpoint: ..."
                    await stack.aclose()
                    raise ConfigError(f"cannot configure the S3 client: {one_line(str(error))}") from None
                except BaseException:
                    await stack.aclose()
                    raise
                self._stack = stack
                self._resolved_endpoint = public_endpoint(str(self._client.meta.endpoint_url))
                logger.debug(
                    "S3 client ready: endpoint %s, up to %d connections, %s",
                    self._resolved_endpoint,
                    self._config.max_pool_connections,
                    self._config.retries,
                )
        return self._client

    async def close(self) -> None:
        """Close the client and its connection pool; the next use makes a new one."""
        async with self._lock:
            stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()
