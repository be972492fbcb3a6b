"""Whether an archive has Iceberg tables, decided without loading pyiceberg.

With tables, superseded data files belong to the publisher (a snapshot may still
name them); without, a unit's commit deletes them itself.
"""

from __future__ import annotations

from archiver.config import Settings
from archiver.storage.store import ObjectStore

EMBEDDED_CATALOG_KEY = "_archiver/iceberg.db"
"""A local DEST's own catalog: pyiceberg's SQL catalog on SQLite."""


def is_local(dest: ObjectStore) -> bool:
    return not dest.url.startswith("s3://")


async def tables_published(dest: ObjectStore, settings: Settings) -> bool:
    """A catalog is named, or a local DEST already holds its embedded catalog.

    A local DEST's catalog appears with its first `publish` (which `compact` runs at its
    end): an archive that was never published keeps deleting superseded files at once.
    """
    if settings.catalog is not None:
        return True
    return is_local(dest) and await dest.head(EMBEDDED_CATALOG_KEY) is not None
