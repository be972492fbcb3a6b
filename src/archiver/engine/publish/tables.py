"""One table's side of a publish: its current files, and one overwrite commit to the ledger's.

A publish adds the files the ledger names and the table lacks, and removes those it holds
that the ledger no longer names, in one overwrite snapshot (never a delete plus an append,
so no reader sees a state in between). Manifests are merged as they accumulate, the way
pyiceberg's merge-append does, so a table published every few minutes keeps a handful.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyiceberg.manifest import DataFile, ManifestContent, ManifestFile
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation
from pyiceberg.table.update.snapshot import _ManifestMergeManager, _OverwriteFiles
from pyiceberg.utils.properties import property_as_int

from archiver.engine.ledger import FileRef
from archiver.engine.publish.catalog import TABLE_PROPERTIES
from archiver.engine.publish.datafiles import data_files

MANIFEST_TARGET_BYTES = 8 * 1024 * 1024
MANIFEST_MIN_MERGE = 16


@dataclass(slots=True)
class TableChange:
    """What one commit did to a table."""

    added: int = 0
    removed: int = 0
    rows_added: int = 0
    rows_removed: int = 0
    snapshot_id: int | None = None
    committed: bool = False
    files: set[str] = field(default_factory=set)
    """The table's file keys (relative to the archive) after the publish."""

    def as_dict(self) -> dict[str, object]:
        return {
            "files_added": self.added,
            "files_removed": self.removed,
            "rows_added": self.rows_added,
            "rows_removed": self.rows_removed,
            "committed": self.committed,
            "snapshot_id": self.snapshot_id,
        }


def current_files(table: Table, base: str) -> dict[str, DataFile]:
    """The data files of the table's current snapshot, by key relative to the archive's root."""
    snapshot = table.current_snapshot()
    if snapshot is None:
        return {}
    files: dict[str, DataFile] = {}
    for manifest in snapshot.manifests(table.io):
        if manifest.content != ManifestContent.DATA:
            continue
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            files[relative_key(entry.data_file.file_path, base)] = entry.data_file
    return files


def relative_key(path: str, base: str) -> str:
    """An archive key from an Iceberg path; a path outside the archive is kept whole."""
    prefix = base + "/"
    if path.startswith(prefix):
        return path[len(prefix) :]
    if path.startswith("file://") and path[len("file://") :].startswith(prefix):
        return path[len("file://") + len(prefix) :]
    return path


def ensure_properties(table: Table) -> Table:
    """Set the archiver's table properties on a table created elsewhere (a template, say), once."""
    missing = {key: value for key, value in TABLE_PROPERTIES.items() if table.properties.get(key) != value}
    missing.pop("format-version", None)
    if not missing:
        return table
    with table.transaction() as transaction:
        transaction.set_properties(missing)
    return table


def commit_change(
    table: Table,
    base: str,
    current: dict[str, DataFile],
    live: dict[str, FileRef],
    properties: dict[str, str],
) -> TableChange:
    """Bring the table to `live` in one overwrite snapshot; nothing when they already agree.

    A rival's commit in between raises pyiceberg's CommitFailedException: the caller
    recomputes from a fresh table and ledger.
    """
    added = [live[key] for key in sorted(set(live) - set(current))]
    removed = [current[key] for key in sorted(set(current) - set(live))]
    change = TableChange(files=set(live) if (added or removed) else set(current))
    if not added and not removed:
        return change
    transaction = table.transaction()
    producer = _MergingOverwrite(
        operation=Operation.OVERWRITE if table.current_snapshot() is not None else Operation.APPEND,
        transaction=transaction,
        io=table.io,
        snapshot_properties=properties,
    )
    for data_file in removed:
        producer.delete_data_file(data_file)
    for data_file in data_files(table, base, added):
        producer.append_data_file(data_file)
    producer.commit()
    committed = transaction.commit_transaction()
    snapshot = committed.current_snapshot()
    change.added, change.removed, change.committed = len(added), len(removed), True
    change.rows_added = sum(ref.rows for ref in added)
    change.rows_removed = sum(data_file.record_count for data_file in removed)
    change.snapshot_id = snapshot.snapshot_id if snapshot else None
    return change


class _MergingOverwrite(_OverwriteFiles):
    """pyiceberg's overwrite producer, with merge-append's manifest merging (it has none of its own)."""

    def _process_manifests(self, manifests: list[ManifestFile]) -> list[ManifestFile]:
        properties = self._transaction.table_metadata.properties
        manager = _ManifestMergeManager(
            target_size_bytes=property_as_int(
                properties, "commit.manifest.target-size-bytes", MANIFEST_TARGET_BYTES
            )
            or MANIFEST_TARGET_BYTES,
            min_count_to_merge=property_as_int(
                properties, "commit.manifest.min-count-to-merge", MANIFEST_MIN_MERGE
            )
            or MANIFEST_MIN_MERGE,
            merge_enabled=True,
            snapshot_producer=self,
        )
        data = [manifest for manifest in manifests if manifest.content == ManifestContent.DATA]
        others = [manifest for manifest in manifests if manifest.content != ManifestContent.DATA]
        return manager.merge_manifests(data) + others
