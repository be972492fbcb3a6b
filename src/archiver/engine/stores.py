"""Opening the source and destination stores from URLs with the settings' connection options."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from archiver.config import Settings
from archiver.storage.location import open_store
from archiver.storage.store import ObjectStore


@asynccontextmanager
async def open_stores(
    source_url: str, dest_url: str | None, settings: Settings
) -> AsyncIterator[tuple[ObjectStore, ObjectStore | None]]:
    """The source store and (if a URL is given) the destination store, closed on exit."""
    source = await open_url(source_url, settings, create=False)
    try:
        if dest_url is None:
            yield source, None
            return
        dest = await open_url(dest_url, settings, create=True)
        try:
            yield source, dest
        finally:
            await dest.close()
    finally:
        await source.close()


async def open_url(url: str, settings: Settings, *, create: bool) -> ObjectStore:
    return await open_store(
        url,
        concurrency=settings.concurrency,
        create=create,
        max_attempts=settings.s3_max_attempts,
        retry_mode=settings.s3_retry_mode,
    )
