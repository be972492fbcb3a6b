"""The erasure log's index: runs learn every erasure with one GET, and forget never loses a record."""

from __future__ import annotations

import asyncio
import datetime as dt

from archiver.engine.erasures import (
    INDEX_KEY,
    ErasureRecord,
    index_log,
    load_erasure,
    read_log,
    record_key,
)
from archiver.formats.erasure import Erasure
from archiver.formats.masking import key_id
from archiver.formats.policy import build_policy
from archiver.storage.store import RequestCounts
from tests.unit.engine.memory_store import MemoryStore

KEY = b"k" * 32
POLICY = build_policy({}, key=KEY)
NOW = dt.datetime(2024, 8, 21, 12, 0, tzinfo=dt.UTC)


def a_record(subject: str) -> ErasureRecord:
    return ErasureRecord(
        kind="email",
        subject=subject,
        key_id=key_id(KEY),
        requested_at=NOW.isoformat(),
        until=dt.date(2024, 8, 21),
        window={"since": None, "until": None},
    )


def recorded(dest: MemoryStore, subject: str, token: str) -> str:
    """A record put in the log the way forget puts it (no index update)."""
    key = record_key(NOW, token)
    dest.add(key, a_record(subject).encode())
    return key


def subjects(erasure: Erasure | None) -> list[str]:
    return sorted(subject.digest for subject in (erasure.subjects if erasure is not None else ()))


def test_a_run_learns_the_erasures_from_one_get_of_the_index() -> None:
    async def scenario() -> None:
        # GIVEN an archive with two erasures, indexed by forget
        dest = MemoryStore()
        recorded(dest, "s1", "aaaa")
        recorded(dest, "s2", "bbbb")
        await index_log(dest)
        dest.counts = RequestCounts()
        # WHEN a run reads the erasures
        erasure = await load_erasure(dest, POLICY, by_index=True)
        # THEN it knows both subjects, from one GET and no LIST
        assert subjects(erasure) == ["s1", "s2"]
        assert (dest.counts.get, dest.counts.list, dest.counts.put) == (1, 0, 0)

    asyncio.run(scenario())


def test_an_archive_without_an_index_is_listed_once_and_indexed() -> None:
    async def scenario() -> None:
        # GIVEN a log written before the index existed, and an archive with no erasures at all
        old, empty = MemoryStore(), MemoryStore()
        recorded(old, "s1", "aaaa")
        for dest, expected in ((old, ["s1"]), (empty, [])):
            # WHEN two runs read the erasures
            first = await load_erasure(dest, POLICY, by_index=True)
            dest.counts = RequestCounts()
            second = await load_erasure(dest, POLICY, by_index=True)
            # THEN the first lists the log and writes its index, the second reads the index alone
            assert subjects(first) == subjects(second) == expected
            assert INDEX_KEY in dest.objects
            assert (dest.counts.get, dest.counts.list, dest.counts.put) == (1, 0, 0)

    asyncio.run(scenario())


def test_forget_indexes_every_record_even_when_a_run_wrote_a_stale_index_first() -> None:
    async def scenario() -> None:
        # GIVEN a run that listed the log before a new request was recorded, and writes its
        # (stale) index just as forget reads the index
        dest = MemoryStore()
        recorded(dest, "s1", "aaaa")
        stale = MemoryStore()
        stale.objects = dict(dest.objects)
        await load_erasure(stale, POLICY, by_index=True)  # the index of the log without s2
        recorded(dest, "s2", "bbbb")

        async def stale_index_first(key: str) -> None:
            if key == INDEX_KEY and INDEX_KEY not in dest.objects:
                dest.add(INDEX_KEY, stale.body(INDEX_KEY))

        dest.before_put = stale_index_first
        # WHEN forget indexes the log
        await index_log(dest)
        dest.before_put = None
        # THEN the index names both records, as the log does, and runs erase both subjects
        assert subjects(await load_erasure(dest, POLICY, by_index=True)) == ["s1", "s2"]
        assert len(await read_log(dest)) == 2

    asyncio.run(scenario())
