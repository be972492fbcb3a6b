"""The object store on Amazon S3 (or anything that speaks its API), through aioboto3.

Endpoint, credentials and region come from the standard AWS configuration
(environment, profiles, instance roles); botocore itself honours
`AWS_ENDPOINT_URL`, so pointing a run at moto needs no code here. One store
owns one aiobotocore client whose connection pool is sized for the caller's
concurrency, and botocore retries throttling, 5xx answers, connection resets
and timeouts with backoff before anything reaches the caller.

Every failure leaves as an `errors.StorageError` subclass with a one-line
message naming the bucket and key; credentials and object bodies never appear
in messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import random
import re
import socket
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aioboto3
import aiohttp
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    CredentialRetrievalError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from archiver.errors import (
    AccessDeniedError,
    ArchiverError,
    ConfigError,
    EndpointError,
    NotFoundError,
    PreconditionFailedError,
    StorageError,
)
from archiver.storage.store import Fetched, ListPage, ObjectInfo, RequestCounts

MIB = 1024 * 1024
MIN_PART_BYTES = 5 * MIB
"""S3 rejects multipart parts below 5 MiB (except the last one)."""
MAX_PARTS = 10_000
_SESSION_ARGUMENTS = frozenset(
    {"aws_access_key_id", "aws_secret_access_key", "aws_session_token", "region_name", "profile_name"}
)
DELETE_BATCH = 1000
STREAM_CHUNK_BYTES = 1024 * 1024
"""DeleteObjects takes at most 1000 keys per request."""

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)

# Modern bucket naming rules: 3-63 characters, lower-case letters, digits, dots and hyphens.
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
_ACCESS_CODES = frozenset(
    {
        "AccessDenied",
        "403",
        "Forbidden",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AllAccessDisabled",
        "AccountProblem",
        "InvalidObjectState",
    }
)
_PRECONDITION_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "OperationAborted",
    }
)
# Answers of S3-compatible stores that do not implement DeleteObjects (or want Content-MD5).
_NO_BATCH_DELETE_CODES = frozenset({"NotImplemented", "MissingContentMD5", "MethodNotAllowed", "501"})
# Errors while streaming a GetObject body arrive after botocore's retries are over.
_BODY_READ_ERRORS: tuple[type[BaseException], ...] = (
    ResponseStreamingError,
    IncompleteReadError,
    ReadTimeoutError,
    aiohttp.ClientError,
    asyncio.TimeoutError,
    ConnectionError,
)


def parse_s3_url(url: str) -> tuple[str, str]:
    """Split "s3://bucket/prefix" into the bucket and a prefix that is '' or ends with '/'.

    Raises ConfigError for anything that is not an s3:// URL with a valid bucket name,
    so a typo fails before the first request.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "s3":
        raise ConfigError(f"not an S3 URL (expected s3://bucket/prefix): {url!r}")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ConfigError(f"S3 URL has no bucket: {url!r}")
    if not _BUCKET_NAME.match(bucket) or ".." in bucket:
        raise ConfigError(f"invalid S3 bucket name {bucket!r} in {url!r}")
    if any(ch in prefix for ch in "\x00\r\n"):
        raise ConfigError(f"S3 prefix contains control characters: {url!r}")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def _strip_etag(etag: Any) -> str:
    return str(etag or "").strip('"')


