"""A deterministic synthetic corpus of Workato audit-log objects in the documented S3 layout.

The corpus is an independent source of truth for the archiver: every object comes
with a `Truth` that says what the archive must make of it (a job version and whether
it wins, an activity event, a quarantined object and why, or a skipped key). It
deliberately does not import the parsing modules, so tests can compare the
archiver's output against it instead of against the archiver's own reading.

Everything derives from one seeded `random.Random`; there is no wall clock and no
iteration over hash-ordered sets, so the same arguments give the same bytes in
every process.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import random
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from archiver.formats.layout import format_day

Json = dict[str, Any]

KIND_JOB = "job"
KIND_ACTIVITY = "activity"
KIND_QUARANTINE = "quarantine"
KIND_SKIP = "skip"

# Job stream types, as the `jobs.stream_type` column names them.
JOB_HISTORY = "job_history"
JOB_SUMMARY = "job_summary"
JOB_STATUS = "job_status"
JOB_DETAILS = "job_details"

# Activity stream types (the `activity.stream_type` extension column).
USER_ACTIVITY = "user_activity"
ACTIVITY_EVENT = "activity_event"
PROJECT_DEPLOYMENT = "project_deployment"
ACTIVITY_API = "activity_api"

# How a job object is wrapped in its file. Custom wrappers and bare JSON strings
# hold a job-history object (with lines), so their stream type is `job_history`.
ENVELOPE_STREAM: dict[str, str] = {
    "bare": JOB_HISTORY,
    "summary": JOB_SUMMARY,
    "status": JOB_STATUS,
    "details": JOB_DETAILS,
    "log_entries": JOB_HISTORY,
    "workato_event": JOB_HISTORY,
    "json_string": JOB_HISTORY,
}
LINE_ENVELOPES = frozenset({"bare", "details", "log_entries", "workato_event", "json_string"})

LINES_DROPPED = "Log lines exceed size limit"
# Full job details written on or after this date omit the duplicated fields.
FORMAT_CHANGE = dt.date(2024, 9, 1)
NEW_FORMAT_DROPPED_CONTEXT = (
    "repeated_job",
    "job_created_at",
    "job_id",
    "master_job_id",
    "calling_recipe_id",
    "calling_job_id",
    "is_repeat",
    "repeat_count",
    "parent_job_id",
)
TERMINAL_STATUSES = ("succeeded", "failed")
NON_TERMINAL_STATUSES = ("pending", "running")
QUARANTINE_REASONS = ("empty", "truncated", "invalid_json", "unrecognized")

BIG_OBJECT_BYTES = 39_000_000
_DAY_US = 86_400 * 1_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Truth:
    """What the archiver must make of one object.

    `kind` is "job", "activity", "quarantine" or "skip". For job objects, `day`,
    `user_id` and `recipe_id` are the key's folders, `is_final` marks the version of
    the job that must win, and `line_count`/`lines_truncated` are None when the
    stream type carries no lines (an oversized job has `line_count` 0 and
    `lines_truncated` True). For activity, `day` is the UTC date of the event (the
    archive's partition) and `user_id` the key's user folder, if any; a project
    deployment names no event, so its `event` is None. Quarantined objects carry the
    expected `reason`, and the key's folders when the key is in the job layout.
    """

    kind: str
    stream_type: str | None = None
    envelope: str | None = None  # how the object is wrapped (see ENVELOPE_STREAM, activity stream types)
    layout: str | None = None  # "standard", "embedded", or None outside the job layout
    format: str | None = None  # "old" / "new" for full job details, else None
    user_id: str | None = None
    recipe_id: str | None = None
    day: dt.date | None = None
    job_id: str | None = None
    status: str | None = None
    is_final: bool = False
    line_count: int | None = None
    lines_truncated: bool | None = None
    masked_lines: int | None = None  # lines with mask_data true
    timed_lines: int | None = None  # lines carrying line_stat (duration_s not null)
    started_us: int | None = None  # UTC microseconds
    completed_us: int | None = None
    error_type: str | None = None
    event: str | None = None
    occurred_us: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SynthObject:
    """One object of the corpus: its key, its exact bytes, and what it means."""

    key: str
    body: bytes
    truth: Truth


@dataclass(frozen=True, slots=True)
class ExpectedArchive:
    """What an archive built from a corpus must hold, derived from the truths alone."""

    jobs: frozenset[tuple[str, str, int | None, bool | None]]  # (job_id, status, line_count, lines_truncated)
    finals: dict[str, Truth] = field(repr=False)  # job_id -> the winning version
    jobs_by_day: dict[dt.date, int]
    job_lines: int
    masked_lines: int
    timed_lines: int
    activity: int
    activity_by_day: dict[dt.date, int]
    quarantine: dict[str, str] = field(repr=False)  # key -> reason
    skipped: frozenset[str] = field(repr=False)


@dataclass(frozen=True, slots=True)
class CorpusSummary:
    """Counts of a written corpus, plus what the archive built from it must hold."""

    objects: int
    total_bytes: int
    jobs: int  # distinct jobs
    final_jobs: int  # objects holding a job's winning version (== jobs)
    job_versions: int  # every job object, superseded versions included
    job_lines: int  # job_lines rows the archive must hold
    activity_events: int
    quarantined: int
    skipped: int
    by_kind: dict[str, int]
    by_stream_type: dict[str, int]
    by_reason: dict[str, int]
    expected: ExpectedArchive = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The counts as plain JSON-ready values (for the CLI and reports)."""
        return {
            "objects": self.objects,
            "bytes": self.total_bytes,
            "jobs": self.jobs,
            "final_jobs": self.final_jobs,
            "job_versions": self.job_versions,
            "job_lines": self.job_lines,
            "activity_events": self.activity_events,
            "quarantined": self.quarantined,
            "skipped": self.skipped,
            "by_kind": dict(self.by_kind),
            "by_stream_type": dict(self.by_stream_type),
            "by_reason": dict(self.by_reason),
        }


# --------------------------------------------------------------------------- public API


def generate(
    jobs: int,
    seed: int = 0,
    start: dt.date = dt.date(2024, 8, 20),
    days: int = 30,
    *,
    big_objects: int = 0,
) -> Iterator[SynthObject]:
    """Yield the corpus lazily: `jobs` distinct jobs (plus their earlier versions),
    user activity, malformed and non-JSON objects, and `big_objects` ~39 MB jobs."""
    if jobs < 0 or days < 1 or big_objects < 0:
        raise ValueError("jobs and big_objects must be >= 0 and days >= 1")
    return _Corpus(jobs, seed, start, days, big_objects).objects()


def expected_archive(objects: Iterable[SynthObject]) -> ExpectedArchive:
    """What the archive must hold for these objects; consumes them one at a time."""
    expectation = _Expectation()
    for obj in objects:
        expectation.add(obj)
    return expectation.build()


def write_corpus(
    outdir: Path,
    jobs: int,
    seed: int = 0,
    start: dt.date = dt.date(2024, 8, 20),
    days: int = 30,
    *,
    big_objects: int = 0,
) -> CorpusSummary:
    """Write every object under `outdir` with its key as relative path (existing files
    with the same keys are overwritten, others are left alone) and count them."""
    root = os.fspath(outdir)
    made: set[str] = set()
    expectation = _Expectation()
    total_bytes = 0
    objects = 0
    for obj in generate(jobs, seed, start, days, big_objects=big_objects):
        path = os.path.join(root, *obj.key.split("/"))
        folder = os.path.dirname(path)
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        with open(path, "wb") as handle:
            handle.write(obj.body)
        objects += 1
        total_bytes += len(obj.body)
        expectation.add(obj)
    expected = expectation.build()
    return CorpusSummary(
        objects=objects,
        total_bytes=total_bytes,
        jobs=len(expected.finals),
        final_jobs=expectation.final_objects,
        job_versions=expectation.kinds[KIND_JOB],
        job_lines=expected.job_lines,
        activity_events=expected.activity,
        quarantined=len(expected.quarantine),
        skipped=len(expected.skipped),
        by_kind=dict(sorted(expectation.kinds.items())),
        by_stream_type=dict(sorted(expectation.stream_types.items())),
        by_reason=dict(sorted(expectation.reasons.items())),
        expected=expected,
    )


def synth_command(outdir: Path, jobs: int, seed: int) -> CorpusSummary:
    """`archiver synth OUTDIR --jobs N --seed S`: write the default corpus."""
    return write_corpus(outdir, jobs, seed)


# --------------------------------------------------------------------------- expectations


class _Expectation:
    """Folds truths into an ExpectedArchive without keeping the objects' bodies."""

    def __init__(self) -> None:
        self.finals: dict[str, Truth] = {}
        self.final_objects = 0
        self.activity = 0
        self.activity_by_day: Counter[dt.date] = Counter()
        self.quarantine: dict[str, str] = {}
        self.skipped: set[str] = set()
        self.kinds: Counter[str] = Counter({KIND_JOB: 0, KIND_ACTIVITY: 0, KIND_QUARANTINE: 0, KIND_SKIP: 0})
        self.stream_types: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()

    def add(self, obj: SynthObject) -> None:
        truth = obj.truth
        self.kinds[truth.kind] += 1
        if truth.stream_type:
            self.stream_types[truth.stream_type] += 1
        if truth.kind == KIND_JOB and truth.is_final and truth.job_id is not None:
            self.final_objects += 1
            self.finals[truth.job_id] = truth
        elif truth.kind == KIND_ACTIVITY:
            self.activity += 1
            if truth.day is not None:
                self.activity_by_day[truth.day] += 1
        elif truth.kind == KIND_QUARANTINE and truth.reason is not None:
            self.quarantine[obj.key] = truth.reason
            self.reasons[truth.reason] += 1
        elif truth.kind == KIND_SKIP:
            self.skipped.add(obj.key)

    def build(self) -> ExpectedArchive:
        finals = self.finals.values()
        by_day: Counter[dt.date] = Counter(t.day for t in finals if t.day is not None)
        return ExpectedArchive(
            jobs=frozenset((t.job_id or "", t.status or "", t.line_count, t.lines_truncated) for t in finals),
            finals=dict(self.finals),
            jobs_by_day=dict(sorted(by_day.items())),
            job_lines=sum(t.line_count or 0 for t in finals),
            masked_lines=sum(t.masked_lines or 0 for t in finals),
            timed_lines=sum(t.timed_lines or 0 for t in finals),
            activity=self.activity,
            activity_by_day=dict(sorted(self.activity_by_day.items())),
            quarantine=dict(self.quarantine),
            skipped=frozenset(self.skipped),
        )


# --------------------------------------------------------------------------- vocabulary

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_PEOPLE = (
    "Gabriel Sim", "Alex Nur", "Ariel Quinn", "Taylor Cruz", "José Álvarez", "Zoë Müller",
    "Søren Håkansson", "Ana Łukasiewicz", "李雷", "山田 太郎", "김민준", "Priya Raghunathan",
    "Chloé Dubois", "Mateus Gonçalves", "Ömer Yıldız", "Олег Петров",
)  # fmt: skip
_TEAMS = (
    "ACME",
    "Globex Ops",
    "Initech HR",
    "Umbrella Logistics",
    "Société Générale d'Intégration",
    "株式会社サンプル",
)
_RECIPE_NAMES = (
    "Update customer contact details", "Employee onboarding", "Data processing task",
    "Sync Salesforce accounts to NetSuite", "Nightly invoice export", "Créer les commandes clients",
    "Bestellungen an SAP übertragen", "注文データを同期する", "Slack alerts for failed payments 🚨",
    "Lead scoring", "Ticket triage → Jira", "Close won opportunities", "Candidate in progress on Greenhouse",
    "[CICD] | FUN-003 | Deploy via Projects", "Renewals pipeline", "同步客户数据",
)  # fmt: skip
_FOLDERS = (
    "Home",
    "Home/Functions",
    "Home/Finance",
    "Home/HR/Onboarding",
    "Home/Ventes & Marketing",
    "Home/運用",
)
_MESSAGES = (
    "Order received ✅", "Commande reçue, merci !", "注文を処理しました", "处理完成 🎉", "Überweisung fällig",
    "Café déjà vu 🚀", "Заказ создан", "Payment captured", "Contact upserted", "¡Listo! 👍",
)  # fmt: skip
_ERRORS = (
    ("Bad data sent to API server", "Invalid Salesforce ID value(s) for: AccountId"),
    ("Timeout", "Request timed out after 180 seconds"),
    ("Authentication error", "401 Unauthorized: token expired"),
    ("Rate limit exceeded", "429 Too Many Requests: retry after 60s"),
    ("Data error", "Champ obligatoire manquant : « Nom du client »"),
    ("Server error", "500 Internal Server Error — upstream unavailable"),
)
_PLAIN_ERRORS = (
    "Net::ReadTimeout: execution expired",
    "undefined method `[]' for nil:NilClass",
    "Job was stopped because the recipe was stopped",
)
_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_TZ_NAMES = {-480: "PST", -420: "PDT", -240: "EDT", -180: "BRT", 0: "UTC", 60: "CET", 120: "CEST", 330: "IST"}
_TZ_NAMES |= {540: "JST", 600: "AEST"}
_OFFSETS = tuple(_TZ_NAMES)
_TRIGGERS = ("clock", "function", "salesforce", "webhook")
_ACTIONS = (
    ("logger", "log_message"),
    ("salesforce", "create_custom_object"),
    ("salesforce", "search_sobjects"),
    ("rest", "make_request"),
    ("snowflake", "run_custom_sql"),
    ("slack", "post_message"),
    ("netsuite", "search_records"),
    ("jira", "create_issue"),
    ("lookup_table", "lookup_entry"),
    ("google_sheets", "add_spreadsheet_row"),
)
_STAT_NAMES = (
    "map_input",
    "normalize_input",
    "render_input",
    "execute",
    "parse_output",
    "summarize_output_report",
)
_ENVELOPE_WEIGHTS = (
    ("bare", 38),
    ("details", 27),
    ("status", 15),
    ("summary", 12),
    ("log_entries", 3),
    ("workato_event", 3),
    ("json_string", 2),
)
_SCENARIO_WEIGHTS = (
    ("single", 900),
    ("progress", 50),
    ("progress3", 20),
    ("rerun", 15),
    ("rerun_late", 5),
    ("late_progress", 5),
    ("tie", 5),
)
_STAMP14_SCENARIOS = frozenset({"rerun_late", "late_progress", "tie"})
# (event, resource type); details extras are added per event in _event().
_EVENTS = (
    ("user_login", "User"), ("user_logout", "User"), ("recipe_created", "Flow"), ("recipe_updated", "Flow"),
    ("recipe_deleted", "Flow"), ("recipe_copied", "Flow"), ("recipe_renamed", "Flow"),
    ("recipe_started", "Flow"), ("recipe_stopped", "Flow"), ("folder_created", "Folder"),
    ("folder_deleted", "Folder"), ("connection_created", "SharedAccount"),
    ("connection_updated", "SharedAccount"), ("connection_connected", "SharedAccount"),
    ("connection_disconnected", "SharedAccount"), ("connection_deleted", "SharedAccount"),
    ("package_exported", "Package"), ("package_imported", "Package"), ("manifest_updated", "ExportManifest"),
    ("team_invitation_created", "MemberInvitation"), ("team_invitation_accept", "MemberInvitation"),
    ("team_membership_deleted", "ManagedUserGrant"), ("connector_updated", "Adapter"),
)  # fmt: skip


# --------------------------------------------------------------------------- time rendering


def _moment(us: int, offset_min: int) -> dt.datetime:
    tz = dt.timezone(dt.timedelta(minutes=offset_min))
    return (_EPOCH + dt.timedelta(microseconds=us)).astimezone(tz)


def _offset_text(offset_min: int, colon: bool) -> str:
    sign = "+" if offset_min >= 0 else "-"
    hours, minutes = divmod(abs(offset_min), 60)
    return f"{sign}{hours:02d}:{minutes:02d}" if colon else f"{sign}{hours:02d}{minutes:02d}"


def _iso(us: int, offset_min: int, digits: int, zulu: bool = False) -> str:
    """ISO 8601 with offset, e.g. `2022-10-19T22:30:46-07:00`, with 0, 3 or 6 fraction digits."""
    m = _moment(us, offset_min)
    text = f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
    if digits:
        text += f".{m.microsecond:06d}"[: digits + 1]
    if zulu and offset_min == 0:
        return text + "Z"
    return text + _offset_text(offset_min, colon=True)


def _spaced(us: int, offset_min: int, *, utc_word: bool = False, zone: bool = False) -> str:
    """The activity/`Time` forms: `2020-05-02 02:39:22 UTC`, `2019-11-24 14:29:30 -0800`,
    `2023-09-07 02:07:15.979 -0800 PST`."""
    if utc_word:
        offset_min = 0
    m = _moment(us, offset_min)
    text = f"{m.year:04d}-{m.month:02d}-{m.day:02d} {m.hour:02d}:{m.minute:02d}:{m.second:02d}"
    if utc_word:
        return text + " UTC"
    if zone:
        millis = m.microsecond // 1000
        return f"{text}.{millis:03d} {_offset_text(offset_min, colon=False)} {_TZ_NAMES[offset_min]}"
    return f"{text} {_offset_text(offset_min, colon=False)}"


def _stamp(us: int, long: bool) -> str:
    m = _moment(us, 0)
    day = f"{m.year:04d}{m.month:02d}{m.day:02d}"
    return f"{day}{m.hour:02d}{m.minute:02d}{m.second:02d}" if long else day


def _day_start_us(day: dt.date) -> int:
    return (dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) - _EPOCH) // dt.timedelta(microseconds=1)


