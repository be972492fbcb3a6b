"""`verify` from LISTs and ledgers: gaps, stale ETags, missing and orphan files, retired files."""

from __future__ import annotations

import asyncio
import datetime as dt

from archiver.config import Settings
from archiver.engine import ledger
from archiver.engine.api import compact, verify
from archiver.engine.ledger import Retired
from tests.unit.engine.jobs import job_body, job_key
from tests.unit.engine.memory_store import MemoryStore

SETTINGS = Settings(parse_workers=1, retire_grace_seconds=0)
HEAD = ledger.head_key("day=2024-08-20")


def clock() -> dt.datetime:
    return dt.datetime(2024, 8, 21, tzinfo=dt.UTC)


async def archived() -> tuple[MemoryStore, MemoryStore]:
    source, dest = MemoryStore(), MemoryStore()
    for job in ("100", "101", "102"):
        source.add(job_key(job), job_body(job))
    source.add(job_key("103"), b'{"id": ')  # quarantined
    await compact(source, dest, SETTINGS, clock=clock)
    return source, dest


def test_an_archived_window_verifies() -> None:
    async def scenario() -> None:
        source, dest = await archived()
        gets = source.counts.get
        report = await verify(source, dest, SETTINGS)
        assert report.ok and report.problems() == []
        assert (report.objects_checked, report.objects_archived, report.objects_quarantined) == (4, 3, 1)
        assert report.files_checked == len(ledger.decode_head(dest.body(HEAD)).files)
        assert source.counts.get == gets  # the source is listed, never read

    asyncio.run(scenario())


def test_a_new_object_and_a_changed_one_are_gaps() -> None:
    async def scenario() -> None:
        source, dest = await archived()
        source.add(job_key("200"), job_body("200"))
        source.add(job_key("100"), job_body("100", status="failed"))
        report = await verify(source, dest, SETTINGS)
        assert not report.ok
        assert report.not_archived == [job_key("200")]
        assert report.stale == [job_key("100")]
        assert report.as_dict()["counts"] == {
            "not_archived": 1,
            "stale": 1,
            "missing_files": 0,
            "damaged_files": 0,
            "orphan_files": 0,
        }

    asyncio.run(scenario())


def test_a_missing_data_file_and_an_orphan_are_found_but_a_retired_file_is_no_orphan() -> None:
    async def scenario() -> None:
        source, dest = await archived()
        head = ledger.decode_head(dest.body(HEAD))
        lost = head.files[0].key
        del dest.objects[lost]
        orphan = "jobs/date=2024-08-20/d20240820-g000009-dead-0000.parquet"
        foreign = "jobs/date=2024-08-20/someone-else.parquet"
        waiting = "jobs/date=2024-08-20/d20240820-g000000-old-0000.parquet"
        for key in (orphan, foreign, waiting):
            dest.add(key, b"PAR1")
        head.retired.append(Retired(waiting, 1))
        dest.add(HEAD, ledger.encode_head(head))
        report = await verify(source, dest, SETTINGS)
        assert report.missing_files == [lost]
        assert report.orphan_files == [orphan]
        assert report.not_archived == report.stale == []

    asyncio.run(scenario())
