"""The object store on Amazon S3 (or anything that speaks its API), through aioboto3.

Endpoint, credentials and region come from the standard AWS configuration
(environment, profiles, instance roles); botocore itself honours
`AWS_ENDPOINT_URL`, so pointing a run at moto needs no code here. One store
owns one aiobotocore client whose connection pool is sized for the caller's
concurrency, and botocore retries throttling, 5xx answers, connection resets
and timeouts with backoff before anything reaches the caller.

Every failure leaves as an `errors.StorageError` subclass with a one-line
message naming the bucket and key (see `s3_errors`); credentials and object
bodies never appear in messages. Large files go up in parts (`s3_multipart`),
many keys go in batches (`s3_delete`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import random
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aioboto3
from botocore.exceptions import ClientError

from archiver.errors import ArchiverError, ConfigError, NotFoundError, PreconditionFailedError, StorageError
from archiver.storage.location import parse_s3_url
from archiver.storage.s3_client import S3Connection
from archiver.storage.s3_delete import DeleteTarget, delete_keys
from archiver.storage.s3_errors import BODY_READ_ERRORS, connection_reason, error_code, map_error
from archiver.storage.s3_multipart import MIB, MIN_PART_BYTES, MultipartTarget, put_multipart
from archiver.storage.store import Fetched, ListPage, ObjectInfo, RequestCounts

logger = logging.getLogger(__name__)

DELETE_BATCH = 1000
STREAM_CHUNK_BYTES = 1024 * 1024
"""DeleteObjects takes at most 1000 keys per request."""

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


def _strip_etag(etag: Any) -> str:
    return str(etag or "").strip('"')


def _epoch_us(value: Any) -> int | None:
    if not isinstance(value, dt.datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int((value - _EPOCH) // _MICROSECOND)


def _list_page(response: dict[str, Any], cut: int, last: bool) -> ListPage:
    """A ListObjectsV2 answer as a page, keys with the first `cut` characters (the prefix) removed."""
    objects = tuple(
        ObjectInfo(
            key=item["Key"][cut:],
            size=int(item.get("Size", 0)),
            etag=_strip_etag(item.get("ETag")),
            last_modified_us=_epoch_us(item.get("LastModified")),
        )
        for item in response.get("Contents", ())
    )
    prefixes = tuple(item["Prefix"][cut:] for item in response.get("CommonPrefixes", ()))
    return ListPage(objects=objects, prefixes=prefixes, last=last)


class S3Store:
    """ObjectStore on one bucket and prefix; keys in and out are relative to the prefix.

    Create it with `await S3Store.open(...)` (client ready, configuration errors raised
    at once) or plainly (client made on first use); release it with `close()` or
    `async with`. It belongs to the event loop that first used it.
    """

    sequential_reads = False

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        session: aioboto3.Session | None = None,
        credentials: Mapping[str, str] | None = None,
        endpoint_url: str | None = None,
        max_connections: int = 64,
        max_attempts: int = 8,
        retry_mode: str = "standard",
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        multipart_threshold: int = 64 * MIB,
        part_size: int = 16 * MIB,
        part_concurrency: int = 4,
    ) -> None:
        """Configure the store; nothing is contacted yet.

        Without `session` or `credentials`, the standard AWS configuration applies.
        `credentials` holds aioboto3.Session arguments (aws_access_key_id,
        aws_secret_access_key, aws_session_token, region_name, profile_name), for
        callers such as replay that talk to moto with dummy keys. `endpoint_url`
        overrides the endpoint explicitly (botocore already reads AWS_ENDPOINT_URL).
        `max_connections` sizes the connection pool for the caller's concurrency;
        `max_attempts` counts the first try; `multipart_threshold`/`part_size` decide
        how `put_file` uploads, with at most `part_concurrency` parts in memory at once.
        """
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        if max_attempts < 1 or max_connections < 1 or part_concurrency < 1:
            raise ConfigError("max_attempts, max_connections and part_concurrency must be >= 1")
        self.bucket = bucket
        self.prefix = prefix
        self.counts = RequestCounts()
        self.multipart_threshold = multipart_threshold
        self.part_size = max(part_size, MIN_PART_BYTES)
        self.part_concurrency = part_concurrency
        self._connection = S3Connection(
            session=session,
            credentials=credentials,
            endpoint_url=endpoint_url,
            max_connections=max_connections,
            max_attempts=max_attempts,
            retry_mode=retry_mode,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        self._body_attempts = max_attempts
        self._pool_size = max_connections

    @classmethod
    async def open(cls, bucket: str, prefix: str = "", **options: Any) -> S3Store:
        """A store whose client is already created (bad endpoint settings fail here)."""
        store = cls(bucket, prefix, **options)
        await store._get_client()
        return store

    @classmethod
    async def from_url(cls, url: str, **options: Any) -> S3Store:
        """`open` for an s3://bucket/prefix URL."""
        bucket, prefix = parse_s3_url(url)
        return await cls.open(bucket, prefix, **options)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def endpoint(self) -> str:
        """The endpoint in use (known once the client exists), without credentials."""
        return self._connection.endpoint

    async def __aenter__(self) -> S3Store:
        await self._get_client()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the client and its connection pool; the store may be reopened by using it."""
        await self._connection.close()

    async def _get_client(self) -> Any:
        return await self._connection.client()

    def _where(self, key: str | None) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key or ''}"

    def _error(self, error: BaseException, action: str, key: str | None = None) -> ArchiverError:
        """Map a botocore/aiohttp failure to the archiver's hierarchy (one line, no secrets)."""
        return map_error(
            error, action=action, where=self._where(key), bucket=self.bucket, endpoint=self.endpoint
        )

    async def list_pages(
        self, prefix: str, *, delimiter: str | None = None, start_after: str | None = None
    ) -> AsyncIterator[ListPage]:
        """ListObjectsV2 page by page (one `list` request each), keys relative to the store prefix.

        `start_after` (relative, like the keys) becomes StartAfter: the listing begins after it.
        """
        client = await self._get_client()
        cut = len(self.prefix)
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        if delimiter:
            params["Delimiter"] = delimiter
        if start_after:
            params["StartAfter"] = self.prefix + start_after
        while True:
            self.counts.list += 1
            try:
                response = await client.list_objects_v2(**params)
            except Exception as error:
                raise self._error(error, "list", prefix) from None
            token = response.get("NextContinuationToken")
            last = not response.get("IsTruncated") or not token
            yield _list_page(response, cut, last)
            if last:
                return
            params["ContinuationToken"] = token

    async def get(self, key: str) -> Fetched:
        """GetObject; a body stream cut short is re-requested (botocore retries stop at the headers)."""
        client = await self._get_client()
        for attempt in range(1, self._body_attempts + 1):
            self.counts.get += 1
            try:
                response = await client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            except Exception as error:
                raise self._error(error, "read", key) from None
            try:
                async with response["Body"] as stream:
                    body = await stream.read()
            except BODY_READ_ERRORS as error:
                if attempt == self._body_attempts:
                    raise self._error(error, "read", key) from None
                logger.info(
                    "reading %s again: its body was cut short (%s), attempt %d of %d",
                    self._where(key),
                    connection_reason(error),
                    attempt + 1,
                    self._body_attempts,
                )
                await asyncio.sleep(min(20.0, random.random() * 2**attempt))
                continue
            self.counts.bytes_read += len(body)
            return Fetched(key=key, etag=_strip_etag(response.get("ETag")), body=bytes(body))
        raise AssertionError("unreachable")  # pragma: no cover

    async def get_file(self, key: str, path: Path) -> str:
        """GetObject streamed to `path` in chunks; a cut stream is re-requested from the start."""
        client = await self._get_client()
        for attempt in range(1, self._body_attempts + 1):
            self.counts.get += 1
            try:
                response = await client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            except Exception as error:
                raise self._error(error, "read", key) from None
            try:
                body = response["Body"]
                try:
                    with path.open("wb") as handle:
                        while chunk := await body.read(STREAM_CHUNK_BYTES):
                            handle.write(chunk)
                            self.counts.bytes_read += len(chunk)
                finally:
                    body.close()
            except BODY_READ_ERRORS as error:
                if attempt == self._body_attempts:
                    raise self._error(error, "read", key) from None
                await asyncio.sleep(min(20.0, random.random() * 2**attempt))
                continue
            return _strip_etag(response.get("ETag"))
        raise AssertionError("unreachable")  # pragma: no cover

    async def head(self, key: str) -> ObjectInfo | None:
        """HeadObject; None when the object (or, as HEAD cannot tell, the bucket) is missing."""
        client = await self._get_client()
        self.counts.head += 1
        try:
            response = await client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        except ClientError as error:
            mapped = self._error(error, "inspect", key)
            if isinstance(mapped, NotFoundError):
                return None
            raise mapped from None
        except Exception as error:
            raise self._error(error, "inspect", key) from None
        return ObjectInfo(
            key=key,
            size=int(response.get("ContentLength", 0)),
            etag=_strip_etag(response.get("ETag")),
            last_modified_us=_epoch_us(response.get("LastModified")),
        )

    async def put(
        self,
        key: str,
        body: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str:
        """PutObject, conditional through If-None-Match: * / If-Match; returns the new ETag."""
        client = await self._get_client()
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self.prefix + key, "Body": body}
        if if_none_match:
            params["IfNoneMatch"] = "*"
        if if_match is not None:
            params["IfMatch"] = f'"{if_match.strip(chr(34))}"'
        self.counts.put += 1
        try:
            response = await client.put_object(**params)
        except ClientError as error:
            if if_match is not None and error_code(error)[0] in ("NoSuchKey", "404"):
                # If-Match on a key that has gone: the condition lost, like a changed ETag.
                raise PreconditionFailedError(
                    f"cannot write {self._where(key)}: it no longer exists"
                ) from None
            raise self._error(error, "write", key) from None
        except Exception as error:
            raise self._error(error, "write", key) from None
        self.counts.bytes_written += len(body)
        return _strip_etag(response.get("ETag"))

    async def put_file(self, key: str, path: Path) -> str:
        """One PutObject below `multipart_threshold`, else a multipart upload read part by part."""
        try:
            size = os.stat(path).st_size
        except OSError as error:
            raise StorageError(f"cannot read local file {path}: {error.strerror}") from None
        if size < self.multipart_threshold:
            body = await asyncio.to_thread(Path(path).read_bytes)
            return await self.put(key, body)
        target = MultipartTarget(
            client=await self._get_client(),
            bucket=self.bucket,
            key=self.prefix + key,
            counts=self.counts,
            fail=lambda error: self._error(error, "write", key),
        )
        return await put_multipart(
            target, Path(path), size, part_size=self.part_size, concurrency=self.part_concurrency
        )

    async def delete(self, keys: list[str]) -> None:
        """DeleteObjects in batches of 1000; DeleteObject one by one where batches are unsupported."""
        if not keys:
            return
        target = DeleteTarget(
            client=await self._get_client(),
            bucket=self.bucket,
            prefix=self.prefix,
            counts=self.counts,
            fail=lambda error, key: self._error(error, "delete", key),
        )
        await delete_keys(target, keys, batch_size=DELETE_BATCH, concurrency=self._pool_size)
