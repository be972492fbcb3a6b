"""Version resolution: winners keyed by (user_id, job_id), removals of old winners, quarantine, activity."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from archiver.engine.generation import GenerationBuilder, Parsed, VersionResolver
from archiver.engine.identity import event_identity
from archiver.engine.index import UnitIndex, merge_segments
from archiver.engine.ledger import IndexEntry, Outcome
from archiver.engine.versions import rank_of
from archiver.engine.writer import UnitWriter
from tests.unit.engine.jobs import job_body, job_dict, job_key, parsed

DAY = dt.date(2024, 8, 20)
CASES = Path(__file__).resolve().parents[2] / "cases"
OLD_JOBS = "jobs/date=2024-08-20/d20240820-g000001-old-0000.parquet"
OLD_LINES = "job_lines/date=2024-08-20/d20240820-g000001-old-0000.parquet"


def entry_of(item: Parsed, outcome: Outcome, job: str, files: tuple[str, ...] = ()) -> IndexEntry:
    """The index entry an earlier generation recorded for one job of a parsed object."""
    state = next(state for state in item.parsed.jobs if state.job_id == job)
    rank = rank_of(
        state.row.get("status"),  # type: ignore[arg-type]
        state.row.get("completed_at"),  # type: ignore[arg-type]
        item.stamp_us,
        item.info.last_modified_us,
        item.info.key,
    )
    user = state.row.get("user_id") or ""
    return IndexEntry(
        item.info.key, item.info.etag, item.info.size, outcome, str(user), job, state.day, rank, files
    )


def index_of(*entries: IndexEntry) -> UnitIndex:
    return UnitIndex(by_key=merge_segments([list(entries)]), segments={"s": list(entries)})


@pytest.fixture
def writer(tmp_path: Path) -> UnitWriter:
    return UnitWriter(
        owner="d20240820",
        generation=2,
        token="tok",
        workdir=tmp_path,
        target_bytes=1 << 28,
        row_group_rows=1000,
    )


def rows_of(files: list[Path]) -> list[dict[str, object]]:
    return [row for path in files for row in pq.read_table(path).to_pylist()]


def test_a_terminal_version_beats_a_running_one_in_the_same_folder(writer: UnitWriter) -> None:
    # GIVEN a new job folder with a running and a succeeded version
    running = parsed(job_key("100", stamp="101500", status="running"), job_body("100", status="running"))
    done = parsed(job_key("100", stamp="101600"), job_body("100", lines=2))
    builder = GenerationBuilder(writer, VersionResolver(UnitIndex()))
    # WHEN the folder is added as one group
    builder.add_group([running, done])
    # THEN the succeeded version wins with its rows, the running one is recorded as superseded
    assert builder.entries[done.info.key][0].outcome is Outcome.JOB
    assert len(builder.entries[done.info.key][0].files) == 2
    assert builder.entries[running.info.key][0].outcome is Outcome.SUPERSEDED
    assert builder.entries[running.info.key][0].files == ()
    assert builder.rows == {"jobs": 1, "job_lines": 2, "activity": 0}
    assert builder.archived == 2 and not builder.removals
    files = [written.path for written in writer.close()]
    assert [row["source_key"] for row in rows_of(files) if "status" in row] == [done.info.key]


def test_two_workspaces_with_the_same_job_id_are_two_jobs(writer: UnitWriter) -> None:
    # GIVEN job 100 of workspace 5234 already archived
    mine = parsed(job_key("100", user_id="5234"), job_body("100", user_id="5234"))
    index = index_of(entry_of(mine, Outcome.JOB, "100", (OLD_JOBS, OLD_LINES)))
    builder = GenerationBuilder(writer, VersionResolver(index))
    # WHEN job 100 of workspace 6000 arrives, terminal and later
    theirs = parsed(
        job_key("100", user_id="6000", stamp="235900"),
        job_body("100", user_id="6000", completed_at="2024-08-20T23:59:00Z"),
    )
    builder.add_group([theirs])
    # THEN it is a second winner: nothing of workspace 5234's job is removed or demoted
    assert not builder.removals
    assert mine.info.key not in builder.entries
    assert set(builder.resolver.winners) == {("5234", "100"), ("6000", "100")}
    assert builder.entries[theirs.info.key][0].job == ("6000", "100")
    assert builder.rows["jobs"] == 1


def test_a_new_winner_removes_the_old_winners_rows_and_demotes_it(writer: UnitWriter) -> None:
    # GIVEN a running version archived as the job's winner
    old = parsed(job_key("100", stamp="101500", status="running"), job_body("100", status="running"))
    old_entry = entry_of(old, Outcome.JOB, "100", (OLD_JOBS, OLD_LINES))
    builder = GenerationBuilder(writer, VersionResolver(index_of(old_entry)))
    # WHEN the succeeded version arrives
    new = parsed(job_key("100", stamp="101600"), job_body("100"))
    builder.add_group([new])
    # THEN the old winner's rows leave both files it is in, and it is re-recorded as superseded
    job = ("5234", "100")
    assert builder.removals == {OLD_JOBS: {(old.info.key, job)}, OLD_LINES: {(old.info.key, job)}}
    assert [(e.outcome, e.files) for e in builder.entries[old.info.key]] == [(Outcome.SUPERSEDED, ())]
    assert builder.entries[new.info.key][0].outcome is Outcome.JOB
    assert builder.resolver.winners[job].key == new.info.key


def test_a_late_older_version_is_recorded_as_superseded_and_changes_nothing(writer: UnitWriter) -> None:
    # GIVEN the succeeded version archived as the winner
    done = parsed(job_key("100", stamp="101600"), job_body("100"))
    builder = GenerationBuilder(
        writer, VersionResolver(index_of(entry_of(done, Outcome.JOB, "100", (OLD_JOBS,))))
    )
    # WHEN a running version shows up late
    late = parsed(job_key("100", stamp="101500", status="running"), job_body("100", status="running"))
    builder.add_group([late])
    # THEN it loses: no rows, no removals, the winner's entry untouched
    assert builder.entries == {late.info.key: [builder.entries[late.info.key][0]]}
    assert builder.entries[late.info.key][0].outcome is Outcome.SUPERSEDED
    assert not builder.removals and builder.rows["jobs"] == 0
    assert builder.resolver.winners[("5234", "100")].files == (OLD_JOBS,)


def test_an_unreadable_object_is_quarantined_with_its_reason(writer: UnitWriter) -> None:
    bad = parsed(job_key("100"), b'{"id": 100, "status": ')
    builder = GenerationBuilder(writer, VersionResolver(UnitIndex()))
    builder.add_group([bad])
    (entry,) = builder.entries[bad.info.key]
    assert entry.outcome is Outcome.QUARANTINE and entry.files[0].startswith(
        "quarantine/d20240820-g000002-tok"
    )
    assert (builder.quarantined, builder.archived) == (1, 0)
    (row,) = rows_of([written.path for written in writer.close()])
    assert (row["source_key"], row["reason"]) == (bad.info.key, "truncated")


def test_an_activity_object_hands_its_events_to_the_day_they_happened(writer: UnitWriter) -> None:
    # GIVEN an activity object
    event = parsed("activity/2020-05-02/recipe-created.json", (CASES / "recipe_created.json").read_bytes())
    builder = GenerationBuilder(writer, VersionResolver(UnitIndex()))
    # WHEN it is added
    builder.add_group([event])
    # THEN its event waits for the activity ledger of its day (which owns activity rows),
    # and the index entry names that day and the event's identity, no file of the unit's
    (entry,) = builder.entries[event.info.key]
    assert entry.outcome is Outcome.ACTIVITY and entry.job is None and entry.files == ()
    (held,) = builder.activity
    assert held.day == dt.date(2020, 5, 2) and held.row["event"] == "recipe_created"
    assert entry.events == (f"2020-05-02|{event_identity(held.row)}",)
    assert not writer.close()


def test_release_changed_forgets_a_changed_winner_and_names_the_versions_to_read_again(
    writer: UnitWriter,
) -> None:
    # GIVEN a job with a running version and a succeeded winner
    running = parsed(job_key("100", stamp="101500", status="running"), job_body("100", status="running"))
    done = parsed(job_key("100", stamp="101600"), job_body("100"))
    resolver = VersionResolver(
        index_of(
            entry_of(running, Outcome.SUPERSEDED, "100"), entry_of(done, Outcome.JOB, "100", (OLD_JOBS,))
        )
    )
    # WHEN the winner's key gets a new version (a new ETag)
    refetch = resolver.release_changed({done.info.key})
    # THEN its rows are released, the job has no winner, and the older version must be read again
    assert refetch == [running.info.key]
    assert resolver.released == {OLD_JOBS: {(done.info.key, ("5234", "100"))}}
    assert ("5234", "100") not in resolver.winners
    # AND a change to a loser asks for nothing
    assert VersionResolver(resolver.index).release_changed({running.info.key}) == []


def test_a_reread_object_keeps_the_winner_it_holds_for_another_job(writer: UnitWriter) -> None:
    # GIVEN an export holding two jobs: job 1 running (superseded by another export) and job 2, its winner
    a_key, b_key = "exports/2024-08-20/a.json", "exports/2024-08-20/b.json"
    a = parsed(a_key, orjson.dumps([job_dict("1", status="running", completed_at=None), job_dict("2")]))
    b = parsed(b_key, job_body("1", completed_at="2024-08-20T10:20:00Z"))
    a_file, b_file = "jobs/date=2024-08-20/l20240820-g000001-a-0000.parquet", "jobs/date=2024-08-20/b.parquet"
    index = index_of(
        entry_of(a, Outcome.SUPERSEDED, "1"),
        entry_of(a, Outcome.JOB, "2", (a_file,)),
        entry_of(b, Outcome.JOB, "1", (b_file,)),
    )
    resolver = VersionResolver(index)
    builder = GenerationBuilder(writer, resolver)
    # WHEN B gets a new version, A is read again for job 1, then B's new version is added
    assert resolver.release_changed({b_key}) == [a_key]
    builder.add_group([a])
    b2 = parsed(b_key, job_body("1", status="failed", completed_at="2024-08-20T10:30:00Z"), etag='"e2"')
    builder.add_group([b2])
    # THEN job 2 is still A's winner, its rows where they were: A's new entries say so
    a_entries = {entry.job_id: entry for entry in builder.entries[a_key]}
    assert a_entries["2"].outcome is Outcome.JOB
    assert a_entries["2"].files == (a_file,)
    assert all(job != ("5234", "2") for drops in builder.removals.values() for _, job in drops)
    # AND job 1's winner is B's new version, A's copy of it superseded
    assert a_entries["1"].outcome is Outcome.SUPERSEDED
    assert resolver.winners[("5234", "1")].etag == '"e2"'
    assert resolver.winners[("5234", "2")].key == a_key
    assert builder.rows["jobs"] == 2  # job 1 from A (then removed again) and from B; job 2 not rewritten
