"""`archiver redact`: rewrite a window's data files under the current policy, from the archive itself.

A file whose recorded policies are not exactly the current one is read back,
every row put under the current policy (`formats.redaction.redact_table`: applying
a policy twice changes nothing, so rows already under it stay as they are), and
written as new files. Each unit's (and each activity day's) rewrite is one commit
of its ledger, by the same protocol as any other (intent, uploads, one conditional
head write, the old files retired and deleted after the grace period), so a
reader never sees a row twice or not at all, a crash leaves the unit as it was (the
next run sweeps what the crashed attempt uploaded), and a second run finds nothing
left to do. No source object is read.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from archiver.config import Settings
from archiver.engine import ledger
from archiver.engine.activity import ACTIVITY_ROOT, remapped_entries
from archiver.engine.activity_copies import ActivityEntry, decode_entries, encode_entries, live_copies
from archiver.engine.commit import Committer, Generation
from archiver.engine.compaction import Rewriter
from archiver.engine.index import merge_segments, read_head, read_index
from archiver.engine.ledger import FileRef, Head, Retired, SegmentRef, split_retired
from archiver.engine.policies import current_policy
from archiver.engine.publish.mode import tables_published
from archiver.engine.staging import segment_entries
from archiver.engine.units import root_date
from archiver.engine.writer import BufferBudget, Compression, UnitWriter, WrittenFile
from archiver.errors import ArchiverError, NotFoundError
from archiver.formats.policy import Policy
from archiver.formats.redaction import redact_table
from archiver.storage.store import ObjectStore

MAX_ATTEMPTS = 8

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RedactReport:
    """What `redact` did: the policy it applied, and the units and files it rewrote."""

    policy: str = ""
    units_checked: int = 0
    units_rewritten: int = 0
    files_rewritten: int = 0
    files_written: int = 0
    rows: int = 0
    policies_before: dict[str, int] = field(default_factory=dict)
    """The rewritten files by the policies their rows were under."""
    commit_conflicts: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    window: dict[str, str | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "units_checked": self.units_checked,
            "units_rewritten": self.units_rewritten,
            "files_rewritten": self.files_rewritten,
            "files_written": self.files_written,
            "rows": self.rows,
            "policies_before": dict(sorted(self.policies_before.items())),
            "commit_conflicts": self.commit_conflicts,
            "failures": list(self.failures),
            "window": dict(self.window),
        }


async def redact_window(dest: ObjectStore, settings: Settings, now_us: int) -> RedactReport:
    """Rewrite every data file of the window not written under exactly the current policy."""
    policy = current_policy(settings)
    report = RedactReport(policy=policy.digest)
    report.window = {
        "since": settings.since.isoformat() if settings.since else None,
        "until": settings.until.isoformat() if settings.until else None,
    }
    workdir = Path(tempfile.mkdtemp(prefix="archiver-redact-"))
    try:
        rewriter = _Redactor(dest, settings, policy, workdir, now_us, report)
        await rewriter.prepare()
        for unit in await units_in_window(dest, settings.since, settings.until):
            report.units_checked += 1
            try:
                await rewriter.rewrite(unit)
            except (ArchiverError, OSError, ValueError) as error:  # one unit's failure is the report's
                message = str(error).splitlines()[0] if str(error) else type(error).__name__
                report.failures.append({"unit": unit, "error": message, "kind": type(error).__name__})
        report.commit_conflicts = rewriter.conflicts
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


async def units_in_window(dest: ObjectStore, since: dt.date | None, until: dt.date | None) -> list[str]:
    """Every unit (and activity day) with a head whose day lies in the window (undated ones always)."""
    units: list[str] = []
    async for page in dest.list_pages(ledger.LEDGER_ROOT):
        for info in page.objects:
            if not info.key.endswith("/" + ledger.HEAD_NAME):
                continue
            unit = info.key[len(ledger.LEDGER_ROOT) :].split("/", 1)[0]
            day = root_date(unit)
            if day is None or ((since is None or day >= since) and (until is None or day <= until)):
                units.append(unit)
    return sorted(units)


def stale_files(head: Head, digest: str) -> list[FileRef]:
    """The unit's data files not written under exactly the policy `digest` (quarantine holds no payload)."""
    return [ref for ref in head.files if ref.table != "quarantine" and ref.policies != (digest,)]