def _utc_day(us: int) -> dt.date:
    return (_EPOCH + dt.timedelta(microseconds=us)).date()


def _dumps(value: Any, pretty: bool = False) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 if pretty else 0)


# --------------------------------------------------------------------------- the world


@dataclass(frozen=True, slots=True)
class _Recipe:
    id: int
    name: str
    path: str
    trigger: str
    actions: tuple[tuple[str, str], ...]
    line_numbers: tuple[int, ...]  # recipe_line_number of the trigger and each action
    masked: tuple[bool, ...]  # mask_data per line
    report_columns: int


@dataclass(frozen=True, slots=True)
class _User:
    id: int
    name: str
    email: str
    team: str
    env_type: str
    env_id: int
    offset: int  # the workspace's usual UTC offset in minutes
    embedded: bool
    recipes: tuple[_Recipe, ...]
    recipe_weights: tuple[float, ...]
    members: tuple[tuple[int, str, str], ...]  # (id, name, email)


@dataclass(frozen=True, slots=True)
class _Overrides:
    """Fixed choices for the plans that guarantee coverage of every feature."""

    envelope: str | None = None
    era: str | None = None  # "old" / "new": day before / on-or-after the format change
    embedded: bool | None = None
    scenario: str | None = None
    status: str | None = None
    failure: str | None = None  # "json" / "plain"
    oversized: bool = False
    large: bool = False
    log_str: str | None = None  # "same" / "broken" / "stale"
    long_stamp: bool | None = None
    recipe_index: int | None = None


