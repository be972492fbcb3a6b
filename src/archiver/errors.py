"""One exception hierarchy; every error says whether retrying can help."""

from __future__ import annotations


class ArchiverError(Exception):
    """Base of every error the archiver raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class ConfigError(ArchiverError):
    """Bad arguments or settings: fix the invocation."""


class PolicyError(ConfigError):
    """The redaction policy cannot be loaded or used: fix the policy file or its key."""


class StorageError(ArchiverError):
    """A storage call failed; `retryable` tells transient faults from permanent ones."""


class NotFoundError(StorageError):
    """The bucket, prefix or object does not exist."""


class AccessDeniedError(StorageError):
    """The credentials lack a permission."""


class EndpointError(StorageError):
    """The storage endpoint cannot be reached."""

    retryable = True


class PreconditionFailedError(StorageError):
    """A conditional write lost: someone else changed the object first."""

    retryable = True


class LedgerFormatError(ArchiverError):
    """A file of the archive's own ledger that this version cannot read; no retry helps.

    Once the file is known its message names the unit and the key, so the one
    line a user sees says which file to fix or remove.
    """

    def __init__(self, message: str, *, unit: str | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.unit = unit
        self.key = key

    def naming(self, unit: str, key: str) -> LedgerFormatError:
        """The same error, its message naming the unit and the file."""
        if self.key is not None:
            return self
        return LedgerFormatError(f"unit {unit}: {self} in {key}", unit=unit, key=key)


class UnsafeKeyError(ArchiverError):
    """A key would resolve outside a local destination folder."""


class ApiError(ArchiverError):
    """Workato's API could not be used; the message says what to check, never the token."""


class ApiAuthError(ApiError):
    """The API refused the token (401/403): a wrong or expired token, or a role without the privilege."""


class ApiUnreachableError(ApiError):
    """The API's base URL cannot be reached (DNS, connection refused, timeouts) after retries."""

    retryable = True


class ApiResponseError(ApiError):
    """The API answered, but not as the activity audit log API does (not JSON, 404, another 4xx)."""


class WorkerStartError(ConfigError):
    """The engine's worker processes could not be started: the environment does not allow it.

    No unit fails for it: the run stops with this one line, which names the cause and
    the setting that keeps everything in one process (`ARCHIVER_PARSE_WORKERS=1`).
    """


class WorkerProcessDiedError(ArchiverError):
    """A worker process died (killed, out of memory) before it answered: its unit fails, a rerun redoes it."""

    retryable = True
