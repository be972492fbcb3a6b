"""The commit protocol: a record of the uploads, uploads, one conditional head write, cleanup.

1. Before any data file, a record of the attempt names every file it will upload, so
   a crash at any later point leaves a list of what to remove. That record is the
   attempt's index segment (its schema metadata names the data files): one PUT the
   commit makes anyway. An attempt that must also delete files after it wins
   (retired files past their grace period) writes an intent record instead, naming
   those too, so a crash between the win and the deletes leaves them named.
2. Data files (and, after an intent, the segment) are uploaded; nothing refers to them yet.
3. The head is replaced with `If-Match` (or created with `If-None-Match`): of two
   writers exactly one wins. A 412 may also answer our own retried write whose
   first answer was lost; the head remembers the tokens of its recent commits
   (its lineage), so a writer finds its own commit there even after a rival has
   committed on top of it, and then never deletes what it uploaded.
4. After a win: the intent, merged-away segments and retired files past their
   grace period are deleted. After a loss: what the attempt uploaded is deleted,
   except anything the current head refers to.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import orjson

from archiver.engine import ledger
from archiver.engine.holdings import Holdings
from archiver.engine.index import read_head
from archiver.engine.ledger import Head
from archiver.engine.writer import WrittenFile
from archiver.errors import NotFoundError, PreconditionFailedError
from archiver.storage.store import ObjectStore

UPLOAD_CONCURRENCY = 8

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Generation:
    """Everything one attempt at a unit produced, not yet published."""

    head: Head
    base_etag: str | None
    token: str
    uploads: list[WrittenFile]
    segment_key: str | None = None
    segment_body: bytes | None = None
    dropped_segments: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)
    """Data files the head stops naming because they are gone or damaged: deleted after the commit."""
    counts: tuple[int, int, dict[str, int]] = (0, 0, {})
    notes: list[str] = field(default_factory=list)
    segment_lists_uploads: bool = False
    """The segment's metadata names the data files (`ledger.with_uploads`): it can stand for the intent."""

    @property
    def intent_key(self) -> str:
        return ledger.intent_key(self.head.unit, self.head.generation, self.token)

    @property
    def needs_intent(self) -> bool:
        """An intent record is written unless the segment names the uploads and no file is deleted after."""
        return bool(self.expired or self.discarded) or not (self.segment_key and self.segment_lists_uploads)

    def upload_keys(self) -> list[str]:
        keys = [written.key for written in self.uploads]
        return [*keys, self.segment_key] if self.segment_key else keys


class Committer:
    """Publishes generations of units into the destination store."""

    def __init__(self, dest: ObjectStore, holdings: Holdings | None = None) -> None:
        self.dest = dest
        self.files_deleted = 0
        self.holdings = holdings
        """Told of every data file put or deleted, so a run's seen markers need no LIST after a commit."""

    async def _delete(self, keys: list[str]) -> None:
        await self.dest.delete(keys)
        if self.holdings is not None:
            self.holdings.deleted(keys)

    async def upload(self, generation: Generation) -> None:
        """Put the record of the uploads (intent or segment), then the rest; nothing refers to them yet."""
        segment_first = not generation.needs_intent
        if segment_first:
            await self._put_segment(generation)
        else:
            # What a commit deletes afterwards is named too: a crash between the commit and
            # the deletes leaves them for the next attempt's leftover sweep.
            after = [*generation.dropped_segments, *generation.expired, *generation.discarded]
            await self.dest.put(
                generation.intent_key, orjson.dumps({"files": generation.upload_keys(), "after": after})
            )
        gate = asyncio.Semaphore(UPLOAD_CONCURRENCY)

        async def upload(written: WrittenFile) -> None:
            async with gate:
                await self.dest.put_file(written.key, written.path)
            if self.holdings is not None:
                self.holdings.uploaded(written.key, written.bytes)
            written.path.unlink(missing_ok=True)

        await asyncio.gather(*(upload(written) for written in generation.uploads))
        if not segment_first:
            await self._put_segment(generation)

    async def _put_segment(self, generation: Generation) -> None:
        if generation.segment_key and generation.segment_body is not None:
            await self.dest.put(generation.segment_key, generation.segment_body)

    async def publish(self, generation: Generation) -> tuple[bool, Head | None, str | None]:
        """Replace the head if it is still the one the attempt started from.

        Returns whether ours is committed, and the unit's current head and ETag.
        """
        body = ledger.encode_head(generation.head)
        key = ledger.head_key(generation.head.unit)
        try:
            if generation.base_etag is None:
                etag = await self.dest.put(key, body, if_none_match=True)
            else:
                etag = await self.dest.put(key, body, if_match=generation.base_etag)
        except PreconditionFailedError:
            current, current_etag = await read_head(self.dest, generation.head.unit)
            won = current is not None and generation.token in current.lineage
            return won, current, current_etag
        return True, generation.head, etag

    async def finish(self, generation: Generation) -> None:
        """After a win: the intent, merged-away segments, expired retired files and damaged files go."""
        intent = [generation.intent_key] if generation.needs_intent else []
        doomed = [*intent, *generation.dropped_segments, *generation.expired, *generation.discarded]
        if doomed:
            await self._delete(doomed)
        self.files_deleted += len(generation.expired)

    async def discard(self, generation: Generation, current: Head | None) -> None:
        """After a loss: remove what the attempt uploaded, never what the current head refers to."""
        for written in generation.uploads:
            written.path.unlink(missing_ok=True)
        live = _live_keys(current)
        doomed = [key for key in generation.upload_keys() if key not in live]
        intent = [generation.intent_key] if generation.needs_intent else []
        await self._delete([*doomed, *intent])

    async def remove_leftovers(self, head: Head, ledger_keys: list[str]) -> list[str]:
        """Remove what crashed or outraced attempts up to this generation left; return ledger keys gone."""
        live = _live_keys(head)
        segments = [
            key
            for key in ledger_keys
            if key.rsplit("/", 1)[-1].startswith(ledger.SEGMENT_PREFIX)
            and key not in live
            and (ledger.file_generation(key) or 0) <= head.generation
        ]
        doomed: list[str] = list(segments)
        handled: list[str] = list(segments)
        for segment in segments:  # a crashed attempt's segment names the data files it uploaded
            try:
                named = ledger.segment_uploads((await self.dest.get(segment)).body)
            except NotFoundError:
                continue
            doomed.extend(key for key in named if key not in live)
        intents = [key for key in ledger_keys if key.rsplit("/", 1)[-1].startswith(ledger.INTENT_PREFIX)]
        for intent in intents:
            generation = ledger.file_generation(intent)
            if generation is None or generation > head.generation:
                continue  # another worker's generation in progress
            try:
                listed = orjson.loads((await self.dest.get(intent)).body)
            except NotFoundError:
                handled.append(intent)
                continue
            except orjson.JSONDecodeError:
                listed = {}
            named = [*listed.get("files", []), *listed.get("after", [])]
            doomed.extend(key for key in named if isinstance(key, str) and key not in live)
            doomed.append(intent)
            handled.append(intent)
        if doomed:
            await self._delete(sorted(set(doomed)))
            self.files_deleted += sum(1 for key in set(doomed) if not key.startswith(ledger.LEDGER_ROOT))
            log.debug("removed %d leftovers of %s", len(set(doomed)), head.unit)
        return handled


def _live_keys(head: Head | None) -> set[str]:
    if head is None:
        return set()
    return head.file_keys() | head.ledger_keys() | {retired.key for retired in head.retired}
