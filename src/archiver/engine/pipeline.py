"""list -> diff -> fetch -> parse -> resolve versions -> write -> commit, one unit at a time.

Exactly once, with the destination as the only database: every unit (a source
day, or the loose objects outside the layout) has a ledger (see `ledger.py`). A
run compares the unit's listing with the ledger's source index and reads only
objects it does not hold under the same ETag; it writes new data files, then
publishes them by replacing the unit's head with a conditional write. Losing
that race means another worker committed first: the run discards its files and
starts the unit again from the new head. A crash before the commit leaves an
intent record naming the files, which the next run removes; a crash after it
leaves a list of obsolete files in the head, which the next run deletes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from archiver.config import Settings
from archiver.engine import ledger
from archiver.engine.fetcher import ByteBudget, FetchResult, fetch_in_order
from archiver.engine.ledger import FileRef, Head, IndexEntry
from archiver.engine.units import day_unit, unit_day
from archiver.engine.versions import Rank, rank_of
from archiver.engine.walker import SourcePlan, Window, list_units, plan_source
from archiver.engine.writer import BufferBudget, UnitWriter, WrittenFile, read_day_partition
from archiver.errors import ArchiverError, NotFoundError, PreconditionFailedError
from archiver.formats.layout import KeyInfo, is_json_key, job_folder, parse_key
from archiver.formats.normalize import read_object
from archiver.formats.records import REASON_TOO_LARGE, JobState, ParsedObject, Rejection, Row
from archiver.storage.store import ObjectInfo, ObjectStore

MAX_COMMIT_ATTEMPTS = 8
UPLOAD_CONCURRENCY = 8
INTENT_PREFIX = "intent-"
ROW_TABLES = ("jobs", "job_lines", "activity")

ProgressHook = Callable[[int], None]


@dataclass(slots=True)
class RunReport:
    """What a run did; `as_dict` is the `--json` run report of the contract (plus extensions)."""

    objects_listed: int = 0
    objects_archived: int = 0
    objects_skipped: int = 0
    objects_quarantined: int = 0
    objects_failed: int = 0
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROW_TABLES, 0))
    files_written: int = 0
    files_deleted: int = 0
    units: int = 0
    units_committed: int = 0
    commit_conflicts: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)
    window: dict[str, str | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "objects_listed": self.objects_listed,
            "objects_archived": self.objects_archived,
            "objects_skipped": self.objects_skipped,
            "objects_quarantined": self.objects_quarantined,
            "rows": dict(self.rows),
            "files_written": self.files_written,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "requests": dict(self.requests),
            "seconds": round(self.seconds, 3),
            "objects_failed": self.objects_failed,
            "files_deleted": self.files_deleted,
            "units": self.units,
            "units_committed": self.units_committed,
            "commit_conflicts": self.commit_conflicts,
            "window": dict(self.window),
            "failures": list(self.failures),
        }


@dataclass(slots=True)
class _Generation:
    """Everything one attempt at a unit produced, not yet published."""

    head: Head
    intent_key: str
    uploads: list[WrittenFile]
    index_body: bytes
    archived: int = 0
    quarantined: int = 0
    skipped: int = 0
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROW_TABLES, 0))
    failures: list[dict[str, str]] = field(default_factory=list)
    complete: bool = True


@dataclass(slots=True)
class _UnitLedger:
    """The ledger objects of one unit seen in the run's LIST of `_archiver/units/`."""

    keys: set[str] = field(default_factory=set)

    def has(self, key: str) -> bool:
        return key in self.keys

    def intents(self) -> list[str]:
        return sorted(key for key in self.keys if key.rsplit("/", 1)[-1].startswith(INTENT_PREFIX))

    def seen_markers(self) -> list[str]:
        return sorted(key for key in self.keys if key.rsplit("/", 1)[-1].startswith(ledger.SEEN_PREFIX))


async def load_head(dest: ObjectStore, unit: str) -> tuple[Head, str | None]:
    """The unit's committed head and its ETag; an empty head and None if it has none yet."""
    try:
        fetched = await dest.get(ledger.head_key(unit))
    except NotFoundError:
        return Head(unit=unit), None
    return ledger.decode_head(fetched.body), fetched.etag


