"""Holdings: the data folders a run's seen markers digest, listed once per run and kept current."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from archiver.engine.holdings import Holdings
from archiver.storage.store import ListPage
from tests.unit.engine.memory_store import MemoryStore


class AnswerLog(MemoryStore):
    """A MemoryStore that remembers every key its listings answered."""

    def __init__(self) -> None:
        super().__init__(page_size=4)
        self.answered: list[str] = []

    async def list_pages(
        self, prefix: str, *, delimiter: str | None = None, start_after: str | None = None
    ) -> AsyncIterator[ListPage]:
        async for page in super().list_pages(prefix, delimiter=delimiter, start_after=start_after):
            self.answered.extend(info.key for info in page.objects)
            yield page


def archive_of_ten_days(quarantined: int = 1) -> AnswerLog:
    """Two files a day in jobs/ and job_lines/, `quarantined` quarantine files a day, days 10 to 19."""
    dest = AnswerLog()
    for day in range(10, 20):
        for table in ("jobs", "job_lines"):
            for part in ("a", "b"):
                dest.add(f"{table}/date=2024-08-{day}/d202408{day}-g000001-{part}.parquet", b"x" * day)
        for number in range(quarantined):
            dest.add(f"quarantine/d202408{day}-g00000{number}-q.parquet", b"q")
    return dest


def wanted(days: list[int]) -> list[str]:
    return [
        prefix
        for day in days
        for prefix in (
            f"jobs/date=2024-08-{day}/",
            f"job_lines/date=2024-08-{day}/",
            f"quarantine/d202408{day}",
        )
    ]


async def listed(dest: AnswerLog, prefix: str) -> list[tuple[str, int]]:
    return [(info.key, info.size) async for page in dest.list_pages(prefix) for info in page.objects]


def test_every_prefix_holds_what_its_own_listing_holds_for_fewer_lists() -> None:
    async def scenario() -> None:
        # GIVEN ten days of data files, and a run whose roots are days 12 to 14 and 18
        dest = archive_of_ten_days()
        prefixes = wanted([12, 13, 14, 18])
        # WHEN the holdings list the roots' prefixes
        holdings = Holdings(dest)
        await holdings.load(prefixes)
        lists = dest.counts.list
        # THEN each prefix holds exactly what listing it alone gives, with no further request
        expected = {prefix: await listed(dest, prefix) for prefix in prefixes}
        alone = dest.counts.list - lists
        for prefix in prefixes:
            assert await holdings.under(prefix) == expected[prefix]
        assert dest.counts.list == lists + alone
        # AND the three folders took fewer LISTs than the prefixes one at a time: pages of 4 keys from
        # day 12, a new LIST at day 18 where a page ended on day 15 (jobs/ and job_lines/: days 12-13,
        # 14-15, 18-19; quarantine/: days 12-15, 18-19), and nothing past the page that reached day 19
        assert lists < alone
        assert lists == 3 + 3 + 2
        # AND a prefix no root wanted is listed when asked, as before
        before = dest.counts.list
        assert await holdings.under("jobs/date=2024-08-11/") == await listed(dest, "jobs/date=2024-08-11/")
        assert dest.counts.list > before

    asyncio.run(scenario())


def test_pages_that_end_between_prefixes_start_again_at_the_next_one() -> None:
    async def scenario() -> None:
        # GIVEN five quarantine files a day (more than a page of 4), and roots of days 12 and 18
        dest = archive_of_ten_days(quarantined=5)
        prefixes = wanted([12, 18])
        # WHEN the holdings list them
        holdings = Holdings(dest)
        await holdings.load(prefixes)
        answered = set(dest.answered)
        # THEN the quarantine listing read no file of days 10 and 11 (it started at day 12), started
        # again at day 18 where a page ended on day 13, so it read no file of days 14 to 17 either, and
        # stopped at the page that ended past day 18
        days = {key[len("quarantine/d202408") :][:2] for key in answered if key.startswith("quarantine/")}
        assert days == {"12", "13", "18", "19"}
        # AND every prefix holds what its own listing gives
        for prefix in prefixes:
            assert await holdings.under(prefix) == await listed(dest, prefix)
        # AND prefixes already held cost no further request
        start = dest.counts.list
        await holdings.load(wanted([12, 18]))
        assert dest.counts.list == start

    asyncio.run(scenario())


def test_the_runs_own_uploads_and_deletions_are_applied() -> None:
    async def scenario() -> None:
        # GIVEN holdings listed for day 15
        dest = archive_of_ten_days()
        holdings = Holdings(dest)
        await holdings.load(wanted([15]))
        # WHEN a commit uploads a file of day 15 and one of day 16, and deletes one of day 15
        holdings.uploaded("jobs/date=2024-08-15/d20240815-g000002-c.parquet", 7)
        holdings.uploaded("jobs/date=2024-08-16/d20240816-g000002-c.parquet", 7)
        holdings.deleted(["jobs/date=2024-08-15/d20240815-g000001-a.parquet"])
        # THEN day 15 holds what a listing of the archive so changed would give
        assert await holdings.under("jobs/date=2024-08-15/") == [
            ("jobs/date=2024-08-15/d20240815-g000001-b.parquet", 15),
            ("jobs/date=2024-08-15/d20240815-g000002-c.parquet", 7),
        ]
        # AND the upload outside the listed prefixes is not held (day 16 is listed when asked)
        assert not holdings.covers("jobs/date=2024-08-16/d20240816-g000002-c.parquet")

    asyncio.run(scenario())


def test_an_empty_archive_costs_one_list_per_folder() -> None:
    async def scenario() -> None:
        # GIVEN an empty archive
        dest = AnswerLog()
        # WHEN the holdings list thirty days
        holdings = Holdings(dest)
        await holdings.load(wanted(list(range(10, 31))))
        # THEN one LIST per folder, and nothing held
        assert dest.counts.list == 3
        assert await holdings.under("jobs/date=2024-08-15/") == []

    asyncio.run(scenario())
