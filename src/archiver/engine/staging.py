"""Stage a unit's next generation: final data files, the new index segment, the new head.

Staging costs what the commit touches: the new rows, the files that lose rows
(copy-on-write), one tier of small files per partition, and a segment holding
only the entries that changed (plus, now and then, a merge of a few recent
segments).
"""

from __future__ import annotations

from dataclasses import replace

from archiver.engine import ledger
from archiver.engine.commit import Generation
from archiver.engine.compaction import Rewriter, rewrite
from archiver.engine.context import RunContext
from archiver.engine.generation import GenerationBuilder
from archiver.engine.index import UnitIndex, merged_entries, segments_to_merge
from archiver.engine.ledger import FileRef, Head, IndexEntry, Retired, SegmentRef, split_retired
from archiver.engine.policies import current_policy
from archiver.engine.tree import UnitState
from archiver.engine.writer import Compression, UnitWriter


async def stage_generation(
    ctx: RunContext,
    state: UnitState,
    index: UnitIndex,
    builder: GenerationBuilder,
    token: str,
    missing: set[str] | None = None,
) -> Generation | None:
    """The generation the builder describes, with files rewritten and the head to publish; None if empty.

    `missing` names committed files deleted from the archive or damaged in it: they
    leave the head (their rows come back through the objects re-read into this
    generation), and a damaged one is deleted after the commit.
    """
    head = state.head
    new_files = builder.writer.close()
    if not builder.entries and not missing:
        for written in new_files:
            written.path.unlink(missing_ok=True)
        return None
    settings = ctx.settings
    generation_number = head.generation + 1
    rewriter = Rewriter(
        ctx.dest,
        UnitWriter(
            owner=ledger.file_owner(head.unit),
            generation=generation_number,
            token=token + "m",
            workdir=ctx.workdir,
            target_bytes=settings.target_file_bytes,
            row_group_rows=settings.row_group_rows,
            compression=Compression.of(settings),
            budget=ctx.buffers,
            policy=current_policy(settings).digest,
        ),
        batch_rows=settings.row_group_rows,
        workdir=ctx.workdir,
    )
    rewritten = await rewrite(
        rewriter,
        head.files,
        new_files,
        builder.removals,
        target_bytes=settings.target_file_bytes,
        fanout=settings.max_small_files,
        missing=missing or set(),
    )
    entries = segment_entries(index, builder.entries, rewritten.mapping)
    segment_key = ledger.segment_key(head.unit, generation_number, token)
    segments, dropped, body_entries = _segments(index, head.segments, segment_key, entries)
    kept = [ref for ref in head.files if ref.key not in rewritten.mapping]
    retired, expired = split_retired(
        head.retired + [Retired(key, ctx.now_us) for key in rewritten.replaced],
        ctx.now_us,
        settings.retire_grace_seconds * 1_000_000,
        published_tables=ctx.published_tables,
    )
    new_head = Head(
        unit=head.unit,
        generation=generation_number,
        lo=head.lo,
        hi=head.hi,
        children=list(head.children),
        segments=segments,
        files=sorted(
            kept + [FileRef(f.key, f.table, f.rows, f.bytes, f.policies) for f in rewritten.uploads],
            key=_by_key,
        ),
        retired=retired,
        lineage=[*head.lineage, token][-ledger.LINEAGE :],
    )
    return Generation(
        head=new_head,
        base_etag=state.etag,
        token=token,
        uploads=rewritten.uploads,
        segment_key=segment_key,
        segment_body=ledger.encode_index(body_entries, [written.key for written in rewritten.uploads]),
        segment_lists_uploads=True,
        dropped_segments=dropped,
        expired=[item.key for item in expired],
        discarded=sorted((missing or set()) & head.file_keys()),
    )


def expiry_generation(ctx: RunContext, state: UnitState, token: str) -> Generation | None:
    """A generation that only deletes retired files past their grace period; None if none are due.

    Retired files otherwise go with a unit's next commit of new objects, which a unit
    may never get. With Iceberg tables none are ever due here: the publisher deletes them.
    """
    head = state.head
    grace_us = ctx.settings.retire_grace_seconds * 1_000_000
    kept, expired = split_retired(head.retired, ctx.now_us, grace_us, published_tables=ctx.published_tables)
    if state.etag is None or not expired:
        return None
    new_head = replace(
        head,
        generation=head.generation + 1,
        children=list(head.children),
        segments=list(head.segments),
        files=list(head.files),
        retired=kept,
        lineage=[*head.lineage, token][-ledger.LINEAGE :],
    )
    return Generation(
        head=new_head, base_etag=state.etag, token=token, uploads=[], expired=[r.key for r in expired]
    )


def _by_key(ref: FileRef) -> str:
    return ref.key


def segment_entries(
    index: UnitIndex, changed: dict[str, list[IndexEntry]], mapping: dict[str, list[str]]
) -> list[IndexEntry]:
    """The entries of every key this generation touched, plus keys whose files were rewritten."""
    touched = dict(changed)
    if mapping:
        for key, entries in index.by_key.items():
            if key not in touched and any(f in mapping for entry in entries for f in entry.files):
                touched[key] = entries
        for entries in touched.values():
            for entry in entries:
                if any(f in mapping for f in entry.files):
                    entry.files = _remapped(entry.files, mapping)
    return [entry for entries in touched.values() for entry in entries]


def _remapped(files: tuple[str, ...], mapping: dict[str, list[str]]) -> tuple[str, ...]:
    result: list[str] = []
    for key in files:
        for new_key in mapping.get(key, [key]):
            if new_key not in result:
                result.append(new_key)
    return tuple(result)


def _segments(
    index: UnitIndex, current: list[SegmentRef], new_key: str, entries: list[IndexEntry]
) -> tuple[list[SegmentRef], list[str], list[IndexEntry]]:
    """The head's segments after appending this one, merging a run of recent ones when it is due."""
    appended = [*current, SegmentRef(new_key, len(entries))]
    run = segments_to_merge(appended)
    if not run:
        return appended, [], entries
    older = run[:-1]
    index.segments[new_key] = entries
    body = merged_entries(index, run)
    del index.segments[new_key]
    kept = [segment for segment in current if segment not in older]
    return [*kept, SegmentRef(new_key, len(body))], [segment.key for segment in older], body
