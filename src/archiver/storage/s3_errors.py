"""How S3 answers and network failures become the archiver's errors.

botocore has already retried what it can when an error gets here; what is left is
mapped to one `errors.StorageError` subclass with a one-line message that names
the bucket and key, says whether a retry can help, and never carries credentials
or object bodies.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    CredentialRetrievalError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from archiver.errors import (
    AccessDeniedError,
    ArchiverError,
    EndpointError,
    NotFoundError,
    PreconditionFailedError,
    StorageError,
)

NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
ACCESS_CODES = frozenset(
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
PRECONDITION_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
TRANSIENT_CODES = frozenset(
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
BODY_READ_ERRORS: tuple[type[BaseException], ...] = (
    ResponseStreamingError,
    IncompleteReadError,
    ReadTimeoutError,
    aiohttp.ClientError,
    asyncio.TimeoutError,
    ConnectionError,
)
"""Errors while streaming a GetObject body: they arrive after botocore's retries are over."""

_CONNECTION_ERRORS = (
    BotoConnectionError,
    ConnectionClosedError,
    ReadTimeoutError,
    asyncio.TimeoutError,
    aiohttp.ClientConnectionError,
)
_CREDENTIAL_ERRORS = (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)


def map_error(error: BaseException, *, action: str, where: str, bucket: str, endpoint: str) -> ArchiverError:
    """The archiver's error for a botocore/aiohttp failure to `action` the object at `where`."""
    if isinstance(error, ArchiverError):
        return error
    if isinstance(error, ClientError):
        return _client_error(error, action=action, where=where, bucket=bucket)
    if isinstance(error, _CREDENTIAL_ERRORS):
        return AccessDeniedError(
            f"cannot {action} {where}: no usable AWS credentials ({type(error).__name__})"
        )
    if isinstance(error, _CONNECTION_ERRORS):
        return EndpointError(f"cannot reach the storage endpoint {endpoint}: {connection_reason(error)}")
    if isinstance(error, BODY_READ_ERRORS):
        return StorageError(f"cannot {action} {where}: {connection_reason(error)}", retryable=True)
    if isinstance(error, BotoCoreError):
        return StorageError(f"cannot {action} {where}: {one_line(str(error))}", retryable=False)
    return StorageError(f"cannot {action} {where}: {type(error).__name__}: {one_line(str(error))}")


def _client_error(error: ClientError, *, action: str, where: str, bucket: str) -> ArchiverError:
    code, status = error_code(error)
    message = one_line(str((error.response.get("Error") or {}).get("Message") or ""))
    detail = f"{code}: {message}" if message and message != code else code or str(status)
    if code == "NoSuchBucket":
        return NotFoundError(f"bucket {bucket} does not exist")
    if code in PRECONDITION_CODES or status == 412:
        return PreconditionFailedError(f"cannot {action} {where}: another writer changed it first")
    if code in NOT_FOUND_CODES or status == 404:
        return NotFoundError(f"{where} does not exist")
    if code in ACCESS_CODES or status == 403:
        return AccessDeniedError(f"access denied: cannot {action} {where} ({detail})")
    retryable = code in TRANSIENT_CODES or status >= 500 or status == 429
    return StorageError(f"cannot {action} {where}: {detail}", retryable=retryable)


def error_code(error: ClientError) -> tuple[str, int]:
    """The S3 error code and HTTP status of a ClientError."""
    code = str((error.response.get("Error") or {}).get("Code") or "")
    status = int((error.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    return code, status


def one_line(text: str, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def public_endpoint(url: str) -> str:
    """The endpoint without any user:password part, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid endpoint>"
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def connection_reason(error: BaseException) -> str:
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
            return f"TLS error ({one_line(str(current), 80)})"
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