async def load_index(dest: ObjectStore, head: Head) -> dict[str, list[IndexEntry]]:
    """The head's source index, by source key."""
    if head.index_key is None:
        return {}
    by_key: dict[str, list[IndexEntry]] = defaultdict(list)
    for entry in ledger.decode_index((await dest.get(head.index_key)).body):
        by_key[entry.key].append(entry)
    return by_key


class Archiver:
    """One `compact` run from a source store into a destination store."""

    def __init__(
        self,
        source: ObjectStore,
        dest: ObjectStore,
        settings: Settings,
        *,
        progress: ProgressHook | None = None,
        sequential_reads: bool = False,
    ) -> None:
        self.source = source
        self.dest = dest
        self.settings = settings
        self.report = RunReport()
        self.progress = progress
        self.sequential_reads = sequential_reads
        self._ledgers: dict[str, _UnitLedger] = defaultdict(_UnitLedger)
        self._workdir = Path(tempfile.mkdtemp(prefix="archiver-"))
        self._budget = ByteBudget(settings.max_bytes_in_flight)
        self._buffers = BufferBudget(settings.max_buffered_bytes)
        self._watermark_keys: list[str] = []
        self._deleted: set[str] = set()

    async def run(self, *, unit_filter: Callable[[str], bool] | None = None) -> RunReport:
        started = time.perf_counter()
        try:
            window = await self.resolve_window()
            self.report.window = {
                "since": window.since.isoformat() if window.since else None,
                "until": window.until.isoformat() if window.until else None,
            }
            plan = await plan_source(self.source, window)
            await self._read_ledgers(window)
            chosen = [unit for unit in plan.units() if unit_filter is None or unit_filter(unit)]
            self.report.units = len(chosen)
            # Local reads do not wait on a network, so overlapping units would only hold
            # more days in memory at once; over S3 they hide each unit's round trips.
            workers = 1 if self.sequential_reads else self.settings.unit_concurrency
            await self._archive_units(plan, chosen, workers)
            complete = unit_filter is None and self.settings.since is None and self.settings.until is None
            if complete and not self.report.failures:
                await self._advance_watermark(plan)
        finally:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._finish_counts(started)
        return self.report

    async def _archive_units(self, plan: SourcePlan, units: list[str], workers: int) -> None:
        """List units a batch at a time (one LIST can span a recipe's days) while workers archive them."""
        queue: asyncio.Queue[tuple[str, list[ObjectInfo]] | None] = asyncio.Queue(maxsize=workers)

        async def produce() -> None:
            for start in range(0, len(units), workers):
                batch = units[start : start + workers]
                listings = await list_units(self.source, plan, batch)
                for unit in batch:
                    await queue.put((unit, listings.pop(unit)))
            for _ in range(workers):
                await queue.put(None)

        async def work() -> None:
            while (item := await queue.get()) is not None:
                await self._archive_unit(*item)

        # A TaskGroup cancels the other units when one fails, before the stores close.
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(produce())
                for _ in range(workers):
                    group.create_task(work())
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None

    def _finish_counts(self, started: float) -> None:
        self.report.seconds = time.perf_counter() - started
        stores = [self.source.counts] if self.source is self.dest else [self.source.counts, self.dest.counts]
        requests = [counts.as_report() for counts in stores]
        self.report.requests = {kind: sum(each[kind] for each in requests) for kind in requests[0]}
        self.report.bytes_read = sum(counts.bytes_read for counts in stores)
        self.report.bytes_written = sum(counts.bytes_written for counts in stores)

    # -- window and ledgers -------------------------------------------------

    async def _watermarks(self) -> list[str]:
        keys: list[str] = []
        async for page in self.dest.list_pages(ledger.WATERMARK_ROOT):
            keys.extend(info.key for info in page.objects)
        return keys

    async def resolve_window(self) -> Window:
        """The explicit window; else a lookback from the newest day a complete run covered; else all."""
        if self.settings.since is not None:
            return Window(self.settings.since, self.settings.until)
        self._watermark_keys = await self._watermarks()
        days = [unit_day(key.rsplit("/", 1)[-1]) for key in self._watermark_keys]
        known = [day for day in days if day is not None]
        if not known:
            return Window(None, self.settings.until)
        since = max(known) - dt.timedelta(days=self.settings.lookback_days)
        return Window(since, self.settings.until)

    async def _advance_watermark(self, plan: SourcePlan) -> None:
        """After a complete run over everything due: remember how far the source went."""
        days = [day for day in map(unit_day, plan.units()) if day is not None]
        if not days:
            return
        marker = ledger.watermark_key(max(days))
        if marker not in self._watermark_keys:
            await self.dest.put(marker, b"")
        stale = [key for key in self._watermark_keys if key != marker]
        if stale:
            await self.dest.delete(stale)

    async def _read_ledgers(self, window: Window) -> None:
        start_after = None
        if window.since is not None:
            start_after = ledger.unit_prefix(day_unit(window.since - dt.timedelta(days=1))) + "~"
        async for page in self.dest.list_pages(ledger.LEDGER_ROOT, start_after=start_after):
            for info in page.objects:
                unit = info.key[len(ledger.LEDGER_ROOT) :].split("/", 1)[0]
                self._ledgers[unit].keys.add(info.key)

    # -- one unit -----------------------------------------------------------

    async def _archive_unit(self, unit: str, listing: list[ObjectInfo]) -> None:
        candidates = [info for info in listing if is_json_key(info.key)]
        self.report.objects_listed += len(listing)
        self.report.objects_skipped += len(listing) - len(candidates)
        if not candidates:
            return
        fingerprint = ledger.listing_fingerprint((info.key, info.etag) for info in candidates)
        unit_ledger = self._ledgers[unit]
        if unit_ledger.has(ledger.seen_key(unit, fingerprint)):
            self.report.objects_skipped += len(candidates)
            return
        for attempt in range(MAX_COMMIT_ATTEMPTS):
            if attempt == 0 and not unit_ledger.has(ledger.head_key(unit)):
                head, head_etag = Head(unit=unit), None  # the run's LIST saw none; a rival's shows at commit
            else:
                head, head_etag = await load_head(self.dest, unit)
            await self._remove_leftovers(unit, head)
            try:
                index = await load_index(self.dest, head)
                generation = await self._build_generation(unit, head, index, candidates)
            except NotFoundError as missing:
                # A rival's commit removes the files of the head this attempt started from.
                if await self._head_moved(unit, head_etag):
                    self.report.commit_conflicts += 1
                    continue
                raise ArchiverError(
                    f"unit {unit}: the archive's ledger names a file that is gone ({missing}); "
                    "run `archiver verify` to see what is missing"
                ) from None
            if generation is None:
                self.report.objects_skipped += len(candidates)
                if head_etag is not None:
                    await self._mark_seen(unit, fingerprint)
                return
            await self._upload(unit, generation)
            if not await self._commit(unit, generation, head_etag):
                self.report.commit_conflicts += 1
                await self._discard(generation)
                continue
            await self._after_commit(unit, generation)
            self._count_generation(generation)
            if generation.complete:
                await self._mark_seen(unit, fingerprint)
            return
        raise ArchiverError(
            f"unit {unit}: gave up after {MAX_COMMIT_ATTEMPTS} conflicting commits", retryable=True
        )

    def _count_generation(self, generation: _Generation) -> None:
        report = self.report
        report.units_committed += 1
        report.objects_archived += generation.archived
        report.objects_quarantined += generation.quarantined
        report.objects_skipped += generation.skipped
        report.files_written += len(generation.uploads)
        report.failures.extend(generation.failures)
        report.objects_failed += len(generation.failures)
        for table, count in generation.rows.items():
            report.rows[table] += count

    async def _remove_leftovers(self, unit: str, head: Head) -> None:
        """Delete what crashed or outraced runs left behind: never anything the head refers to."""
        live = head.file_keys() | ({head.index_key} if head.index_key else set())
        doomed = [key for key in head.obsolete if key not in live and key not in self._deleted]
        for intent_key in self._ledgers[unit].intents():
            generation = _intent_generation(intent_key)
            if generation is None or generation > head.generation:
                continue  # another worker's generation in progress
            try:
                listed = orjson.loads((await self.dest.get(intent_key)).body)
            except NotFoundError:
                continue
            doomed.extend(key for key in listed.get("files", []) if key not in live)
            doomed.append(intent_key)
            self._ledgers[unit].keys.discard(intent_key)
        if doomed:
            await self.dest.delete(sorted(set(doomed)))
            self.report.files_deleted += len(set(doomed))
            self._deleted.update(doomed)

    async def _build_generation(
        self, unit: str, head: Head, index: dict[str, list[IndexEntry]], candidates: list[ObjectInfo]
    ) -> _Generation | None:
        listed = {info.key: info for info in candidates}
        fresh = [info for info in candidates if info.key not in index or index[info.key][0].etag != info.etag]
        skipped = len(candidates) - len(fresh)
        if not fresh:
            return None
        changed = {info.key for info in fresh if info.key in index}
        resolver = _VersionResolver(index)
        refetch = resolver.release_changed(changed, listed)
        to_fetch = sorted({info.key: info for info in [*fresh, *refetch]}.values(), key=lambda info: info.key)

        generation_number = head.generation + 1
        token = secrets.token_hex(4)
        owner = ledger.file_owner(unit)
        writer = self._unit_writer(owner, generation_number, token)
        build = _GenerationBuilder(writer, resolver)
        failures: list[dict[str, str]] = []
        try:
            group: list[tuple[ObjectInfo, ParsedObject, int | None]] = []
            group_folder: str | None = None
            async for result in self._fetch(to_fetch):
                folder = job_folder(result.info.key)
                if group and folder != group_folder:
                    build.add_group(group)
                    group = []
                group_folder = folder
                key_info = parse_key(result.info.key)
                parsed = self._parse(result, key_info, failures, build)
                if parsed is not None:
                    group.append((result.info, parsed, key_info.stamp_us if key_info else None))
                if self.progress:
                    self.progress(1)
            if group:
                build.add_group(group)
            new_files = writer.close()
            final_files, mapping, obsolete_committed = await self._rewrite(
                head, build.removals, new_files, owner, generation_number, token
            )
        except BaseException:
            writer.abandon()
            raise
        entries = resolver.merged_entries(build.entries, mapping)
        index_key = f"{ledger.unit_prefix(unit)}index-g{generation_number:06d}-{token}.parquet"
        kept = [ref for ref in head.files if ref.key not in mapping]
        refs = kept + [FileRef(f.key, f.table, f.rows, f.bytes) for f in final_files]
        new_head = Head(
            unit=unit,
            generation=generation_number,
            index_key=index_key,
            files=sorted(refs, key=lambda ref: ref.key),
            obsolete=sorted(obsolete_committed + ([head.index_key] if head.index_key else [])),
        )
        return _Generation(
            head=new_head,
            intent_key=f"{ledger.unit_prefix(unit)}{INTENT_PREFIX}g{generation_number:06d}-{token}.json",
            uploads=final_files,
            index_body=ledger.encode_index(entries),
            archived=build.archived,
            quarantined=build.quarantined,
            skipped=skipped + build.vanished,
            rows=build.rows,
            failures=failures,
            complete=not failures and not build.vanished,
        )

    def _unit_writer(self, owner: str, generation: int, token: str) -> UnitWriter:
        return UnitWriter(
            owner=owner,
            generation=generation,
            token=token,
            workdir=self._workdir,
            target_bytes=self.settings.target_file_bytes,
            row_group_rows=self.settings.row_group_rows,
            compression=self.settings.compression,
            compression_level=self.settings.compression_level,
            budget=self._buffers,
        )

    def _fetch(self, infos: list[ObjectInfo]) -> AsyncIterator[FetchResult]:
        return fetch_in_order(
            self.source,
            infos,
            concurrency=self.settings.concurrency,
            budget=self._budget,
            max_object_bytes=self.settings.max_object_bytes,
            sequential=self.sequential_reads,
        )

    def _parse(
        self,
        result: FetchResult,
        key_info: KeyInfo | None,
        failures: list[dict[str, str]],
        build: _GenerationBuilder,
    ) -> ParsedObject | None:
        info = result.info
        if result.oversized:
            limit = self.settings.max_object_bytes
            detail = f"object is {info.size} bytes, above the {limit}-byte limit; not read"
            return ParsedObject(rejection=Rejection(REASON_TOO_LARGE, detail))
        if isinstance(result.error, NotFoundError):
            build.vanished += 1
            return None
        if result.fetched is None:
            kind = type(result.error).__name__ if result.error else "ArchiverError"
            failures.append({"key": info.key, "error": str(result.error), "kind": kind})
            return None
        return read_object(result.fetched.body, key=info.key, etag=result.fetched.etag, key_info=key_info)

    async def _rewrite(
        self,
        head: Head,
        removals: dict[str, set[tuple[str, str | None]]],
        new_files: list[WrittenFile],
        owner: str,
        generation: int,
        token: str,
    ) -> tuple[list[WrittenFile], dict[str, list[str]], list[str]]:
        """Rewrite files that lost rows, and merge small files; return final files and old->new keys."""
        local = {written.key: written for written in new_files}
        targets = set(removals) | self._small_files_to_merge(head, new_files)
        if not targets:
            return new_files, {}, []
        rewriter = self._unit_writer(owner, generation, token + "m")
        mapping: dict[str, list[str]] = {}
        try:
            for key in sorted(targets):
                mapping[key] = await self._copy_without(
                    key, local.get(key), removals.get(key, set()), rewriter
                )
            merged = rewriter.close()
        except BaseException:
            rewriter.abandon()
            raise
        for key in targets & set(local):
            local[key].path.unlink(missing_ok=True)
        survivors = [written for written in new_files if written.key not in targets]
        committed = head.file_keys()
        return survivors + merged, mapping, sorted(key for key in targets if key in committed)

    def _small_files_to_merge(self, head: Head, new_files: list[WrittenFile]) -> set[str]:
        """Per table partition, all small files once there are more of them than the setting allows."""
        small_limit = self.settings.target_file_bytes // 2
        groups: dict[str, list[str]] = defaultdict(list)
        sizes = [(ref.key, ref.bytes) for ref in head.files] + [(f.key, f.bytes) for f in new_files]
        for key, size in sizes:
            if size < small_limit:
                groups[key.rsplit("/", 1)[0]].append(key)
        chosen: set[str] = set()
        for keys in groups.values():
            if len(keys) > self.settings.max_small_files:
                chosen.update(keys)
        return chosen

    async def _copy_without(
        self, key: str, local: WrittenFile | None, drop: set[tuple[str, str | None]], rewriter: UnitWriter
    ) -> list[str]:
        table_name = key.split("/", 1)[0]
        if local is not None:
            parquet = pq.ParquetFile(local.path)
        else:
            parquet = pq.ParquetFile(pa.BufferReader((await self.dest.get(key)).body))
        day = read_day_partition(key)
        destinations: list[str] = []
        for batch in parquet.iter_batches(batch_size=self.settings.row_group_rows):
            data = pa.Table.from_batches([batch])
            if drop:
                data = data.filter(_keep_mask(data, drop))
            if data.num_rows:
                new_key = rewriter.add_table(table_name, day, data)
                if new_key not in destinations:
                    destinations.append(new_key)
        return destinations

    async def _upload(self, unit: str, generation: _Generation) -> None:
        """Put the intent, then every data file and the index; nothing refers to them yet."""
        head = generation.head
        assert head.index_key is not None
        upload_keys = [written.key for written in generation.uploads] + [head.index_key]
        await self.dest.put(generation.intent_key, orjson.dumps({"files": upload_keys}))
        gate = asyncio.Semaphore(UPLOAD_CONCURRENCY)

        async def upload(written: WrittenFile) -> None:
            async with gate:
                await self.dest.put_file(written.key, written.path)
            written.path.unlink(missing_ok=True)

        await asyncio.gather(*(upload(written) for written in generation.uploads))
        await self.dest.put(head.index_key, generation.index_body)

    async def _commit(self, unit: str, generation: _Generation, head_etag: str | None) -> bool:
        """Replace the head if it is still the one this attempt started from; True if ours won.

        A 412 can also answer a retried PUT whose first try landed but whose answer was
        lost: the head is then ours already, which must count as a win, not a conflict.
        """
        body = ledger.encode_head(generation.head)
        try:
            if head_etag is None:
                await self.dest.put(ledger.head_key(unit), body, if_none_match=True)
            else:
                await self.dest.put(ledger.head_key(unit), body, if_match=head_etag)
        except PreconditionFailedError:
            current, _ = await load_head(self.dest, unit)
            return current.index_key == generation.head.index_key
        return True

    async def _head_moved(self, unit: str, head_etag: str | None) -> bool:
        try:
            return (await self.dest.get(ledger.head_key(unit))).etag != head_etag
        except NotFoundError:
            return head_etag is not None

    async def _after_commit(self, unit: str, generation: _Generation) -> None:
        """Delete this attempt's intent and the files the commit superseded, then older leftovers."""
        obsolete = generation.head.obsolete
        await self.dest.delete([generation.intent_key, *obsolete])
        self.report.files_deleted += len(obsolete)
        self._deleted.update(obsolete)
        self._ledgers[unit].keys.discard(generation.intent_key)
        # Leftovers of crashed or outraced attempts at this or older generations can go now.
        await self._remove_leftovers(unit, generation.head)

    async def _discard(self, generation: _Generation) -> None:
        """After a lost commit: remove what this attempt uploaded (its intent goes with it)."""
        keys = [written.key for written in generation.uploads] + [generation.intent_key]
        if generation.head.index_key:
            keys.append(generation.head.index_key)
        for written in generation.uploads:
            written.path.unlink(missing_ok=True)
        await self.dest.delete(keys)

    async def _mark_seen(self, unit: str, fingerprint: str) -> None:
        marker = ledger.seen_key(unit, fingerprint)
        await self.dest.put(marker, b"")
        stale = [key for key in self._ledgers[unit].seen_markers() if key != marker]
        if stale:
            await self.dest.delete(stale)
        self._ledgers[unit].keys.difference_update(stale)
        self._ledgers[unit].keys.add(marker)


