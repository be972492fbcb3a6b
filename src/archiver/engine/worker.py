"""The unit worker: diff a unit's objects against its index, fetch and parse what is new, commit it.

A worker is handed the objects routed to one unit. It retries on a lost commit
race (with jittered backoff), seals the unit when it would outgrow
`unit_max_objects` (new job folders then go to its children), and, if the unit
turns out to be sealed, hands each object to the child whose range holds it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from archiver.engine.commit import Generation
from archiver.engine.context import RunContext
from archiver.engine.fetcher import FetchResult, fetch_in_order
from archiver.engine.generation import GenerationBuilder, Parsed, VersionResolver
from archiver.engine.index import UnitIndex, read_head, read_unit_index
from archiver.engine.ledger import Head, encode_head, file_owner, head_key
from archiver.engine.policies import current_policy
from archiver.engine.staging import expiry_generation, stage_generation
from archiver.engine.tree import UnitState, UnitTree, child_for, quantile_boundaries, sealed
from archiver.engine.units import folder_of
from archiver.engine.writer import Compression, UnitWriter
from archiver.errors import ArchiverError, NotFoundError, PreconditionFailedError
from archiver.formats.layout import job_folder, parse_key
from archiver.formats.records import REASON_TOO_LARGE, ParsedObject, Rejection
from archiver.storage.store import ObjectInfo

MAX_COMMIT_ATTEMPTS = 8
BACKOFF_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 5.0

log = logging.getLogger(__name__)


@dataclass(slots=True)
class UnitResult:
    """Whether every object handed to the unit is now archived (or quarantined)."""

    complete: bool = True
    failures: list[dict[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class Fetched:
    """What one attempt read: parsed groups, and objects that failed or vanished."""

    builder: GenerationBuilder
    writer: UnitWriter
    failures: list[dict[str, str]] = field(default_factory=list)
    vanished: int = 0
    dropped_changed: set[str] = field(default_factory=set)


async def confirmed(ctx: RunContext, index: UnitIndex, objects: list[ObjectInfo]) -> list[ObjectInfo]:
    """Objects whose ETags came from events, not a listing: those the index holds under another
    ETag, as the source has them now (an event may be stale: a retried message about a version
    since replaced), gone ones skipped. New keys, the common case, need no HEAD."""
    current: list[ObjectInfo] = []
    for info in objects:
        known = index.etag(info.key)
        if known is None or known == info.etag:
            current.append(info)
        elif (found := await ctx.source.head(info.key)) is not None:
            current.append(found)
        else:
            ctx.report.objects_skipped += 1
    return current


class UnitWorker:
    """Archives objects into units of one run (with `confirm_changed`, objects named by events)."""

    def __init__(self, ctx: RunContext, *, confirm_changed: bool = False) -> None:
        self.ctx = ctx
        self.confirm_changed = confirm_changed

    async def archive(self, tree: UnitTree, unit: str, objects: list[ObjectInfo]) -> UnitResult:
        """Archive `objects` into `unit` (or, if it is sealed, into it and its children)."""
        result = UnitResult()
        conflicts = 0
        while True:
            state = tree.state(unit)
            await self._remove_leftovers(state.head)
            try:
                head, etag, index = await read_unit_index(self.ctx.dest, unit, state.head, state.etag)
            except NotFoundError as gone:
                raise ArchiverError(f"unit {unit}: a segment its head names is gone: {gone}") from None
            if etag != state.etag:
                state = tree.states[unit] = UnitState(head, etag)
            if state.head.sealed:
                objects = await self._hand_down(tree, state.head, index, objects, result)
            if self.confirm_changed:
                objects = await confirmed(self.ctx, index, objects)
            missing = tree.missing & state.head.file_keys()
            rebuild = await repairable_keys(self.ctx, index, objects, missing, result) if missing else set()
            new = [info for info in objects if index.etag(info.key) != info.etag or info.key in rebuild]
            self.ctx.report.objects_skipped += len(objects) - len(new)
            if not new and not missing:
                await self._collect_retired(tree, state)
                return result
            if self._overflows(state.head, index, new):
                await self._seal(tree, state, index, new)
                objects = new
                continue
            try:
                generation = await self._attempt(state, index, objects, new, result, missing)
            except NotFoundError as missing:
                if not await self._head_moved(unit, state.etag):
                    raise ArchiverError(f"unit {unit}: {missing}") from None
                conflicts = await self._retry(tree, unit, conflicts, "a rival replaced a file")
                objects = new
                continue
            if generation is None:
                return result
            if await self._publish(tree, state, generation):
                return result
            conflicts = await self._retry(tree, unit, conflicts, "a rival committed first")
            objects = new

    async def _collect_retired(self, tree: UnitTree, state: UnitState) -> None:
        """Nothing new to commit: retired files past their grace period go with a head-only commit."""
        generation = expiry_generation(self.ctx, state, secrets.token_hex(4))
        if generation is not None and not await self._publish(tree, state, generation):
            log.debug("unit %s: retired files left to a later run (a rival committed first)", state.head.unit)

    async def _head_moved(self, unit: str, etag: str | None) -> bool:
        _, current = await read_head(self.ctx.dest, unit)
        return current != etag

    async def _retry(self, tree: UnitTree, unit: str, conflicts: int, why: str) -> int:
        conflicts += 1
        self.ctx.report.commit_conflicts += 1
        if conflicts >= MAX_COMMIT_ATTEMPTS:
            raise ArchiverError(f"unit {unit}: gave up after {conflicts} conflicts ({why})", retryable=True)
        await asyncio.sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_SECONDS * 2**conflicts)))
        head, etag = await read_head(self.ctx.dest, unit)
        lo, hi = tree.range_of(unit)
        tree.states[unit] = UnitState(head or Head(unit=unit, lo=lo, hi=hi), etag)
        log.debug("unit %s: retrying (%s)", unit, why)
        return conflicts

    async def _hand_down(
        self, tree: UnitTree, head: Head, index: UnitIndex, objects: list[ObjectInfo], result: UnitResult
    ) -> list[ObjectInfo]:
        """Objects of folders a sealed unit keeps stay; every other one goes to its child."""
        held = tree.held.setdefault(head.unit, index.folders())
        mine: list[ObjectInfo] = []
        by_child: dict[str, list[ObjectInfo]] = defaultdict(list)
        for info in objects:
            folder = folder_of(info.key)
            if folder in held:
                mine.append(info)
            else:
                by_child[child_for(head, folder)].append(info)
        for child in sorted(by_child):
            outcome = await self.archive(tree, child, by_child[child])
            result.complete &= outcome.complete
            result.failures.extend(outcome.failures)
        return mine

    def _overflows(self, head: Head, index: UnitIndex, new: list[ObjectInfo]) -> bool:
        added = sum(1 for info in new if info.key not in index)
        if head.sealed or added == 0 or len(index) + added <= self.ctx.settings.unit_max_objects:
            return False
        # One job folder is never split: an empty unit given a single folder keeps it whole, over
        # the limit, instead of sealing into one child that would get the same folder again.
        return len(index) > 0 or len({folder_of(info.key) for info in new}) > 1

    async def _seal(self, tree: UnitTree, state: UnitState, index: UnitIndex, new: list[ObjectInfo]) -> None:
        """Split the unit: it keeps its folders, children split its range for new ones."""
        folders = index.folders() | {folder_of(info.key) for info in new}
        chunk = max(1, self.ctx.settings.unit_max_objects // 2)
        parts = max(2, -(-(len(index) + len(new)) // chunk))
        head = sealed(state.head, quantile_boundaries(folders, parts))
        try:
            etag = await self._put_head(head, state.etag)
        except PreconditionFailedError:
            await self._retry(tree, head.unit, 0, "the unit changed while sealing it")
            return
        tree.states[head.unit] = UnitState(head, etag)
        tree.held[head.unit] = index.folders()
        self.ctx.report.units_sealed += 1
        log.info("unit %s sealed into %d children", head.unit, len(head.children))

    async def _put_head(self, head: Head, etag: str | None) -> str:
        key = head_key(head.unit)
        if etag is None:
            return await self.ctx.dest.put(key, encode_head(head), if_none_match=True)
        return await self.ctx.dest.put(key, encode_head(head), if_match=etag)

    async def _attempt(
        self,
        state: UnitState,
        index: UnitIndex,
        objects: list[ObjectInfo],
        new: list[ObjectInfo],
        result: UnitResult,
        missing: set[str],
    ) -> Generation | None:
        token = secrets.token_hex(4)
        writer = self._writer(state.head, token)
        resolver = VersionResolver(index)
        fetched = Fetched(GenerationBuilder(writer, resolver), writer)
        try:
            await self._read(state.head, index, objects, new, fetched)
            generation = await stage_generation(self.ctx, state, index, fetched.builder, token, missing)
        except BaseException:
            writer.abandon()
            raise
        complete = not fetched.failures and not fetched.vanished and not fetched.dropped_changed
        result.complete &= complete
        result.failures.extend(fetched.failures)
        self.ctx.report.objects_skipped += fetched.vanished
        if generation is None:
            return None
        # Events are committed to their days' activity ledgers before the unit records their
        # objects as archived: a crash in between re-commits them, which adds nothing.
        rows = dict(fetched.builder.rows)
        withdrawn = fetched.builder.resolver.withdrawn
        rows["activity"] = await self.ctx.activity.commit(
            fetched.builder.activity, self.ctx.now_us, withdrawn
        )
        generation.counts = (fetched.builder.archived, fetched.builder.quarantined, rows)
        generation.notes = list(fetched.builder.notes)
        return generation

    async def _read(
        self, head: Head, index: UnitIndex, objects: list[ObjectInfo], new: list[ObjectInfo], fetched: Fetched
    ) -> None:
        """Fetch and parse older versions that may win again, then the new objects a folder at a time."""
        changed = {info.key for info in new if info.key in index}
        listed = {info.key: info for info in objects}
        refetch_keys = fetched.builder.resolver.release_changed(changed)
        refetched = await self._parse_all(await self._infos(refetch_keys, listed), fetched)
        if fetched.failures and changed:
            # A failed re-read must not lose a job's row: leave the changed keys for the next run.
            fetched.dropped_changed = changed
            fetched.builder.resolver = VersionResolver(index)
            new = [info for info in new if info.key not in changed]
            refetched = []
        if refetched:
            fetched.builder.add_group(refetched)
        group: list[Parsed] = []
        folder: str | None = None
        async for item in self._stream(new, fetched):
            item_folder = job_folder(item.info.key)
            if group and item_folder != folder:
                fetched.builder.add_group(group)
                group = []
            folder = item_folder
            group.append(item)
        if group:
            fetched.builder.add_group(group)

    async def _infos(self, keys: list[str], listed: dict[str, ObjectInfo]) -> list[ObjectInfo]:
        infos: list[ObjectInfo] = []
        for key in keys:
            info = listed.get(key) or await self.ctx.source.head(key)
            if info is not None:
                infos.append(info)
        return infos

    async def _parse_all(self, infos: list[ObjectInfo], fetched: Fetched) -> list[Parsed]:
        return [item async for item in self._stream(infos, fetched)]

    async def _stream(self, infos: list[ObjectInfo], fetched: Fetched) -> AsyncIterator[Parsed]:
        ctx = self.ctx
        results = fetch_in_order(
            ctx.source,
            sorted(infos, key=lambda info: info.key),
            concurrency=ctx.settings.concurrency,
            budget=ctx.budget,
            max_object_bytes=ctx.settings.max_object_bytes,
            sequential=ctx.source.sequential_reads,
        )
        async for result, parsed in ctx.parser.parse(results, expected=len(infos)):
            item = self._outcome(result, parsed, fetched)
            ctx.tick()
            if item is not None:
                yield item

    def _outcome(self, result: FetchResult, parsed: ParsedObject | None, fetched: Fetched) -> Parsed | None:
        info = result.info
        key_info = parse_key(info.key)
        stamp = key_info.stamp_us if key_info else None
        if result.oversized:
            limit = self.ctx.settings.max_object_bytes
            detail = f"object is {info.size} bytes, above the {limit}-byte limit; not read"
            return Parsed(info, ParsedObject(rejection=Rejection(REASON_TOO_LARGE, detail)), stamp)
        if isinstance(result.error, NotFoundError):
            fetched.vanished += 1
            return None
        if result.fetched is None or parsed is None:
            kind = type(result.error).__name__ if result.error else "ArchiverError"
            fetched.failures.append({"key": info.key, "error": str(result.error), "kind": kind})
            return None
        if result.fetched.etag != info.etag:
            info = ObjectInfo(info.key, len(result.fetched.body), result.fetched.etag, info.last_modified_us)
        return Parsed(info, parsed, stamp)

    def _writer(self, head: Head, token: str) -> UnitWriter:
        settings = self.ctx.settings
        return UnitWriter(
            owner=file_owner(head.unit),
            generation=head.generation + 1,
            token=token,
            workdir=self.ctx.workdir,
            target_bytes=settings.target_file_bytes,
            row_group_rows=settings.row_group_rows,
            compression=Compression.of(settings),
            budget=self.ctx.buffers,
            policy=current_policy(settings).digest,
        )

    async def _publish(self, tree: UnitTree, state: UnitState, generation: Generation) -> bool:
        committer = self.ctx.committer
        await committer.upload(generation)
        won, head, etag = await committer.publish(generation)
        if not won:
            await committer.discard(generation, head)
            return False
        await committer.finish(generation)
        # What this commit wrote and deleted is no leftover for the sweep below.
        self.ctx.ledgers.forget(generation.head.unit, [generation.intent_key, *generation.dropped_segments])
        tree.states[generation.head.unit] = UnitState(head or generation.head, etag)
        self._count(generation)
        # Leftovers of crashed or outraced attempts at this generation or older can go now.
        await self._remove_leftovers(head or generation.head)
        return True

    def _count(self, generation: Generation) -> None:
        report = self.ctx.report
        archived, quarantined, rows = generation.counts
        report.units_committed += 1
        report.objects_archived += archived
        report.objects_quarantined += quarantined
        report.files_written += len(generation.uploads)
        report.notes.extend(generation.notes)
        report.add_rows(rows)

    async def _remove_leftovers(self, head: Head) -> None:
        keys = sorted(self.ctx.ledgers.of(head.unit))
        if not keys:
            return
        handled = await self.ctx.committer.remove_leftovers(head, keys)
        self.ctx.ledgers.forget(head.unit, handled)


async def repairable_keys(
    ctx: RunContext, index: UnitIndex, objects: list[ObjectInfo], missing: set[str], result: UnitResult
) -> set[str]:
    """Source keys whose rows were in a deleted data file and can be read again; the others are lost."""
    affected = {key for key, entries in index.by_key.items() for e in entries if missing & set(e.files)}
    listed = {info.key: info for info in objects}
    for key in sorted(affected - set(listed)):
        info = await ctx.source.head(key)
        if info is not None:
            objects.append(info)
            listed[key] = info
        else:
            failure = {
                "key": key,
                "error": "its archived rows were in a deleted or damaged data file "
                "and the source object is gone",
                "kind": "UnrepairableError",
            }
            result.failures.append(failure)
            result.complete = False
    ctx.report.missing_files.extend(sorted(missing))
    log.info("repairing %d objects whose rows were in %d deleted files", len(affected), len(missing))
    return affected & set(listed)