class UnitRewriter:
    """Rewrites one unit's chosen files in one commit, retrying when a rival commits first.

    `select` chooses the files and may leave local copies of them in `local`;
    `transform` is what the copy does to their rows; `segment` re-records the index;
    `committed` counts what a won commit changed.
    """

    def __init__(
        self, dest: ObjectStore, settings: Settings, policy: Policy, workdir: Path, now_us: int
    ) -> None:
        self.dest = dest
        self.settings = settings
        self.policy = policy
        self.workdir = workdir
        self.now_us = now_us
        self.committer = Committer(dest)
        self.buffers = BufferBudget(settings.max_buffered_bytes)
        self.local: dict[str, Path] = {}
        self.conflicts = 0
        self.index_changes = False
        """Set by `select`: the unit's index must be rewritten even if no file is."""
        self.published_tables = False
        """The archive has Iceberg tables: superseded files are the publisher's to delete (see `prepare`)."""

    async def prepare(self) -> None:
        """Learn who deletes superseded files: this rewrite (after the grace period) or the publisher."""
        self.published_tables = await tables_published(self.dest, self.settings)

    async def rewrite(self, unit: str) -> None:
        try:
            await self._rewrite(unit)
        finally:
            self._drop_local()

    async def _rewrite(self, unit: str) -> None:
        for attempt in range(MAX_ATTEMPTS):
            self._drop_local()
            head, etag = await read_head(self.dest, unit)
            if head is None:
                return
            await self._sweep(head)
            try:
                chosen = await self.select(head)
                if not chosen and not self.index_changes:
                    return
                generation = await self._stage(head, etag, chosen)
            except NotFoundError:  # a rival replaced a file or segment under us: start again
                await self._backoff(attempt)
                continue
            await self.committer.upload(generation)
            won, current, _ = await self.committer.publish(generation)
            if won:
                await self.committer.finish(generation)
                self.committed(chosen, generation.uploads)
                return
            await self.committer.discard(generation, current)
            await self._backoff(attempt)
        raise ArchiverError(f"unit {unit}: gave up after {MAX_ATTEMPTS} conflicts", retryable=True)

    def _drop_local(self) -> None:
        for path in self.local.values():
            path.unlink(missing_ok=True)
        self.local.clear()

    async def select(self, head: Head) -> list[FileRef]:
        """The files to rewrite (none: the unit is left as it is)."""
        raise NotImplementedError

    def transform(
        self, table: str, data: pa.Table, policies: tuple[str, ...]
    ) -> tuple[pa.Table, tuple[str, ...]]:
        """The rows of one batch of a chosen file, and the policies they are now under."""
        raise NotImplementedError

    def committed(self, chosen: list[FileRef], uploads: list[WrittenFile]) -> None:
        """Count what a won commit changed."""

    async def _backoff(self, attempt: int) -> None:
        self.conflicts += 1
        await asyncio.sleep(random.uniform(0, min(5.0, 0.05 * 2**attempt)))

    async def _sweep(self, head: Head) -> None:
        """What crashed attempts on this unit left (their intents name it)."""
        keys: list[str] = []
        async for page in self.dest.list_pages(ledger.unit_prefix(head.unit) + ledger.INTENT_PREFIX):
            keys.extend(info.key for info in page.objects)
        if keys:
            await self.committer.remove_leftovers(head, keys)

    async def _stage(self, head: Head, etag: str | None, chosen: list[FileRef]) -> Generation:
        token = secrets.token_hex(4)
        number = head.generation + 1
        writer = UnitWriter(
            owner=ledger.file_owner(head.unit),
            generation=number,
            token=token + "r",
            workdir=self.workdir,
            target_bytes=self.settings.target_file_bytes,
            row_group_rows=self.settings.row_group_rows,
            compression=Compression.of(self.settings),
            budget=self.buffers,
            policy=self.policy.digest,
        )
        rewriter = Rewriter(
            self.dest,
            writer,
            batch_rows=self.settings.row_group_rows,
            workdir=self.workdir,
            transform=self.transform,
        )
        mapping: dict[str, list[str]] = {}
        try:
            for ref in chosen:
                path = self.local.get(ref.key)
                local = None if path is None else WrittenFile(path, ref.key, ref.table, ref.rows, ref.bytes)
                mapping[ref.key] = await rewriter.copy(ref.key, local, set())
            uploads = writer.close()
        except BaseException:
            writer.abandon()
            raise
        segment_key = ledger.segment_key(head.unit, number, token)
        body, entries, replaced = await self.segment(head, mapping)
        kept = [ref for ref in head.files if ref.key not in mapping]
        retired, expired = split_retired(
            head.retired + [Retired(key, self.now_us) for key in mapping],
            self.now_us,
            self.settings.retire_grace_seconds * 1_000_000,
            published_tables=self.published_tables,
        )
        new_head = Head(
            unit=head.unit,
            generation=number,
            lo=head.lo,
            hi=head.hi,
            children=list(head.children),
            segments=[s for s in head.segments if s.key not in replaced] + [SegmentRef(segment_key, entries)],
            files=sorted(
                kept + [FileRef(f.key, f.table, f.rows, f.bytes, f.policies) for f in uploads],
                key=lambda ref: ref.key,
            ),
            retired=retired,
            lineage=[*head.lineage, token][-ledger.LINEAGE :],
        )
        return Generation(
            head=new_head,
            base_etag=etag,
            token=token,
            uploads=uploads,
            segment_key=segment_key,
            segment_body=body,
            dropped_segments=replaced,
            expired=[item.key for item in expired],
        )

    async def segment(self, head: Head, mapping: dict[str, list[str]]) -> tuple[bytes, int, list[str]]:
        """A segment re-recording the entries whose rows moved to the new files (and the segments it
        replaces: none, it is appended)."""
        if head.unit.startswith(ACTIVITY_ROOT):
            merged = await self.activity_entries(head)
            activity = remapped_entries(merged, {}, mapping)
            return encode_entries(activity), len(activity), []
        entries = segment_entries(await read_index(self.dest, head), {}, mapping)
        return ledger.encode_index(entries), len(entries), []

    async def activity_entries(self, head: Head) -> dict[str, list[ActivityEntry]]:
        """An activity day's recorded copies (kept or spare) by identity, its segments merged."""
        segments = [decode_entries((await self.dest.get(s.key)).body) for s in head.segments]
        return live_copies(merge_segments(segments))


class _Redactor(UnitRewriter):
    """`redact`: every file not under exactly the current policy, its rows put under it."""

    def __init__(
        self,
        dest: ObjectStore,
        settings: Settings,
        policy: Policy,
        workdir: Path,
        now_us: int,
        report: RedactReport,
    ) -> None:
        super().__init__(dest, settings, policy, workdir, now_us)
        self.report = report

    async def select(self, head: Head) -> list[FileRef]:
        return stale_files(head, self.policy.digest)

    def transform(self, table: str, data: pa.Table, _: tuple[str, ...]) -> tuple[pa.Table, tuple[str, ...]]:
        return redact_table(self.policy, table, data), (self.policy.digest,)

    def committed(self, chosen: list[FileRef], uploads: list[WrittenFile]) -> None:
        report = self.report
        report.units_rewritten += 1
        report.files_rewritten += len(chosen)
        report.files_written += len(uploads)
        report.rows += sum(ref.rows for ref in chosen)
        for ref in chosen:
            for digest in ref.policies or ("none",):
                report.policies_before[digest] = report.policies_before.get(digest, 0) + 1
