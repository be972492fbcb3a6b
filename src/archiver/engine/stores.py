"""Opening the source and destination stores from URLs with the settings' connection options."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from archiver.config import Settings
from archiver.errors import ConfigError
from archiver.storage.location import is_within, open_store
from archiver.storage.store import ObjectStore


def check_dest_apart(source_url: str, dest_url: str) -> None:
    """Refuse a DEST that is SOURCE or lies inside it (a ConfigError, before anything is opened).

    The archive writes files of its own (ledger heads, intents, plans, all JSON): inside
    SOURCE they would be listed as source objects, quarantined on every run, and no
    rerun would ever be a no-op.
    """
    if is_within(dest_url, source_url):
        where = "is" if is_within(source_url, dest_url) else "lies inside"
        raise ConfigError(
            f"DEST {dest_url} {where} SOURCE {source_url}: "
            "the archive's own files would be read as source objects; choose a DEST outside SOURCE"
        )


@asynccontextmanager
async def open_stores(
    source_url: str, dest_url: str | None, settings: Settings
) -> AsyncIterator[tuple[ObjectStore, ObjectStore | None]]:
    """The source store and (if a URL is given) the destination store, closed on exit.

    A DEST that is SOURCE or lies inside it is refused before either is opened.
    """
    if dest_url is not None:
        check_dest_apart(source_url, dest_url)
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
