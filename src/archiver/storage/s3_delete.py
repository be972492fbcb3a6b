"""Deleting many S3 keys: DeleteObjects in batches, one by one where batches are unsupported."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from archiver.errors import ArchiverError
from archiver.storage.s3_errors import error_code
from archiver.storage.store import RequestCounts

logger = logging.getLogger(__name__)

# Answers of S3-compatible stores that do not implement DeleteObjects (or want Content-MD5).
_NO_BATCH_DELETE_CODES = frozenset({"NotImplemented", "MissingContentMD5", "MethodNotAllowed", "501"})


@dataclass(frozen=True, slots=True)
class DeleteTarget:
    """The bucket and prefix keys are deleted from, and how to name failures."""

    client: Any
    bucket: str
    prefix: str
    counts: RequestCounts
    fail: Callable[[BaseException, str], ArchiverError]  # (failure, relative key) -> the store's error


async def delete_keys(target: DeleteTarget, keys: list[str], *, batch_size: int, concurrency: int) -> None:
    """Delete `keys` (relative to the prefix); missing keys are not an error.

    One `delete` request per batch of `batch_size`; a store that refuses batches gets
    DeleteObject calls, at most `concurrency` at once.
    """
    for start in range(0, len(keys), batch_size):
        batch = keys[start : start + batch_size]
        target.counts.delete += 1
        try:
            response = await target.client.delete_objects(
                Bucket=target.bucket,
                Delete={"Objects": [{"Key": target.prefix + key} for key in batch], "Quiet": True},
            )
        except ClientError as error:
            code, status = error_code(error)
            if code in _NO_BATCH_DELETE_CODES or status == 501:
                logger.info(
                    "bucket %s refuses DeleteObjects (%s): deleting %d keys one by one",
                    target.bucket,
                    code or status,
                    len(batch),
                )
                await _delete_one_by_one(target, batch, concurrency)
                continue
            raise target.fail(error, batch[0]) from None
        except Exception as error:
            raise target.fail(error, batch[0]) from None
        failures = [item for item in response.get("Errors", ()) if item.get("Code") != "NoSuchKey"]
        if failures:
            first = failures[0]
            relative = str(first.get("Key", ""))[len(target.prefix) :]
            answer = ClientError({"Error": {"Code": first.get("Code"), "Message": first.get("Message")}}, "")
            mapped = target.fail(answer, relative)
            raise type(mapped)(
                f"{mapped} ({len(failures)} of {len(batch)} keys not deleted)", retryable=mapped.retryable
            )


async def _delete_one_by_one(target: DeleteTarget, keys: list[str], concurrency: int) -> None:
    slots = asyncio.Semaphore(concurrency)

    async def delete_one(key: str) -> None:
        async with slots:
            target.counts.delete += 1
            try:
                await target.client.delete_object(Bucket=target.bucket, Key=target.prefix + key)
            except ClientError as error:
                if error_code(error)[0] not in ("NoSuchKey", "404"):
                    raise target.fail(error, key) from None
            except Exception as error:
                raise target.fail(error, key) from None

    try:
        async with asyncio.TaskGroup() as group:
            for key in keys:
                group.create_task(delete_one(key))
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None
