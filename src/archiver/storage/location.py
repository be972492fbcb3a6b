"""Turn a SOURCE/DEST argument into a store: `s3://bucket/prefix` or a local folder.

Each store is imported only when a URL asks for it: an S3-to-S3 run never loads
the local-folder store (which needs the POSIX-only `fcntl`), and a local run never
loads aioboto3.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from archiver.errors import ConfigError
from archiver.storage.store import ObjectStore

logger = logging.getLogger(__name__)

# Modern bucket naming rules: 3-63 characters, lower-case letters, digits, dots and hyphens.
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


async def open_store(
    url: str,
    *,
    concurrency: int = 64,
    endpoint_url: str | None = None,
    credentials: dict[str, str] | None = None,
    create: bool = False,
    max_attempts: int = 8,
    retry_mode: str = "standard",
) -> ObjectStore:
    """The store for `url`. Endpoint and credentials default to the standard AWS configuration.

    `create` makes a missing local folder (for a destination); a missing source folder is an error.
    """
    logger.debug("opening %s (%s)", url, "created if missing" if create else "must exist")
    if url.startswith("s3://"):
        from archiver.storage.s3 import S3Store

        bucket, prefix = parse_s3_url(url)
        return await S3Store.open(
            bucket,
            prefix,
            max_connections=concurrency,
            endpoint_url=endpoint_url,
            credentials=credentials,
            max_attempts=max_attempts,
            retry_mode=retry_mode,
        )
    if "://" in url:
        raise ConfigError(f"unsupported location {url!r}: use s3://bucket/prefix or a local folder")
    root = Path(url)
    if create:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"cannot create {root}: {error.strerror or error}") from None
    from archiver.storage.localfs import LocalStore

    return LocalStore(root)


def is_within(inner_url: str, outer_url: str) -> bool:
    """Whether the location `inner_url` is `outer_url` or lies inside it.

    S3 locations compare by bucket and prefix (a prefix ends with '/', so `s3://b/logs2`
    is not inside `s3://b/logs`); local folders by their resolved paths (the working
    folder, `..` and symbolic links resolved, whether they exist yet or not). An S3
    location is never inside a folder, nor a folder inside one.
    """
    if inner_url.startswith("s3://") != outer_url.startswith("s3://"):
        return False
    if inner_url.startswith("s3://"):
        inner_bucket, inner_prefix = parse_s3_url(inner_url)
        outer_bucket, outer_prefix = parse_s3_url(outer_url)
        return inner_bucket == outer_bucket and inner_prefix.startswith(outer_prefix)
    try:
        inner, outer = Path(inner_url).resolve(), Path(outer_url).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte: opening it will say why
        return False
    return inner == outer or outer in inner.parents


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