def _intent_generation(key: str) -> int | None:
    name = key.rsplit("/", 1)[-1]
    try:
        return int(name[len(INTENT_PREFIX) + 1 : len(INTENT_PREFIX) + 7])
    except ValueError:
        return None


def _keep_mask(data: pa.Table, drop: set[tuple[str, str | None]]) -> pa.Array:
    keys = data.column("source_key").to_pylist()
    if "job_id" in data.column_names:
        jobs = data.column("job_id").to_pylist()
        keep = [(k, j) not in drop and (k, None) not in drop for k, j in zip(keys, jobs, strict=True)]
    else:
        dropped_keys = {k for k, _ in drop}
        keep = [k not in dropped_keys for k in keys]
    return pc.cast(pa.array(keep, pa.bool_()), pa.bool_())


class _VersionResolver:
    """The winning version of every job the unit holds, old and new."""

    def __init__(self, index: dict[str, list[IndexEntry]]) -> None:
        self.index = index
        self.winners: dict[str, IndexEntry] = {}
        self.versions: dict[str, list[IndexEntry]] = defaultdict(list)
        self.released: dict[str, set[tuple[str, str | None]]] = defaultdict(set)
        for entries in index.values():
            for entry in entries:
                if entry.job_id is not None:
                    self.versions[entry.job_id].append(entry)
                    if entry.outcome == ledger.OUTCOME_JOB:
                        self.winners[entry.job_id] = entry

    def release_changed(self, changed: set[str], listed: dict[str, ObjectInfo]) -> list[ObjectInfo]:
        """Forget what changed keys contributed; return older versions that may win again."""
        refetch: list[ObjectInfo] = []
        for key in changed:
            for entry in self.index.get(key, []):
                for file_key in entry.files:
                    self.released[file_key].add((key, entry.job_id))
                if entry.job_id is not None and self.winners.get(entry.job_id) is entry:
                    del self.winners[entry.job_id]
                    for other in self.versions[entry.job_id]:
                        if other.key not in changed and other.key in listed:
                            refetch.append(listed[other.key])
        return refetch

    def merged_entries(
        self, new_entries: dict[str, list[IndexEntry]], mapping: dict[str, list[str]]
    ) -> list[IndexEntry]:
        merged = [entry for key, entries in self.index.items() if key not in new_entries for entry in entries]
        merged.extend(entry for entries in new_entries.values() for entry in entries)
        if mapping:
            for entry in merged:
                if any(file_key in mapping for file_key in entry.files):
                    remapped: list[str] = []
                    for file_key in entry.files:
                        for new_key in mapping.get(file_key, [file_key]):
                            if new_key not in remapped:
                                remapped.append(new_key)
                    entry.files = tuple(remapped)
        return merged


