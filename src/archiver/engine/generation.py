"""Version resolution: parsed objects into rows, index entries and removals for a unit's next generation.

A job is identified by (user_id, job_id). Its versions meet in one unit (they
share a job folder); the greatest `Rank` wins. A new winner replaces the old
winner's rows, which means removing them from the files that hold them
(`removals`, applied by copy-on-write in `compaction.py`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from archiver.engine.identity import event_identity
from archiver.engine.index import JobKey, UnitIndex
from archiver.engine.ledger import IndexEntry, Outcome
from archiver.engine.versions import Rank, rank_of
from archiver.engine.writer import UnitWriter
from archiver.formats.records import ActivityEvent, JobState, ParsedObject, Rejection, Row
from archiver.storage.store import ObjectInfo

ROW_TABLES = ("jobs", "job_lines", "activity")

Removals = dict[str, set[tuple[str, JobKey | None]]]
"""Data file key -> (source key, job) pairs whose rows must leave it; job None means every row of the key."""


@dataclass(slots=True)
class Parsed:
    """One fetched object, parsed, with the STAMP its key carries."""

    info: ObjectInfo
    parsed: ParsedObject
    stamp_us: int | None


class VersionResolver:
    """The winning version of every job the unit holds, old and new."""

    def __init__(self, index: UnitIndex) -> None:
        self.index = index
        self.winners: dict[JobKey, IndexEntry] = index.winners()
        self.versions: dict[JobKey, list[IndexEntry]] = index.versions()
        self.released: Removals = defaultdict(set)
        self.withdrawn: list[tuple[str, str]] = []
        """(source key, `day|identity`) of events that changed keys gave before."""

    def release_changed(self, changed: set[str]) -> list[str]:
        """Forget what changed keys contributed; return the keys of older versions that may win again."""
        refetch: set[str] = set()
        for key in changed:
            for entry in self.index.get(key):
                for file_key in entry.files:
                    self.released[file_key].add((key, entry.job))
                self.withdrawn.extend((key, event) for event in entry.events)
                job = entry.job
                if job is not None and self.winners.get(job) is entry:
                    del self.winners[job]
                    refetch.update(other.key for other in self.versions[job] if other.key not in changed)
        return sorted(refetch)


@dataclass(slots=True)
class GenerationBuilder:
    """Rows, index entries and removals of one generation, built one job folder at a time."""

    writer: UnitWriter
    resolver: VersionResolver
    entries: dict[str, list[IndexEntry]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROW_TABLES, 0))
    archived: int = 0
    quarantined: int = 0
    notes: list[str] = field(default_factory=list)
    activity: list[ActivityEvent] = field(default_factory=list)

    @property
    def removals(self) -> Removals:
        return self.resolver.released

    def add_group(self, group: list[Parsed]) -> None:
        candidates: dict[JobKey, list[tuple[Rank, ObjectInfo, JobState]]] = defaultdict(list)
        for item in group:
            info, parsed = item.info, item.parsed
            self.notes.extend(getattr(parsed, "notes", ()) or ())
            if parsed.rejection is not None:
                self.quarantine(info, parsed.rejection)
                continue
            self.archived += 1
            if parsed.activity:
                self._activity(info, parsed)
            for state in parsed.jobs:
                rank = rank_of(
                    state.row.get("status"),
                    state.row.get("completed_at"),
                    item.stamp_us,
                    info.last_modified_us,
                    info.key,
                )
                candidates[(state.row.get("user_id") or "", state.job_id)].append((rank, info, state))
        for job, versions in candidates.items():
            self._resolve(job, versions)

    def _entry(self, entry: IndexEntry) -> None:
        self.entries.setdefault(entry.key, []).append(entry)

    def quarantine(self, info: ObjectInfo, rejection: Rejection) -> None:
        row: Row = {
            "source_key": info.key,
            "source_etag": info.etag,
            "size": info.size,
            "reason": str(rejection.reason),
            "detail": rejection.detail,
        }
        file_key = self.writer.add_rows("quarantine", None, [row], 256)
        self.quarantined += 1
        self._entry(IndexEntry(info.key, info.etag, info.size, Outcome.QUARANTINE, files=(file_key,)))

    def _activity(self, info: ObjectInfo, parsed: ParsedObject) -> None:
        """Events go to the activity ledger of their day (see `activity.py`), which owns their rows."""
        self.activity.extend(parsed.activity)
        events = tuple(f"{event.day.isoformat()}|{event_identity(event.row)}" for event in parsed.activity)
        self._entry(IndexEntry(info.key, info.etag, info.size, Outcome.ACTIVITY, events=events))

    def _resolve(self, job: JobKey, versions: list[tuple[Rank, ObjectInfo, JobState]]) -> None:
        versions.sort(key=lambda version: version[0])
        best_rank, best_info, best_state = versions[-1]
        current = self.resolver.winners.get(job)
        losers = versions[:-1]
        if current is not None and current.rank is not None and current.rank >= best_rank:
            # An object read again (for another job's older version) may hold this job's
            # winner itself: it stays the winner, with its rows, in the key's new entries.
            losers = [v for v in versions if (v[1].key, v[1].etag) != (current.key, current.etag)]
            if len(losers) < len(versions) and not any(
                e is current for e in self.entries.get(current.key, ())
            ):
                self._entry(current)
        else:
            if current is not None:
                for file_key in current.files:
                    self.removals.setdefault(file_key, set()).add((current.key, job))
                self._demote(current)
            files: tuple[str, ...] = (self.writer.add_rows("jobs", best_state.day, [best_state.row], 512),)
            if best_state.lines:
                weight = max(best_info.size, 1)
                files += (self.writer.add_rows("job_lines", best_state.day, best_state.lines, weight),)
            self.rows["jobs"] += 1
            self.rows["job_lines"] += len(best_state.lines)
            self.resolver.winners[job] = self._version(
                Outcome.JOB, job, best_rank, best_info, best_state, files
            )
        for rank, info, state in losers:
            self._version(Outcome.SUPERSEDED, job, rank, info, state, ())

    def _demote(self, current: IndexEntry) -> None:
        """The old winner loses: its key's entries are re-recorded in this generation's segment."""
        if current.key not in self.entries:
            for entry in self.resolver.index.get(current.key):
                if entry is not current:
                    self._entry(entry)
            self._entry(current)
        current.outcome = Outcome.SUPERSEDED
        current.files = ()

    def _version(
        self,
        outcome: Outcome,
        job: JobKey,
        rank: Rank,
        info: ObjectInfo,
        state: JobState,
        files: tuple[str, ...],
    ) -> IndexEntry:
        """Record one version of a job in the index: the winner (with its files) or a loser."""
        entry = IndexEntry(
            info.key,
            info.etag,
            info.size,
            outcome,
            user_id=job[0],
            job_id=job[1],
            day=state.day,
            rank=rank,
            files=files,
        )
        self._entry(entry)
        self.resolver.versions.setdefault(job, []).append(entry)
        return entry
