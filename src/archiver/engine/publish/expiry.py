"""Expiring a table's old snapshots (metadata only), then the files only they referred to.

Snapshots older than `ARCHIVER_SNAPSHOT_RETENTION` go (never the current one). The
history is linear (one publisher commits to `main`), so a data file removed by snapshot
S was last held by S's parent: once S itself expires, no retained snapshot holds it.
Such files are found in the DELETED entries of the manifests S wrote, deleted, and
only then is the expiry committed (a crash in between leaves files that the next
expiry deletes again). Manifest lists of expired snapshots, and their manifests the
oldest retained snapshot no longer lists, go after the commit.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from pyiceberg.manifest import ManifestEntryStatus
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from archiver.engine.publish.tables import relative_key

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Expiry:
    """What expiring one table's snapshots frees."""

    snapshot_ids: list[int] = field(default_factory=list)
    data_keys: list[str] = field(default_factory=list)
    metadata_paths: list[str] = field(default_factory=list)


def plan_expiry(table: Table, base: str, now: dt.datetime, retention_seconds: int, live: set[str]) -> Expiry:
    """The snapshots past the retention and the files that go with them (never one in `live`)."""
    current = table.current_snapshot()
    cutoff_ms = int((now.timestamp() - retention_seconds) * 1000)
    protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
    snapshots = table.snapshots()
    expired = [
        s
        for s in snapshots
        if s.timestamp_ms < cutoff_ms and s.snapshot_id not in protected and s is not current
    ]
    if not expired:
        return Expiry()
    retained = [s for s in snapshots if s not in expired]
    oldest = min(retained, key=lambda s: s.sequence_number or 0)
    freed: set[str] = set()
    for snapshot in [*expired, oldest]:
        freed.update(_removed_by(table, snapshot))
    kept_manifests = {m.manifest_path for m in oldest.manifests(table.io)}
    manifests = {m.manifest_path for s in expired for m in s.manifests(table.io)} - kept_manifests
    data_keys = sorted(key for key in (relative_key(path, base) for path in freed) if key not in live)
    return Expiry(
        snapshot_ids=[s.snapshot_id for s in expired],
        data_keys=[key for key in data_keys if "://" not in key and not key.startswith("/")],
        metadata_paths=sorted(manifests | {s.manifest_list for s in expired}),
    )


def commit_expiry(table: Table, expiry: Expiry) -> None:
    """Remove the snapshots from the table's metadata (one commit)."""
    table.maintenance.expire_snapshots().by_ids(expiry.snapshot_ids).commit()


def delete_metadata(table: Table, paths: list[str]) -> None:
    for path in paths:
        try:
            table.io.delete(path)
        except (FileNotFoundError, OSError) as error:
            log.debug("could not delete %s: %s", path, type(error).__name__)


def _removed_by(table: Table, snapshot: Snapshot) -> set[str]:
    """Data files the snapshot removed: DELETED entries in the manifests it wrote."""
    removed: set[str] = set()
    for manifest in snapshot.manifests(table.io):
        if manifest.added_snapshot_id != snapshot.snapshot_id or manifest.deleted_files_count == 0:
            continue
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
            if entry.status == ManifestEntryStatus.DELETED and entry.snapshot_id == snapshot.snapshot_id:
                removed.add(entry.data_file.file_path)
    return removed