@dataclass(slots=True)
class _Plan:
    user: _User
    recipe: _Recipe
    day: dt.date
    job_id: str  # as in the key (numeric text for the embedded layout)
    body_id: int | str
    envelope: str
    status: str
    scenario: str
    failure: str | None
    oversized: bool
    large: bool
    log_str: str
    long_stamp: bool
    digits: int
    offset: int
    zulu: bool
    string_ids: bool
    pretty: bool
    master_job_id: str
    calling: tuple[str, int] | None
    repeat_count: int
    is_test: bool
    title: str


@dataclass(slots=True)
class _Version:
    status: str
    started_us: int
    completed_us: int | None
    stamp_us: int
    lines: list[Json] | str  # str: LINES_DROPPED
    error: str | None
    error_type: str | None
    envelope: str
    final: bool


class _Corpus:
    """Holds the seeded random state and the world (workspaces, recipes) of one corpus."""

    def __init__(self, jobs: int, seed: int, start: dt.date, days: int, big_objects: int) -> None:
        self.rng = random.Random(seed)
        self.jobs = jobs
        self.start = start
        self.days = days
        self.big_objects = big_objects
        self.job_ids: set[str] = set()
        self.keys: set[str] = set()
        self.next_embedded_id = 0
        self.next_activity_id = 0
        self.job_folders: list[str] = []
        all_days = [start + dt.timedelta(days=i) for i in range(days)]
        self.all_days = all_days
        self.old_days = [d for d in all_days if d < FORMAT_CHANGE] or all_days
        self.new_days = [d for d in all_days if d >= FORMAT_CHANGE] or all_days
        self.users = self._users()
        embedded_weight = 0.15
        standard = [u for u in self.users if not u.embedded]
        self.user_weights = [
            embedded_weight if u.embedded else (1 - embedded_weight) / len(standard) for u in self.users
        ]
        self.envelopes = [name for name, _ in _ENVELOPE_WEIGHTS]
        self.envelope_weights = [w for _, w in _ENVELOPE_WEIGHTS]
        self.scenarios = [name for name, _ in _SCENARIO_WEIGHTS]
        self.scenario_weights = [w for _, w in _SCENARIO_WEIGHTS]

    # ----------------------------------------------------------------- world

    def _users(self) -> list[_User]:
        rng = self.rng
        count = rng.randint(2, 5)
        ids = rng.sample(range(1_000, 999_999), count)
        recipe_ids = iter(rng.sample(range(100_000, 40_000_000), 30 * count))
        users = []
        for index, user_id in enumerate(ids):
            embedded = index == count - 1  # one embedded-partner customer workspace
            name = rng.choice(_PEOPLE)
            recipes = []
            recipe_count = rng.randint(5, 30)
            for r in range(recipe_count):
                recipe_id = next(recipe_ids) if not embedded else rng.randint(100, 99_999) * 10 + r
                actions = tuple(rng.choice(_ACTIONS) for _ in range(rng.randint(1, 6)))
                numbers = [0]
                for _ in actions:
                    numbers.append(numbers[-1] + (2 if rng.random() < 0.15 else 1))
                # The last (least used) recipe always masks a step and recipe 1 always
                # reports custom columns, so the coverage plans can rely on both.
                masked = [False] + [rng.random() < 0.08 for _ in actions]
                if r == recipe_count - 1:
                    masked[-1] = True
                trigger = "function" if r == 2 else rng.choice(_TRIGGERS)
                recipes.append(
                    _Recipe(
                        id=recipe_id,
                        name=rng.choice(_RECIPE_NAMES),
                        path=rng.choice(_FOLDERS),
                        trigger=trigger,
                        actions=actions,
                        line_numbers=tuple(numbers),
                        masked=tuple(masked),
                        report_columns=rng.randint(1, 4) if r == 1 or rng.random() < 0.25 else 0,
                    )
                )
            members = tuple(
                (rng.randint(1_000, 9_999_999), person, _email(person, i))
                for i, person in enumerate(rng.sample(_PEOPLE, 4))
            )
            users.append(
                _User(
                    id=user_id,
                    name=name,
                    email=_email(name, 0),
                    team=rng.choice(_TEAMS),
                    env_type=rng.choice(("dev", "test", "prod")),
                    env_id=rng.randint(1_000, 999_999),
                    offset=rng.choice(_OFFSETS),
                    embedded=embedded,
                    recipes=tuple(recipes),
                    recipe_weights=tuple(1 / (i + 1) for i in range(len(recipes))),
                    members=members,
                )
            )
        self.next_embedded_id = rng.randint(1, 999)
        self.next_activity_id = rng.randint(100_000, 999_999)
        return users

    def _new_job_id(self, embedded: bool) -> str:
        if embedded:
            self.next_embedded_id += self.rng.randint(1, 10 ** self.rng.randint(1, 9))
            return str(self.next_embedded_id)
        while True:
            job_id = (
                "j-"
                + "".join(self.rng.choices(_ALPHABET, k=8))
                + "-"
                + "".join(self.rng.choices(_ALPHABET, k=6))
            )
            if job_id not in self.job_ids:
                self.job_ids.add(job_id)
                return job_id

    # ----------------------------------------------------------------- the corpus

    def objects(self) -> Iterator[SynthObject]:
        coverage = _job_coverage()
        for index in range(self.jobs):
            overrides = coverage[index] if index < len(coverage) else _Overrides()
            yield from self._job_objects(self._plan(overrides))
        activity = max(8, self.jobs // 8)
        for index in range(activity):
            yield self._activity_object(index)
        malformed = max(8, self.jobs // 100)
        for index in range(malformed):
            yield self._malformed_object(index)
        yield from self._skipped_objects()
        for _ in range(self.big_objects):
            yield self._big_object()

    def _emit(self, key: str, body: bytes, truth: Truth) -> SynthObject:
        if key in self.keys:
            raise AssertionError(f"synth produced the key {key} twice")
        self.keys.add(key)
        return SynthObject(key, body, truth)

    # ----------------------------------------------------------------- jobs

    def _plan(self, o: _Overrides) -> _Plan:
        rng = self.rng
        if o.embedded is None:
            user = rng.choices(self.users, self.user_weights)[0]
        else:
            user = next(u for u in self.users if u.embedded == o.embedded)
        if o.recipe_index is not None:
            recipe = user.recipes[o.recipe_index]
        else:
            recipe = rng.choices(user.recipes, user.recipe_weights)[0]
        days = self.old_days if o.era == "old" else self.new_days if o.era == "new" else self.all_days
        day = rng.choice(days)
        envelope = o.envelope or rng.choices(self.envelopes, self.envelope_weights)[0]
        failure = o.failure
        status = o.status or ("failed" if failure else "succeeded")
        if o.status is None and failure is None and rng.random() < 0.10:
            status = "failed"
        if status == "failed" and failure is None:
            failure = "plain" if rng.random() < 0.15 else "json"
        oversized, large = o.oversized, o.large
        scenario = o.scenario or "single"
        log_str = o.log_str or "same"
        if o == _Overrides():  # a random job: draw the rarer features too
            oversized = rng.random() < 0.004
            large = not oversized and rng.random() < 0.003
            if oversized or large:
                envelope = envelope if envelope in LINE_ENVELOPES else "bare"
            else:
                scenario = rng.choices(self.scenarios, self.scenario_weights)[0]
            if scenario == "tie" and envelope not in LINE_ENVELOPES:
                envelope = "bare"
            if envelope == "details":
                roll = rng.random()
                log_str = "broken" if roll < 0.04 else "stale" if roll < 0.08 else "same"
        long_stamp = o.long_stamp if o.long_stamp is not None else rng.random() < 0.75
        if scenario in _STAMP14_SCENARIOS:
            long_stamp = True
        job_id = self._new_job_id(user.embedded)
        body_id: int | str = job_id
        if user.embedded and rng.random() < 0.6:
            body_id = int(job_id)
        calling = None
        if recipe.trigger == "function":
            calling = (self._new_job_id(user.embedded), rng.choice(user.recipes).id)
        repeat_count = rng.randint(1, 3) if rng.random() < 0.1 else 0
        master = self._new_job_id(user.embedded) if repeat_count or calling else job_id
        offset = user.offset if rng.random() < 0.8 else rng.choice(_OFFSETS)
        plan = _Plan(
            user=user,
            recipe=recipe,
            day=day,
            job_id=job_id,
            body_id=body_id,
            envelope=envelope,
            status=status,
            scenario=scenario,
            failure=failure,
            oversized=oversized,
            large=large,
            log_str=log_str,
            long_stamp=long_stamp,
            digits=rng.choices((0, 3, 6), (60, 15, 25))[0],
            offset=offset,
            zulu=offset == 0 and rng.random() < 0.5,
            string_ids=envelope == "status" or rng.random() < 0.15,
            pretty=rng.random() < 0.1,
            master_job_id=master,
            calling=calling,
            repeat_count=repeat_count,
            is_test=rng.random() < 0.03,
            title="",
        )
        plan.title = self._title(plan)
        return plan

    def _title(self, plan: _Plan) -> str:
        rng = self.rng
        trigger = plan.recipe.trigger
        if trigger == "clock":
            week = plan.day.isocalendar().week
            moment = _iso(_day_start_us(plan.day) + rng.randrange(_DAY_US), plan.offset, 6)
            return (
                f"Scheduler by Workato: new recurring event: Scheduled time={moment}, "
                f"Scheduled day={_WEEKDAYS[plan.day.weekday()]}, and Scheduled week={week}"
            )
        if trigger == "function":
            caller_job, caller_recipe = plan.calling or ("", 0)
            return (
                f"Recipe function by Workato: new call for function: Calling job ID={caller_job}, "
                f"Calling recipe ID={caller_recipe}, and ID={rng.getrandbits(40):x}"
            )
        if trigger == "salesforce":
            contact = f"003{rng.getrandbits(60):015X}"
            return f"Salesforce: New/updated Contact: Contact ID={contact}, Name={rng.choice(_PEOPLE)}"
        order = rng.randint(10_000, 99_999)
        return f"HTTP webhook: New event: Order ID={order}, Customer={rng.choice(_PEOPLE)} 🛒"

    def _versions(self, plan: _Plan) -> list[_Version]:
        """Every object written for one job, in writing order, with the winner marked."""
        rng = self.rng
        started = _day_start_us(plan.day) + rng.randrange(86_400) * 1_000_000
        quantum = 10 ** (6 - plan.digits)
        started += rng.randrange(0, 1_000_000, quantum) if plan.digits else 0
        duration = rng.randint(0, 300 if rng.random() < 0.9 else 3_600) * 1_000_000
        completed = started + duration + (rng.randrange(0, 1_000_000, quantum) if plan.digits else 0)
        full = self._full_lines(plan)
        fail_at = rng.randint(1, len(full) - 1) if len(full) > 1 else 0

        def run(status: str, start_us: int, end_us: int | None, stamp_us: int, final: bool) -> _Version:
            lines: list[Json] | str
            error: str | None = None
            error_type: str | None = None
            if plan.oversized:
                lines = LINES_DROPPED
            elif status == "pending":
                lines = []
            elif status == "running":
                lines = full[: rng.randint(1, max(1, len(full) - 1))]
            elif status == "failed":
                lines, error, error_type = self._failure(plan, full, fail_at, end_us or start_us)
            else:
                lines = full
            if plan.oversized and status == "failed":
                _, error, error_type = self._failure(plan, full, fail_at, end_us or start_us)
            return _Version(
                status, start_us, end_us, stamp_us, lines, error, error_type, plan.envelope, final
            )

        final_stamp = completed + rng.randint(0, 90) * 1_000_000
        scenario = plan.scenario
        if scenario == "single":
            return [run(plan.status, started, completed, final_stamp, True)]
        if scenario in ("progress", "late_progress"):
            early = rng.choice(NON_TERMINAL_STATUSES)
            early_stamp = started + rng.randint(0, 5) * 1_000_000
            if scenario == "late_progress":  # a cached retry of the earlier state arrives last
                early_stamp = final_stamp + rng.randint(60, 3 * 86_400) * 1_000_000
            return [
                run(early, started, None, early_stamp, False),
                run(plan.status, started, completed, final_stamp, True),
            ]
        if scenario == "progress3":
            return [
                run("pending", started, None, started, False),
                run("running", started, None, started + rng.randint(1, 5) * 1_000_000, False),
                run(plan.status, started, completed, final_stamp, True),
            ]
        if scenario in ("rerun", "rerun_late"):
            # A terminal state, then a rerun that completes later: the later completed_at wins.
            first_status = "failed" if plan.status == "succeeded" else "succeeded"
            first_end = completed
            second_start = first_end + rng.randint(60, 7_200) * 1_000_000
            second_end = second_start + duration + quantum
            first_stamp = first_end + rng.randint(0, 30) * 1_000_000
            second_stamp = second_end + rng.randint(0, 30) * 1_000_000
            if scenario == "rerun_late":  # the loser was written last: completed_at must decide
                first_stamp = second_stamp + rng.randint(60, 86_400) * 1_000_000
            return [
                run(first_status, started, first_end, first_stamp, False),
                run(plan.status, second_start, second_end, second_stamp, True),
            ]
        # "tie": the same terminal state twice, same completed_at; the later object wins.
        # The earlier one is a status-only copy, so the two are told apart by line_count.
        first = run(plan.status, started, completed, final_stamp, False)
        first.envelope = "status"
        second = run(plan.status, started, completed, final_stamp + rng.randint(1, 600) * 1_000_000, True)
        return [first, second]

    def _full_lines(self, plan: _Plan) -> list[Json]:
        """The step lines of a complete run of the plan's recipe (old format, with line_stat)."""
        rng = self.rng
        recipe = plan.recipe
        steps = [_trigger_step(recipe.trigger), *recipe.actions]
        if recipe.trigger == "function":
            steps.append(("workato_recipe_function", "return_result"))
        numbers = list(recipe.line_numbers)
        while len(numbers) < len(steps):
            numbers.append(numbers[-1] + 1)
        masked = list(recipe.masked) + [False] * (len(steps) - len(recipe.masked))
        large_at = rng.randrange(1, len(steps)) if plan.large and len(steps) > 1 else -1
        lines = []
        for index, (adapter, operation) in enumerate(steps):
            if masked[index]:
                step_input: Json = {"data": "masked"}
                step_output: Json = {"data": "masked"}
            else:
                step_input, step_output = self._step_io(plan, adapter, operation)
            if index == large_at:
                step_output = _large_output(rng, rng.randint(100_000, 2_000_000))
            lines.append(
                {
                    "recipe_line_number": numbers[index],
                    "adapter_name": adapter,
                    "adapter_operation": operation,
                    "input": step_input,
                    "output": step_output,
                    "mask_data": masked[index],
                    "line_stat": self._line_stat(),
                }
            )
        return lines

    def _line_stat(self) -> Json:
        rng = self.rng
        details = []
        total = 0.0
        for name in _STAT_NAMES[: rng.randint(3, len(_STAT_NAMES))]:
            spent = rng.random() * (0.2 if name == "execute" else 0.0002)
            total += spent
            details.append(
                {"name": name, "count": 1, "average": spent, "total": spent, "min": spent, "max": spent}
            )
        return {"total": total, "details": details}

    def _step_io(self, plan: _Plan, adapter: str, operation: str) -> tuple[Json, Json]:
        rng = self.rng
        person = rng.choice(_PEOPLE)
        message = rng.choice(_MESSAGES)
        if adapter == "clock":
            moment = _iso(_day_start_us(plan.day), plan.offset, 6)
            return {"time_unit": "minutes", "trigger_every": str(rng.choice((5, 15, 60)))}, {
                "scheduled_time": moment,
                "scheduled_day": _WEEKDAYS[plan.day.weekday()],
                "scheduled_week": plan.day.isocalendar().week,
            }
        if adapter == "workato_recipe_function":
            if operation == "return_result":
                return {"result": None if rng.random() < 0.5 else {"ok": True}}, {}
            calling_job, calling_recipe = plan.calling or ("", 0)
            return {
                "parameters_schema_json": '[{"name":"id","type":"string","optional":false,"label":"ID"}]'
            }, {
                "context": {"calling_job_id": calling_job, "calling_recipe_id": calling_recipe},
                "parameters": {"id": f"{rng.getrandbits(40):x}", "name": person},
            }
        if adapter == "salesforce":
            record = f"003{rng.getrandbits(60):015X}"
            if operation == "search_sobjects":
                return {"sobject_name": "Contact", "Email": _email(person, 1)}, {
                    "Contact": [{"Id": record, "Name": person, "Email": _email(person, 1)}]
                }
            return {"sobject_name": "Contact", "LastName": person, "Description": message}, {"id": record}
        if adapter == "workato_webhooks":
            return {}, {"order_id": rng.randint(10_000, 99_999), "customer": person, "note": message}
        if adapter == "rest":
            return {"url": "https://api.example.com/v2/orders", "method": "GET"}, {
                "status": 200,
                "body": {"items": [{"id": rng.randint(1, 10**9), "label": message}]},
            }
        if adapter == "snowflake":
            return {"sql": "select id, name, amount from orders where updated_at > :since"}, {
                "rows": [
                    {"ID": rng.randint(1, 10**6), "NAME": person, "AMOUNT": round(rng.random() * 1e4, 2)}
                ]
            }
        if adapter == "slack":
            return {"channel": "#ops-alerts", "text": f"{message} — {person}"}, {
                "ts": f"{rng.random() * 1e9:.6f}"
            }
        if adapter == "jira":
            return {"project_key": "OPS", "summary": f"{message} ({person})"}, {
                "key": f"OPS-{rng.randint(1, 9999)}"
            }
        return {"message": f"{message} {person}", "user_logs_enabled": "false"}, {"message": message}

    def _failure(
        self, plan: _Plan, full: list[Json], fail_at: int, end_us: int
    ) -> tuple[list[Json], str, str]:
        """Lines up to the failing one (which carries `error`), and the job's error fields."""
        rng = self.rng
        error_type, message = rng.choice(_ERRORS)
        failing = {k: v for k, v in full[fail_at].items() if k != "line_stat"}
        failing["output"] = {}
        failing["error"] = message
        failing["line_stat"] = full[fail_at]["line_stat"]
        lines = [*full[:fail_at], failing]
        if plan.failure == "plain":
            return lines, rng.choice(_PLAIN_ERRORS), error_type
        error = {
            "error_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "error_type": error_type,
            "error_at": _iso(end_us - rng.randint(1, 900) * 1_000, plan.offset, 3),
            "adapter": failing["adapter_name"],
            "action": failing["adapter_operation"],
            "line_number": failing["recipe_line_number"],
            "message": message,
            "inner_message": None if rng.random() < 0.7 else f"{error_type}: {message}",
        }
        return lines, orjson.dumps(error).decode(), error_type

    def _job_dict(self, plan: _Plan, v: _Version, *, new_format: bool, with_lines: bool) -> Json:
        """The job object as Workato writes it (old format unless `new_format`)."""
        user, recipe = plan.user, plan.recipe
        strings = plan.string_ids or v.envelope == "status"
        recipe_id: int | str = str(recipe.id) if strings else recipe.id
        calling_job, calling_recipe = plan.calling or (None, None)
        calling_recipe_id = str(calling_recipe) if strings and calling_recipe is not None else calling_recipe
        is_repeat = plan.repeat_count > 0
        parent = plan.master_job_id if is_repeat else None
        started = _iso(v.started_us, plan.offset, plan.digits, plan.zulu)
        completed = (
            None if v.completed_us is None else _iso(v.completed_us, plan.offset, plan.digits, plan.zulu)
        )
        lines = v.lines
        action_count = max(0, len(lines) - 1) if isinstance(lines, list) else len(recipe.actions)
        job_url = f"https://app.workato.com/recipes/{recipe.id}/job/{plan.body_id}"
        job: Json = {
            "id": plan.body_id,
            "master_job_id": plan.master_job_id,
            "recipe_id": recipe_id,
            "calling_job_id": calling_job,
            "calling_recipe_id": calling_recipe_id,
            "title": plan.title,
            "status": v.status,
            "is_repeat": is_repeat,
            "is_test": plan.is_test,
            "is_test_case_job": False,
            "started_at": started,
            "completed_at": completed,
            "repeat_count": plan.repeat_count,
            "action_count": action_count,
            "parent_id": parent,
            "flow_id": f"{recipe.id}-flow" if strings else recipe.id,
            "error_type": v.error_type,
            "is_poll_error": False,
            "account_id": str(user.id) if strings else user.id,
            "account_name": user.name,
            "environment_type": user.env_type,
            "environment_id": f"{user.env_id}-env" if strings else user.env_id,
            "hq_account_id": 0,
            "hq_account_name": "",
            "error": v.error,
            "report": self._report(plan),
        }
        context: Json = {
            "user_id": str(user.id) if strings else user.id,
            "user_name": user.name,
            "user_email": user.email,
            "recipe_id": recipe_id,
            "recipe_url": f"https://app.workato.com/recipes/{recipe.id}",
            "recipe_name": recipe.name,
            "recipe_path": recipe.path,
            "job_id": plan.body_id,
            "master_job_id": plan.master_job_id,
            "calling_recipe_id": calling_recipe_id,
            "calling_job_id": calling_job,
            "is_repeat": is_repeat,
            "is_test": plan.is_test,
            "repeat_count": plan.repeat_count,
            "job_url": job_url,
            "job_created_at": _iso(v.started_us - self.rng.randint(1_000, 900_000), plan.offset, 6),
            "repeated_job": is_repeat,
            "parent_job_id": parent,
            "user_external_id": None if not user.embedded else f"ext-{user.id}",
        }
        if new_format:
            del job["parent_id"]
            for name in NEW_FORMAT_DROPPED_CONTEXT:
                del context[name]
        job["context"] = context
        if with_lines:
            if isinstance(lines, list) and new_format:
                lines = [{k: value for k, value in line.items() if k != "line_stat"} for line in lines]
            job["lines"] = lines
        return job

    def _report(self, plan: _Plan) -> Json:
        columns = plan.recipe.report_columns
        if not columns:
            return {}
        values = [plan.title[:40], plan.user.team, str(plan.day), plan.recipe.name]
        return {f"custom_column_{i}": values[i % len(values)] for i in range(columns)}

    def _job_objects(self, plan: _Plan) -> Iterator[SynthObject]:
        for version in self._versions(plan):
            yield self._job_object(plan, version)

    def _job_object(self, plan: _Plan, v: _Version) -> SynthObject:
        rng = self.rng
        envelope = v.envelope
        details_format = None
        if envelope == "details":
            details_format = "new" if plan.day >= FORMAT_CHANGE else "old"
        new_format = details_format == "new"
        with_lines = envelope in LINE_ENVELOPES
        job = self._job_dict(plan, v, new_format=new_format, with_lines=with_lines)
        user = plan.user
        body_value: Any
        if envelope in ("bare", "json_string"):
            body_value = job if envelope == "bare" else orjson.dumps(job).decode()
        elif envelope == "summary":
            body_value = {"log_message": job, "now_utc_micro": v.stamp_us + rng.randrange(1_000_000)}
        elif envelope == "status":
            body_value = {
                "source": f"Workato {user.env_type.capitalize()} Environment",
                "UserID": str(user.id),
                "log": job,
                "log_message": f"Job {plan.job_id} {v.status}",
            }
        elif envelope == "details":
            written = v.completed_us if v.completed_us is not None else v.started_us
            written -= written % 1_000
            body_value = {
                "source": f"Workato {user.env_type.capitalize()} Environment",
                "Env": f"{user.team.split()[0].upper()}_OEM" if user.embedded else user.env_type.upper(),
                "Time": _spaced(written, plan.offset, zone=True),
                "Time_utc": written // 1_000,
                "Time_micro": written,
                "Time_nano": written * 1_000,
                "Log": job,
                "Log_Str": self._log_str(plan, v, job, new_format),
            }
        elif envelope == "log_entries":
            body_value = {"logEntries": [job], "source": "s3-forwarder"}
        else:
            body_value = {"workato": {"event": job, "stream": "job_history"}}
        body = _dumps(body_value, plan.pretty)
        lines = v.lines
        carries = with_lines
        if not carries:
            line_count, truncated, masked, timed = None, None, None, None
        elif isinstance(lines, str):
            line_count, truncated, masked, timed = 0, True, 0, 0
        else:
            line_count, truncated = len(lines), False
            masked = sum(1 for line in lines if line["mask_data"])
            timed = 0 if new_format else line_count
        key = self._job_key(plan, v)
        if v.final and len(self.job_folders) < 16:
            self.job_folders.append(key.rsplit("/", 1)[0])
        truth = Truth(
            kind=KIND_JOB,
            stream_type=ENVELOPE_STREAM[envelope],
            envelope=envelope,
            layout="embedded" if user.embedded else "standard",
            format=details_format,
            user_id=str(user.id),
            recipe_id=str(plan.recipe.id),
            day=plan.day,
            job_id=plan.job_id,
            status=v.status,
            is_final=v.final,
            line_count=line_count,
            lines_truncated=truncated,
            masked_lines=masked,
            timed_lines=timed,
            started_us=v.started_us,
            completed_us=v.completed_us,
            error_type=v.error_type,
        )
        return self._emit(key, body, truth)

    def _log_str(self, plan: _Plan, v: _Version, job: Json, new_format: bool) -> str:
        """The string copy of the job: usually faithful, sometimes stale or cut short."""
        text = orjson.dumps(job).decode()
        if plan.log_str == "broken":
            return text[: max(1, len(text) * 3 // 5)]
        if plan.log_str == "stale":
            stale = _Version("running", v.started_us, None, v.stamp_us, [], None, None, v.envelope, False)
            return orjson.dumps(self._job_dict(plan, stale, new_format=new_format, with_lines=True)).decode()
        return text

    def _job_key(self, plan: _Plan, v: _Version) -> str:
        user_id, recipe_id, job_id = plan.user.id, plan.recipe.id, plan.job_id
        name = f"{user_id}-{recipe_id}-{job_id}-{_stamp(v.stamp_us, plan.long_stamp)}-{v.status}.json"
        if plan.user.embedded:
            padded = f"{int(job_id):021d}"
            folder = "/".join(padded[i : i + 3] for i in range(0, 21, 3))
        else:
            folder = job_id
        return f"{user_id}/jobs/{recipe_id}/{format_day(plan.day)}/{folder}/{name}"

    def _big_object(self) -> SynthObject:
        """A job-history object of about 39 MB with real lines, just under the 40 MB limit."""
        rng = self.rng
        plan = self._plan(_Overrides(envelope="bare", embedded=False, scenario="single", status="succeeded"))
        plan.pretty = False
        version = self._versions(plan)[-1]
        template = version.lines[0] if isinstance(version.lines, list) else {}
        chunk = 1_000_000
        count = BIG_OBJECT_BYTES // chunk - 1
        lines: list[Json] = []
        for index in range(count):
            payload = base64.b64encode(rng.randbytes(chunk * 3 // 4)).decode()
            lines.append(
                {
                    "recipe_line_number": index,
                    "adapter_name": "box",
                    "adapter_operation": "download_file",
                    "input": {"file_id": str(rng.getrandbits(40))},
                    "output": {"name": f"scan-{index:03d}.pdf", "content_base64": payload},
                    "mask_data": False,
                    "line_stat": template.get("line_stat", {"total": 0.1, "details": []}),
                }
            )
        version.lines = lines
        job = self._job_dict(plan, version, new_format=False, with_lines=True)
        # Fill the last line so the whole object lands on BIG_OBJECT_BYTES.
        size = len(orjson.dumps(job))
        missing = max(0, BIG_OBJECT_BYTES - size)
        lines[-1]["output"]["padding"] = "=" * max(0, missing - len(',"padding":""'))
        body = orjson.dumps(job)
        truth = Truth(
            kind=KIND_JOB,
            stream_type=JOB_HISTORY,
            envelope="bare",
            layout="standard",
            user_id=str(plan.user.id),
            recipe_id=str(plan.recipe.id),
            day=plan.day,
            job_id=plan.job_id,
            status=version.status,
            is_final=True,
            line_count=count,
            lines_truncated=False,
            masked_lines=0,
            timed_lines=count,
            started_us=version.started_us,
            completed_us=version.completed_us,
        )
        return self._emit(self._job_key(plan, version), body, truth)

    # ----------------------------------------------------------------- activity

    def _activity_object(self, index: int) -> SynthObject:
        rng = self.rng
        kinds = (USER_ACTIVITY, ACTIVITY_EVENT, PROJECT_DEPLOYMENT, ACTIVITY_API)
        stream = kinds[index] if index < len(kinds) else rng.choices(kinds, (40, 45, 8, 7))[0]
        user = rng.choice(self.users)
        member = rng.choice(user.members)
        occurred = _day_start_us(rng.choice(self.all_days)) + rng.randrange(86_400) * 1_000_000
        day = _utc_day(occurred)
        local = rng.random() < 0.3
        timestamp = _spaced(occurred, user.offset) if local else _spaced(occurred, 0, utc_word=True)
        event_name, resource_type = rng.choice(_EVENTS)
        token = uuid.UUID(int=rng.getrandbits(128), version=4)
        folder = f"{user.id}/activity/{format_day(day)}"
        user_folder: str | None = str(user.id)
        event: str | None = event_name
        if stream == PROJECT_DEPLOYMENT:
            event = None
            body_value: Any = {
                "user_name": member[1],
                "user_environment_id": user.env_id,
                "user_environment_type": user.env_type,
                "user_account_id": user.id,
                "user_account_name": user.name,
                "team_id_d": user.id,
                "team_email": user.email,
                "team_name": user.team,
                "team_environment_id": user.env_id,
                "team_environment_type": user.env_type,
                "team_account_id": user.id,
                "team_account_name": user.name,
                "resource_type": "Deployment",
                "resource_id_d": rng.randint(1, 999_999),
                "resource_project_name": rng.choice(("HR projects", "Finance ↔ ERP", "Intégrations")),
                "resource_target_environment": rng.choice(("Production", "Test")),
                "resource_performed_by": member[1],
                "timestamp": timestamp,
            }
            key = f"audit/deployments/{format_day(day)}/{token}.json"
            user_folder = None
        elif stream == ACTIVITY_API:
            self.next_activity_id += rng.randint(1, 50)
            body_value = {
                "id": self.next_activity_id,
                "timestamp": _spaced(occurred, 0, utc_word=True),
                "event_type": event_name,
                "workspace": {
                    "id": user.id,
                    "name": user.team,
                    "email": user.email,
                    "environment": user.env_type,
                },
                "user": {"id": member[0], "name": member[1], "email": member[2]},
                "details": self._event_details(event_name),
                "resource": self._resource(resource_type),
            }
            key = f"audit/activity_logs/{format_day(day)}/{body_value['id']}.json"
            user_folder = None
        else:
            full = stream == USER_ACTIVITY
            event_body = self._event(user, member, event_name, resource_type, timestamp, full=full)
            if full:
                copy = dict(event_body)
                if rng.random() < 0.3:  # the string copy may disagree with the object
                    copy["user"] = {**event_body["user"], "name": "Random User"}
                body_value = {
                    "source": f"Workato {user.env_type.capitalize()} Environment",
                    "UserID": str(user.id),
                    "log": event_body,
                    "log_message": orjson.dumps(copy).decode(),
                }
                key = f"{folder}/{token}.json"
            else:
                body_value = event_body
                key = f"{folder}/{token}.json"
                if rng.random() < 0.05:  # keys with spaces exist too
                    key = f"audit/manual export/{token}.json"
                    user_folder = None
        truth = Truth(
            kind=KIND_ACTIVITY,
            stream_type=stream,
            envelope=stream,
            user_id=user_folder,
            day=day,
            event=event,
            occurred_us=occurred,
        )
        return self._emit(key, _dumps(body_value, rng.random() < 0.2), truth)

    def _event(
        self,
        user: _User,
        member: tuple[int, str, str],
        event_name: str,
        resource_type: str,
        timestamp: str,
        *,
        full: bool,
    ) -> Json:
        """A user-activity event like the seed samples; `full` adds the streamed fields."""
        person: Json = {"name": member[1], "id": member[0], "email": member[2]}
        team: Json = {"name": user.team, "id": user.id, "email": user.email}
        if full:
            extra = {
                "environment_id": user.env_id,
                "environment_type": user.env_type,
                "account_id": user.id,
                "account_name": user.name,
            }
            person = {"id": member[0], "external_id": None, "email": member[2], "name": member[1], **extra}
            team = {"id": user.id, "external_id": None, "email": user.email, "name": user.team, **extra}
        event: Json = {"resource": self._resource(resource_type)}
        if event_name == "recipe_renamed":
            event = {"resource_changes": {"name": {"old_value": "Send request via HTTP"}}, **event}
        if not event_name.startswith("package_") and event_name != "recipe_created":
            event["details"] = self._event_details(event_name)
        event |= {"team": team, "event": event_name, "user": person, "timestamp": timestamp}
        return event

    def _event_details(self, event_name: str) -> Json:
        rng = self.rng
        details: Json = {
            "request": {
                "ip_address": ".".join(str(rng.randint(1, 254)) for _ in range(4)),
                "user_agent": rng.choice(_AGENTS),
            }
        }
        if event_name in ("user_login", "user_logout"):
            details["activity"] = rng.choice(("sso_login", "password_login", "switch_team"))
            if details["activity"] == "sso_login":
                details["sso_provider"] = "google"
        elif event_name == "recipe_started":
            details["run_once"] = rng.random() < 0.1
        elif event_name == "recipe_stopped":
            details |= {"stop_reason": rng.choice(("user", "error")), "force": False, "error": False}
        return details

    def _resource(self, resource_type: str) -> Json:
        rng = self.rng
        resource: Json = {
            "name": rng.choice(_RECIPE_NAMES),
            "id": rng.randint(100, 99_999),
            "type": resource_type,
        }
        if resource_type == "User":
            person = rng.choice(_PEOPLE)
            resource |= {
                "name": person,
                "email": _email(person, 2),
                "email_confirmed_at": "2019-11-24 14:29:30 -0800",
            }
        elif resource_type == "Folder":
            resource["path"] = rng.choice(_FOLDERS)
        elif resource_type == "SharedAccount":
            resource |= {
                "provider": rng.choice(("postgresql", "asana", "salesforce")),
                "authorized": rng.random() < 0.5,
            }
        elif resource_type == "Package":
            resource |= {
                "file_name": "export-ünïcode.zip",
                "folder_id": rng.randint(1, 9_999),
                "folder_path": "Home/HR",
            }
        elif resource_type == "MemberInvitation":
            person = rng.choice(_PEOPLE)
            resource |= {"role": "Admin", "name": person, "email": _email(person, 3)}
        elif resource_type == "Flow" and rng.random() < 0.5:
            resource |= {"path": rng.choice(_FOLDERS), "folder_id": rng.randint(1, 9_999_999)}
        return resource

    # ----------------------------------------------------------------- junk

    def _malformed_object(self, index: int) -> SynthObject:
        """An object the archiver must quarantine, in the job layout or among activity."""
        rng = self.rng
        reason = QUARANTINE_REASONS[index % 4] if index < 8 else rng.choice(QUARANTINE_REASONS)
        in_layout = index < 4 or (index >= 8 and rng.random() < 0.8)
        plan = self._plan(_Overrides(envelope="bare", scenario="single", status="succeeded"))
        version = self._versions(plan)[-1]
        if reason == "empty":
            body = b""
        elif reason == "truncated":
            text = orjson.dumps(self._job_dict(plan, version, new_format=False, with_lines=True))
            cut = rng.randint(len(text) * 3 // 10, len(text) * 7 // 10)
            while text[cut - 1] >= 0x80:  # never split a UTF-8 sequence: that would be invalid_utf8
                cut -= 1
            body = text[:cut]
        elif reason == "invalid_json":
            job = self._job_dict(plan, version, new_format=False, with_lines=False)
            if rng.random() < 0.7:  # the documented summary sample's `"account_id": 0000000`
                job["account_id"] = "@@ACCOUNT@@"
                body = _dumps({"log_message": job, "now_utc_micro": version.stamp_us}, True)
                body = body.replace(b'"@@ACCOUNT@@"', b"0000000")
            else:
                job["account_name"] = "@@NAME@@"
                body = _dumps(job, True).replace(b'"@@NAME@@"', b"'single quoted'")
        else:
            shapes: list[Any] = [
                {"hello": "world"},
                [1, 2, 3],
                {"records": [{"a": 1}], "next_page": None},
                {"type": "heartbeat", "sent_at": version.stamp_us, "ok": True},
            ]
            body = orjson.dumps(rng.choice(shapes))
        if in_layout:
            key = self._job_key(plan, version)
            truth = Truth(
                kind=KIND_QUARANTINE,
                layout="embedded" if plan.user.embedded else "standard",
                user_id=str(plan.user.id),
                recipe_id=str(plan.recipe.id),
                day=plan.day,
                job_id=plan.job_id,
                status=version.status,
                reason=reason,
            )
        else:
            token = uuid.UUID(int=rng.getrandbits(128), version=4)
            key = f"{plan.user.id}/activity/{format_day(plan.day)}/{token}.json"
            truth = Truth(kind=KIND_QUARANTINE, user_id=str(plan.user.id), day=plan.day, reason=reason)
        return self._emit(key, body, truth)

    def _skipped_objects(self) -> Iterator[SynthObject]:
        """Keys that are not JSON: markers, other tools' files, partial uploads."""
        rng = self.rng
        day = format_day(self.all_days[0])
        skip = Truth(kind=KIND_SKIP)
        yield self._emit("_SUCCESS", b"", skip)
        yield self._emit("README.txt", "Workato audit log stream — do not edit.\n".encode(), skip)
        yield self._emit(f"exports/{day}/jobs.csv", b"job_id,status\nj-AEcaNzd9-dGQ4Bf,succeeded\n", skip)
        user = self.users[0]
        token = uuid.UUID(int=rng.getrandbits(128), version=4)
        yield self._emit(f"{user.id}/activity/{day}/{token}.json.gz", rng.randbytes(64), skip)
        folders = self.job_folders or [f"{user.id}/jobs/{user.recipes[0].id}/{day}/j-partial0-upload"]
        for index in range(1 + self.jobs // 1_000):
            folder = folders[index % len(folders)]
            yield self._emit(f"{folder}/x{index}.json.tmp", b'{"id": "j-', skip)


def _email(name: str, index: int) -> str:
    local = "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum()) or "user"
    return f"{local}{index}@example.com"


def _trigger_step(trigger: str) -> tuple[str, str]:
    return {
        "clock": ("clock", "scheduled_event"),
        "function": ("workato_recipe_function", "execute"),
        "salesforce": ("salesforce", "new_or_updated_object"),
        "webhook": ("workato_webhooks", "new_event"),
    }[trigger]


def _large_output(rng: random.Random, size: int) -> Json:
    """A step output of about `size` bytes: a page of query rows, non-ASCII included."""
    base = rng.randint(1, 10**6)
    row_count = max(1, size // 110)
    return {
        "rows": [
            {
                "id": base + i,
                "name": _PEOPLE[i % len(_PEOPLE)],
                "email": f"customer{base + i}@example.com",
                "amount": (i * 7_919) % 1_000_000 / 100,
                "note": _MESSAGES[i % len(_MESSAGES)],
            }
            for i in range(row_count)
        ],
        "row_count": row_count,
    }


def _job_coverage() -> list[_Overrides]:
    """The first jobs of every corpus: one of each feature, so small corpora cover them all."""
    return [
        _Overrides(envelope="bare", long_stamp=False),
        _Overrides(envelope="summary"),
        _Overrides(envelope="status"),
        _Overrides(envelope="details", era="old"),
        _Overrides(envelope="details", era="new"),
        _Overrides(envelope="log_entries"),
        _Overrides(envelope="workato_event"),
        _Overrides(envelope="json_string"),
        _Overrides(envelope="bare", embedded=True),
        _Overrides(envelope="details", embedded=True, era="old"),
        _Overrides(envelope="bare", oversized=True, scenario="single"),
        _Overrides(envelope="details", era="new", oversized=True, scenario="single"),
        _Overrides(envelope="bare", status="failed", failure="json"),
        _Overrides(envelope="details", era="old", status="failed", failure="plain"),
        _Overrides(envelope="bare", large=True, scenario="single"),
        _Overrides(envelope="bare", recipe_index=-1, scenario="single"),  # a masked step
        _Overrides(envelope="status", recipe_index=1, scenario="single"),  # report columns
        _Overrides(envelope="bare", scenario="progress"),
        _Overrides(envelope="status", scenario="progress3", long_stamp=False),
        _Overrides(envelope="bare", scenario="rerun"),
        _Overrides(envelope="details", era="new", scenario="rerun_late"),
        _Overrides(envelope="summary", scenario="late_progress"),
        _Overrides(envelope="bare", scenario="tie"),
        _Overrides(envelope="details", era="old", log_str="broken"),
        _Overrides(envelope="details", era="new", log_str="stale"),
    ]