def _epoch_us(value: Any) -> int | None:
    if not isinstance(value, dt.datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int((value - _EPOCH) // _MICROSECOND)


def _error_code(error: ClientError) -> tuple[str, int]:
    """The S3 error code and HTTP status of a ClientError."""
    code = str((error.response.get("Error") or {}).get("Code") or "")
    status = int((error.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    return code, status


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _public_endpoint(url: str) -> str:
    """The endpoint without any user:password part, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid endpoint>"
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _connection_reason(error: BaseException) -> str:
    """A short human reason ("connection refused", "timed out") from an exception chain."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, socket.gaierror):
            return "unknown host"
        if isinstance(current, ConnectionResetError):
            return "connection reset"
        if isinstance(current, ssl.SSLError):
            return f"TLS error ({_one_line(str(current), 80)})"
        if isinstance(current, TimeoutError | asyncio.TimeoutError):
            return "timed out"
        inner = getattr(current, "kwargs", {}).get("error") if isinstance(current, BotoCoreError) else None
        pending.extend([current.__cause__, current.__context__, inner, getattr(current, "os_error", None)])
    if isinstance(error, ReadTimeoutError):
        return "timed out"
    name = type(error).__name__
    if "Timeout" in name:
        return "timed out"
    return "connection failed"


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
        if session is None:
            unknown = set(credentials or {}) - _SESSION_ARGUMENTS
            if unknown:
                raise ConfigError(f"unknown credential settings: {', '.join(sorted(unknown))}")
            try:
                session = aioboto3.Session(**dict(credentials or {}))
            except ProfileNotFound as error:
                raise ConfigError(f"cannot configure the S3 client: {_one_line(str(error))}") from None
        self._session = session
        self._endpoint_url = endpoint_url
        self._config = Config(
            max_pool_connections=max_connections,
            retries={"total_max_attempts": max_attempts, "mode": retry_mode},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        self._body_attempts = max_attempts
        self._pool_size = max_connections
        self._client: Any = None
        self._resolved_endpoint: str | None = None
        self._stack: AsyncExitStack | None = None
        self._client_lock = asyncio.Lock()

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
        if self._resolved_endpoint is not None:
            return self._resolved_endpoint
        return _public_endpoint(self._endpoint_url) if self._endpoint_url else "the default S3 endpoint"

    async def __aenter__(self) -> S3Store:
        await self._get_client()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the client and its connection pool; the store may be reopened by using it."""
        async with self._client_lock:
            stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def _get_client(self) -> Any:
        if self._client is not None:
            return self._client
        async with self._client_lock:
            if self._client is None:
                stack = AsyncExitStack()
                try:
                    self._client = await stack.enter_async_context(
                        self._session.client("s3", endpoint_url=self._endpoint_url, config=self._config)
                    )
                except ValueError as error:  # botocore: "Invalid endpoint: ..."
                    await stack.aclose()
                    raise ConfigError(f"cannot configure the S3 client: {_one_line(str(error))}") from None
                except ProfileNotFound as error:
                    await stack.aclose()
                    raise ConfigError(f"cannot configure the S3 client: {_one_line(str(error))}") from None
                except BaseException:
                    await stack.aclose()
                    raise
                self._stack = stack
                self._resolved_endpoint = _public_endpoint(str(self._client.meta.endpoint_url))
        return self._client

    def _where(self, key: str | None) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key or ''}"

    def _error(self, error: BaseException, action: str, key: str | None = None) -> ArchiverError:
        """Map a botocore/aiohttp failure to the archiver's hierarchy (one line, no secrets)."""
        where = self._where(key)
        if isinstance(error, ArchiverError):
            return error
        if isinstance(error, ClientError):
            code, status = _error_code(error)
            message = _one_line(str((error.response.get("Error") or {}).get("Message") or ""))
            detail = f"{code}: {message}" if message and message != code else code or str(status)
            if code == "NoSuchBucket":
                return NotFoundError(f"bucket {self.bucket} does not exist")
            if code in _PRECONDITION_CODES or status == 412:
                return PreconditionFailedError(f"cannot {action} {where}: another writer changed it first")
            if code in _NOT_FOUND_CODES or status == 404:
                return NotFoundError(f"{where} does not exist")
            if code in _ACCESS_CODES or status == 403:
                return AccessDeniedError(f"access denied: cannot {action} {where} ({detail})")
            retryable = code in _TRANSIENT_CODES or status >= 500 or status == 429
            return StorageError(f"cannot {action} {where}: {detail}", retryable=retryable)
        if isinstance(error, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
            return AccessDeniedError(
                f"cannot {action} {where}: no usable AWS credentials ({type(error).__name__})"
            )
        if isinstance(
            error,
            BotoConnectionError
            | ConnectionClosedError
            | ReadTimeoutError
            | asyncio.TimeoutError
            | aiohttp.ClientConnectionError,
        ):
            return EndpointError(
                f"cannot reach the storage endpoint {self.endpoint}: {_connection_reason(error)}"
            )
        if isinstance(error, _BODY_READ_ERRORS):
            return StorageError(f"cannot {action} {where}: {_connection_reason(error)}", retryable=True)
        if isinstance(error, BotoCoreError):
            return StorageError(f"cannot {action} {where}: {_one_line(str(error))}", retryable=False)
        return StorageError(f"cannot {action} {where}: {type(error).__name__}: {_one_line(str(error))}")

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
            yield ListPage(objects=objects, prefixes=prefixes)
            token = response.get("NextContinuationToken")
            if not response.get("IsTruncated") or not token:
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
            except _BODY_READ_ERRORS as error:
                if attempt == self._body_attempts:
                    raise self._error(error, "read", key) from None
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
                with path.open("wb") as handle:
                    async with response["Body"] as stream:
                        while chunk := await stream.read(STREAM_CHUNK_BYTES):
                            handle.write(chunk)
                            self.counts.bytes_read += len(chunk)
            except _BODY_READ_ERRORS as error:
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
            if if_match is not None and _error_code(error)[0] in ("NoSuchKey", "404"):
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
        return await self._put_multipart(key, Path(path), size)

    async def _put_multipart(self, key: str, path: Path, size: int) -> str:
        client = await self._get_client()
        full_key = self.prefix + key
        part_size = max(self.part_size, -(-size // MAX_PARTS))
        part_count = max(1, -(-size // part_size))
        # Mirror s3transfer: name the checksum explicitly so that create, parts and
        # complete agree whatever the configured request_checksum_calculation is.
        checksum = client.meta.config.request_checksum_calculation == "when_supported"
        extra: dict[str, Any] = {"ChecksumAlgorithm": "CRC32"} if checksum else {}
        self.counts.put += 1
        try:
            created = await client.create_multipart_upload(Bucket=self.bucket, Key=full_key, **extra)
        except Exception as error:
            raise self._error(error, "write", key) from None
        upload_id = created["UploadId"]
        parts: list[dict[str, Any]] = [{} for _ in range(part_count)]
        slots = asyncio.Semaphore(self.part_concurrency)

        async def upload_part(number: int, fd: int) -> None:
            async with slots:  # bounds the parts held in memory, not only the requests
                offset = (number - 1) * part_size
                data = await asyncio.to_thread(os.pread, fd, min(part_size, size - offset), offset)
                self.counts.put += 1
                response = await client.upload_part(
                    Bucket=self.bucket,
                    Key=full_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=data,
                    **extra,
                )
                self.counts.bytes_written += len(data)
                part: dict[str, Any] = {"PartNumber": number, "ETag": response["ETag"]}
                if checksum and response.get("ChecksumCRC32"):
                    part["ChecksumCRC32"] = response["ChecksumCRC32"]
                parts[number - 1] = part

        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                async with asyncio.TaskGroup() as group:
                    for number in range(1, part_count + 1):
                        group.create_task(upload_part(number, fd))
            finally:
                os.close(fd)
            self.counts.put += 1
            done = await client.complete_multipart_upload(
                Bucket=self.bucket, Key=full_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException as error:
            self.counts.put += 1
            with contextlib.suppress(Exception):
                await client.abort_multipart_upload(Bucket=self.bucket, Key=full_key, UploadId=upload_id)
            if isinstance(error, BaseExceptionGroup):
                error = error.exceptions[0]
            if isinstance(error, Exception):
                if isinstance(error, OSError) and not isinstance(error, ConnectionError):
                    raise StorageError(f"cannot read local file {path}: {error.strerror}") from None
                raise self._error(error, "write", key) from None
            raise
        return _strip_etag(done.get("ETag"))

    async def delete(self, keys: list[str]) -> None:
        """DeleteObjects in batches of 1000; DeleteObject one by one where batches are unsupported."""
        if not keys:
            return
        client = await self._get_client()
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            self.counts.delete += 1
            try:
                response = await client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": self.prefix + key} for key in batch], "Quiet": True},
                )
            except ClientError as error:
                code, status = _error_code(error)
                if code in _NO_BATCH_DELETE_CODES or status == 501:
                    await self._delete_one_by_one(client, batch)
                    continue
                raise self._error(error, "delete", batch[0]) from None
            except Exception as error:
                raise self._error(error, "delete", batch[0]) from None
            failures = [item for item in response.get("Errors", ()) if item.get("Code") != "NoSuchKey"]
            if failures:
                first = failures[0]
                relative = str(first.get("Key", ""))[len(self.prefix) :]
                fake = ClientError(
                    {"Error": {"Code": first.get("Code"), "Message": first.get("Message")}}, ""
                )
                mapped = self._error(fake, "delete", relative)
                raise type(mapped)(
                    f"{mapped} ({len(failures)} of {len(batch)} keys not deleted)", retryable=mapped.retryable
                )

    async def _delete_one_by_one(self, client: Any, keys: list[str]) -> None:
        slots = asyncio.Semaphore(self._pool_size)

        async def delete_one(key: str) -> None:
            async with slots:
                self.counts.delete += 1
                try:
                    await client.delete_object(Bucket=self.bucket, Key=self.prefix + key)
                except ClientError as error:
                    if _error_code(error)[0] not in ("NoSuchKey", "404"):
                        raise self._error(error, "delete", key) from None
                except Exception as error:
                    raise self._error(error, "delete", key) from None

        try:
            async with asyncio.TaskGroup() as group:
                for key in keys:
                    group.create_task(delete_one(key))
        except BaseExceptionGroup as group_error:
            raise group_error.exceptions[0] from None