class _GenerationBuilder:
    """Turns parsed objects, one job folder at a time, into rows, index entries and removals."""

    def __init__(self, writer: UnitWriter, resolver: _VersionResolver) -> None:
        self.writer = writer
        self.resolver = resolver
        self.entries: dict[str, list[IndexEntry]] = {}
        self.removals: dict[str, set[tuple[str, str | None]]] = resolver.released
        self.rows: dict[str, int] = dict.fromkeys(ROW_TABLES, 0)
        self.archived = 0
        self.quarantined = 0
        self.vanished = 0

    def add_group(self, group: list[tuple[ObjectInfo, ParsedObject, int | None]]) -> None:
        candidates: dict[str, list[tuple[Rank, ObjectInfo, JobState]]] = defaultdict(list)
        for info, parsed, stamp in group:
            if parsed.rejection is not None:
                self._quarantine(info, parsed.rejection)
                continue
            self.archived += 1
            if parsed.activity:
                self._activity(info, parsed)
            for state in parsed.jobs:
                rank = rank_of(
                    state.row.get("status"),
                    state.row.get("completed_at"),
                    stamp,
                    info.last_modified_us,
                    info.key,
                )
                candidates[state.job_id].append((rank, info, state))
        for job_id, versions in candidates.items():
            self._resolve(job_id, versions)

    def _entry(self, entry: IndexEntry) -> None:
        self.entries.setdefault(entry.key, []).append(entry)

    def _quarantine(self, info: ObjectInfo, rejection: Rejection) -> None:
        row: Row = {
            "source_key": info.key,
            "source_etag": info.etag,
            "size": info.size,
            "reason": rejection.reason,
            "detail": rejection.detail,
        }
        file_key = self.writer.add_rows("quarantine", None, [row], 256)
        self.quarantined += 1
        self._entry(IndexEntry(info.key, info.etag, info.size, ledger.OUTCOME_QUARANTINE, files=(file_key,)))

    def _activity(self, info: ObjectInfo, parsed: ParsedObject) -> None:
        by_day: dict[dt.date, list[Row]] = defaultdict(list)
        for event in parsed.activity:
            by_day[event.day].append(event.row)
        files = tuple(
            self.writer.add_rows("activity", day, rows, max(info.size, 1))
            for day, rows in sorted(by_day.items())
        )
        self.rows["activity"] += len(parsed.activity)
        self._entry(IndexEntry(info.key, info.etag, info.size, ledger.OUTCOME_ACTIVITY, files=files))

    def _resolve(self, job_id: str, versions: list[tuple[Rank, ObjectInfo, JobState]]) -> None:
        versions.sort(key=lambda version: version[0])
        best_rank, best_info, best_state = versions[-1]
        current = self.resolver.winners.get(job_id)
        losers = versions[:-1]
        if current is not None and current.rank is not None and current.rank >= best_rank:
            losers = versions
        else:
            if current is not None:
                for file_key in current.files:
                    self.removals.setdefault(file_key, set()).add((current.key, job_id))
                current.outcome = ledger.OUTCOME_SUPERSEDED
                current.files = ()
            jobs_file = self.writer.add_rows("jobs", best_state.day, [best_state.row], 512)
            files: tuple[str, ...] = (jobs_file,)
            if best_state.lines:
                weight = max(best_info.size, 1)
                files += (self.writer.add_rows("job_lines", best_state.day, best_state.lines, weight),)
            self.rows["jobs"] += 1
            self.rows["job_lines"] += len(best_state.lines)
            winner = self._version(ledger.OUTCOME_JOB, job_id, best_rank, best_info, best_state, files)
            self.resolver.winners[job_id] = winner
        for rank, info, state in losers:
            self._version(ledger.OUTCOME_SUPERSEDED, job_id, rank, info, state, ())

    def _version(
        self, outcome: str, job_id: str, rank: Rank, info: ObjectInfo, state: JobState, files: tuple[str, ...]
    ) -> IndexEntry:
        """Record one version of a job in the index: the winner (with its files) or a loser."""
        entry = IndexEntry(
            info.key, info.etag, info.size, outcome, job_id=job_id, day=state.day, rank=rank, files=files
        )
        self._entry(entry)
        self.resolver.versions[job_id].append(entry)
        return entry


async def archive(
    source: ObjectStore,
    dest: ObjectStore,
    settings: Settings,
    *,
    unit_filter: Callable[[str], bool] | None = None,
    progress: ProgressHook | None = None,
    sequential_reads: bool = False,
) -> RunReport:
    """Archive the window of `source` into `dest` (only units `unit_filter` accepts, if given)."""
    archiver = Archiver(source, dest, settings, progress=progress, sequential_reads=sequential_reads)
    return await archiver.run(unit_filter=unit_filter)
