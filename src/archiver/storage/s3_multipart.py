"""Multipart upload of a local file to S3, part by part, with a bound on the parts in memory.

Either the whole upload completes (and the object appears atomically) or it is
aborted, so no half-written object and no orphaned parts are left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archiver.errors import ArchiverError, StorageError
from archiver.storage.store import RequestCounts

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
MIN_PART_BYTES = 5 * MIB
"""S3 rejects multipart parts below 5 MiB (except the last one)."""
MAX_PARTS = 10_000


@dataclass(frozen=True, slots=True)
class MultipartTarget:
    """Where a multipart upload goes, and how to name its failures."""

    client: Any
    bucket: str
    key: str  # the full key, store prefix included
    counts: RequestCounts
    fail: Callable[[BaseException], ArchiverError]  # maps a failure to the store's error


async def put_multipart(
    target: MultipartTarget, path: Path, size: int, *, part_size: int, concurrency: int
) -> str:
    """Upload `size` bytes of `path` in parts of at least `part_size`; return the ETag.

    At most `concurrency` parts are read and in flight at once. Every request counts
    as a `put`, the abort of a failed upload included.
    """
    client, counts = target.client, target.counts
    part_size = max(part_size, -(-size // MAX_PARTS))
    part_count = max(1, -(-size // part_size))
    # Mirror s3transfer: name the checksum explicitly so that create, parts and
    # complete agree whatever the configured request_checksum_calculation is.
    checksum = client.meta.config.request_checksum_calculation == "when_supported"
    extra: dict[str, Any] = {"ChecksumAlgorithm": "CRC32"} if checksum else {}
    counts.put += 1
    try:
        created = await client.create_multipart_upload(Bucket=target.bucket, Key=target.key, **extra)
    except Exception as error:
        raise target.fail(error) from None
    upload_id = created["UploadId"]
    logger.debug(
        "multipart upload of %s to %s: %d parts of %d bytes", path, target.key, part_count, part_size
    )
    parts: list[dict[str, Any]] = [{} for _ in range(part_count)]
    slots = asyncio.Semaphore(concurrency)

    async def upload_part(number: int, fd: int) -> None:
        async with slots:  # bounds the parts held in memory, not only the requests
            offset = (number - 1) * part_size
            data = await asyncio.to_thread(os.pread, fd, min(part_size, size - offset), offset)
            counts.put += 1
            response = await client.upload_part(
                Bucket=target.bucket,
                Key=target.key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                **extra,
            )
            counts.bytes_written += len(data)
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
        counts.put += 1
        done = await client.complete_multipart_upload(
            Bucket=target.bucket, Key=target.key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException as error:
        logger.debug("multipart upload to %s failed (%s); aborting it", target.key, type(error).__name__)
        counts.put += 1
        with contextlib.suppress(Exception):
            await client.abort_multipart_upload(Bucket=target.bucket, Key=target.key, UploadId=upload_id)
        if isinstance(error, BaseExceptionGroup):
            error = error.exceptions[0]
        if isinstance(error, Exception):
            if isinstance(error, OSError) and not isinstance(error, ConnectionError):
                raise StorageError(f"cannot read local file {path}: {error.strerror}") from None
            raise target.fail(error) from None
        raise
    return str(done.get("ETag") or "").strip('"')
