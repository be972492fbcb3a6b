"""Turn a SOURCE/DEST argument into a store: `s3://bucket/prefix` or a local folder.

Each store is imported only when a URL asks for it: an S3-to-S3 run never loads
the local-folder store (which needs the POSIX-only `fcntl`), and a local run never
loads aioboto3.
"""

from __future__ import annotations

import logging
from pathlib import Path

from archiver.errors import ConfigError
from archiver.storage.store import ObjectStore

logger = logging.getLogger(__name__)


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
        from archiver.storage.s3 import S3Store, parse_s3_url

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
