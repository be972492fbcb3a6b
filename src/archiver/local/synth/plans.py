"""Plans: what one synthetic job is (workspace, recipe, day, wrapper, fate), and its versions.

A plan is drawn once per job; `versions` then says which objects the job leaves
behind in writing order (a single final state, progress states before it, a rerun,
a tie...) and which of them the archive must keep.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from archiver.local.synth import steps
from archiver.local.synth import vocabulary as words
from archiver.local.synth.formatting import DAY_US, Json, day_start_us, iso
from archiver.local.synth.truth import LINE_ENVELOPES
from archiver.local.synth.world import Recipe, User, World

LINES_DROPPED = "Log lines exceed size limit"
TERMINAL_STATUSES = ("succeeded", "failed")
NON_TERMINAL_STATUSES = ("pending", "running")


@dataclass(frozen=True, slots=True)
class Overrides:
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
class Plan:
    user: User
    recipe: Recipe
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
class Version:
    status: str
    started_us: int
    completed_us: int | None
    stamp_us: int
    lines: list[Json] | str  # str: LINES_DROPPED
    error: str | None
    error_type: str | None
    envelope: str
    final: bool


def job_coverage() -> list[Overrides]:
    """The first jobs of every corpus: one of each feature, so small corpora cover them all."""
    return [
        Overrides(envelope="bare", long_stamp=False),
        Overrides(envelope="summary"),
        Overrides(envelope="status"),
        Overrides(envelope="details", era="old"),
        Overrides(envelope="details", era="new"),
        Overrides(envelope="log_entries"),
        Overrides(envelope="workato_event"),
        Overrides(envelope="json_string"),
        Overrides(envelope="bare", embedded=True),
        Overrides(envelope="details", embedded=True, era="old"),
        Overrides(envelope="bare", oversized=True, scenario="single"),
        Overrides(envelope="details", era="new", oversized=True, scenario="single"),
        Overrides(envelope="bare", status="failed", failure="json"),
        Overrides(envelope="details", era="old", status="failed", failure="plain"),
        Overrides(envelope="bare", large=True, scenario="single"),
        Overrides(envelope="bare", recipe_index=-1, scenario="single"),  # a masked step
        Overrides(envelope="status", recipe_index=1, scenario="single"),  # report columns
        Overrides(envelope="bare", scenario="progress"),
        Overrides(envelope="status", scenario="progress3", long_stamp=False),
        Overrides(envelope="bare", scenario="rerun"),
        Overrides(envelope="details", era="new", scenario="rerun_late"),
        Overrides(envelope="summary", scenario="late_progress"),
        Overrides(envelope="bare", scenario="tie"),
        Overrides(envelope="details", era="old", log_str="broken"),
        Overrides(envelope="details", era="new", log_str="stale"),
    ]


_ENVELOPES = [name for name, _ in words.ENVELOPE_WEIGHTS]
_ENVELOPE_WEIGHTS = [weight for _, weight in words.ENVELOPE_WEIGHTS]
_SCENARIOS = [name for name, _ in words.SCENARIO_WEIGHTS]
_SCENARIO_WEIGHTS = [weight for _, weight in words.SCENARIO_WEIGHTS]


def draw_plan(world: World, o: Overrides) -> Plan:
    """One job's plan: the overrides' choices, everything else drawn."""
    rng = world.rng
    if o.embedded is None:
        user = rng.choices(world.users, world.user_weights)[0]
    else:
        user = next(u for u in world.users if u.embedded == o.embedded)
    if o.recipe_index is not None:
        recipe = user.recipes[o.recipe_index]
    else:
        recipe = rng.choices(user.recipes, user.recipe_weights)[0]
    days = world.old_days if o.era == "old" else world.new_days if o.era == "new" else world.all_days
    day = rng.choice(days)
    envelope = o.envelope or rng.choices(_ENVELOPES, _ENVELOPE_WEIGHTS)[0]
    failure = o.failure
    status = o.status or ("failed" if failure else "succeeded")
    if o.status is None and failure is None and rng.random() < 0.10:
        status = "failed"
    if status == "failed" and failure is None:
        failure = "plain" if rng.random() < 0.15 else "json"
    oversized, large = o.oversized, o.large
    scenario = o.scenario or "single"
    log_str = o.log_str or "same"
    if o == Overrides():  # a random job: draw the rarer features too
        oversized = rng.random() < 0.004
        large = not oversized and rng.random() < 0.003
        if oversized or large:
            envelope = envelope if envelope in LINE_ENVELOPES else "bare"
        else:
            scenario = rng.choices(_SCENARIOS, _SCENARIO_WEIGHTS)[0]
        if scenario == "tie" and envelope not in LINE_ENVELOPES:
            envelope = "bare"
        if envelope == "details":
            roll = rng.random()
            log_str = "broken" if roll < 0.04 else "stale" if roll < 0.08 else "same"
    long_stamp = o.long_stamp if o.long_stamp is not None else rng.random() < 0.75
    if scenario in words.STAMP14_SCENARIOS:
        long_stamp = True
    job_id = world.new_job_id(user.embedded)
    body_id: int | str = job_id
    if user.embedded and rng.random() < 0.6:
        body_id = int(job_id)
    calling = None
    if recipe.trigger == "function":
        calling = (world.new_job_id(user.embedded), rng.choice(user.recipes).id)
    repeat_count = rng.randint(1, 3) if rng.random() < 0.1 else 0
    master = world.new_job_id(user.embedded) if repeat_count or calling else job_id
    offset = user.offset if rng.random() < 0.8 else rng.choice(words.OFFSETS)
    plan = Plan(
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
    plan.title = _title(world, plan)
    return plan


def _title(world: World, plan: Plan) -> str:
    """The job title Workato derives from the trigger event."""
    rng = world.rng
    trigger = plan.recipe.trigger
    if trigger == "clock":
        week = plan.day.isocalendar().week
        moment = iso(day_start_us(plan.day) + rng.randrange(DAY_US), plan.offset, 6)
        return (
            f"Scheduler by Workato: new recurring event: Scheduled time={moment}, "
            f"Scheduled day={words.WEEKDAYS[plan.day.weekday()]}, and Scheduled week={week}"
        )
    if trigger == "function":
        caller_job, caller_recipe = plan.calling or ("", 0)
        return (
            f"Recipe function by Workato: new call for function: Calling job ID={caller_job}, "
            f"Calling recipe ID={caller_recipe}, and ID={rng.getrandbits(40):x}"
        )
    if trigger == "salesforce":
        contact = f"003{rng.getrandbits(60):015X}"
        return f"Salesforce: New/updated Contact: Contact ID={contact}, Name={rng.choice(words.PEOPLE)}"
    order = rng.randint(10_000, 99_999)
    return f"HTTP webhook: New event: Order ID={order}, Customer={rng.choice(words.PEOPLE)} 🛒"


class _Run:
    """Makes the versions of one planned job: the timing and lines common to all of them."""

    def __init__(self, world: World, plan: Plan) -> None:
        rng = self.rng = world.rng
        self.plan = plan
        started = day_start_us(plan.day) + rng.randrange(86_400) * 1_000_000
        self.quantum = 10 ** (6 - plan.digits)
        started += rng.randrange(0, 1_000_000, self.quantum) if plan.digits else 0
        self.duration = rng.randint(0, 300 if rng.random() < 0.9 else 3_600) * 1_000_000
        fraction = rng.randrange(0, 1_000_000, self.quantum) if plan.digits else 0
        self.started, self.completed = started, started + self.duration + fraction
        self.full = steps.full_lines(rng, plan)
        self.fail_at = rng.randint(1, len(self.full) - 1) if len(self.full) > 1 else 0

    def version(self, status: str, start_us: int, end_us: int | None, stamp_us: int, final: bool) -> Version:
        plan, full, fail_at = self.plan, self.full, self.fail_at
        lines: list[Json] | str
        error: str | None = None
        error_type: str | None = None
        if plan.oversized:
            lines = LINES_DROPPED
        elif status == "pending":
            lines = []
        elif status == "running":
            lines = full[: self.rng.randint(1, max(1, len(full) - 1))]
        elif status == "failed":
            lines, error, error_type = steps.failure(self.rng, plan, full, fail_at, end_us or start_us)
        else:
            lines = full
        if plan.oversized and status == "failed":
            _, error, error_type = steps.failure(self.rng, plan, full, fail_at, end_us or start_us)
        return Version(status, start_us, end_us, stamp_us, lines, error, error_type, plan.envelope, final)


def versions(world: World, plan: Plan) -> list[Version]:
    """Every object written for one job, in writing order, with the winner marked."""
    run = _Run(world, plan)
    rng, started, completed = world.rng, run.started, run.completed
    final_stamp = completed + rng.randint(0, 90) * 1_000_000
    scenario = plan.scenario
    if scenario == "single":
        return [run.version(plan.status, started, completed, final_stamp, True)]
    if scenario in ("progress", "late_progress"):
        early = rng.choice(NON_TERMINAL_STATUSES)
        early_stamp = started + rng.randint(0, 5) * 1_000_000
        if scenario == "late_progress":  # a cached retry of the earlier state arrives last
            early_stamp = final_stamp + rng.randint(60, 3 * 86_400) * 1_000_000
        return [
            run.version(early, started, None, early_stamp, False),
            run.version(plan.status, started, completed, final_stamp, True),
        ]
    if scenario == "progress3":
        return [
            run.version("pending", started, None, started, False),
            run.version("running", started, None, started + rng.randint(1, 5) * 1_000_000, False),
            run.version(plan.status, started, completed, final_stamp, True),
        ]
    if scenario in ("rerun", "rerun_late"):
        # A terminal state, then a rerun that completes later: the later completed_at wins.
        first_status = "failed" if plan.status == "succeeded" else "succeeded"
        first_end = completed
        second_start = first_end + rng.randint(60, 7_200) * 1_000_000
        second_end = second_start + run.duration + run.quantum
        first_stamp = first_end + rng.randint(0, 30) * 1_000_000
        second_stamp = second_end + rng.randint(0, 30) * 1_000_000
        if scenario == "rerun_late":  # the loser was written last: completed_at must decide
            first_stamp = second_stamp + rng.randint(60, 86_400) * 1_000_000
        return [
            run.version(first_status, started, first_end, first_stamp, False),
            run.version(plan.status, second_start, second_end, second_stamp, True),
        ]
    # "tie": the same terminal state twice, same completed_at; the later object wins.
    # The earlier one is a status-only copy, so the two are told apart by line_count.
    first = run.version(plan.status, started, completed, final_stamp, False)
    first.envelope = "status"
    second = run.version(plan.status, started, completed, final_stamp + rng.randint(1, 600) * 1_000_000, True)
    return [first, second]
