"""The world one corpus is drawn from: its seeded random state, days, workspaces and recipes.

Everything derives from one `random.Random`; the order of draws is part of the
corpus (the same seed must give the same bytes), so code that draws must keep it.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass

from archiver.local.synth import vocabulary as words

# Full job details written on or after this date omit the duplicated fields.
FORMAT_CHANGE = dt.date(2024, 9, 1)
EMBEDDED_WEIGHT = 0.15
"""Share of jobs that belong to the embedded-partner workspace."""


@dataclass(frozen=True, slots=True)
class Recipe:
    id: int
    name: str
    path: str
    trigger: str
    actions: tuple[tuple[str, str], ...]
    line_numbers: tuple[int, ...]  # recipe_line_number of the trigger and each action
    masked: tuple[bool, ...]  # mask_data per line
    report_columns: int


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    email: str
    team: str
    env_type: str
    env_id: int
    offset: int  # the workspace's usual UTC offset in minutes
    embedded: bool
    recipes: tuple[Recipe, ...]
    recipe_weights: tuple[float, ...]
    members: tuple[tuple[int, str, str], ...]  # (id, name, email)


class World:
    """The seeded random state and the fixed world (workspaces, recipes, days) of one corpus."""

    def __init__(self, seed: int, start: dt.date, days: int) -> None:
        self.rng = random.Random(seed)
        self.job_ids: set[str] = set()
        self.all_days = [start + dt.timedelta(days=i) for i in range(days)]
        self.old_days = [d for d in self.all_days if d < FORMAT_CHANGE] or self.all_days
        self.new_days = [d for d in self.all_days if d >= FORMAT_CHANGE] or self.all_days
        self.users = _workspaces(self.rng)
        self.next_embedded_id = self.rng.randint(1, 999)
        self.next_activity_id = self.rng.randint(100_000, 999_999)
        standard = [u for u in self.users if not u.embedded]
        self.user_weights = [
            EMBEDDED_WEIGHT if u.embedded else (1 - EMBEDDED_WEIGHT) / len(standard) for u in self.users
        ]

    def new_job_id(self, embedded: bool) -> str:
        """A job id never handed out before: numeric for the embedded layout, else `j-...`."""
        if embedded:
            self.next_embedded_id += self.rng.randint(1, 10 ** self.rng.randint(1, 9))
            return str(self.next_embedded_id)
        while True:
            job_id = (
                "j-"
                + "".join(self.rng.choices(words.ALPHABET, k=8))
                + "-"
                + "".join(self.rng.choices(words.ALPHABET, k=6))
            )
            if job_id not in self.job_ids:
                self.job_ids.add(job_id)
                return job_id

    def new_activity_id(self) -> int:
        """The next id of an activity API record (ascending, with gaps)."""
        self.next_activity_id += self.rng.randint(1, 50)
        return self.next_activity_id


def _workspaces(rng: random.Random) -> list[User]:
    """Two to five workspaces; the last one is an embedded-partner customer."""
    count = rng.randint(2, 5)
    ids = rng.sample(range(1_000, 999_999), count)
    recipe_ids = iter(rng.sample(range(100_000, 40_000_000), 30 * count))
    return [
        _workspace(rng, user_id, embedded=index == count - 1, recipe_ids=recipe_ids)
        for index, user_id in enumerate(ids)
    ]


def _workspace(rng: random.Random, user_id: int, *, embedded: bool, recipe_ids: Iterator[int]) -> User:
    name = rng.choice(words.PEOPLE)
    recipe_count = rng.randint(5, 30)
    recipes = [_recipe(rng, r, recipe_count, embedded, recipe_ids) for r in range(recipe_count)]
    members = tuple(
        (rng.randint(1_000, 9_999_999), person, words.email(person, i))
        for i, person in enumerate(rng.sample(words.PEOPLE, 4))
    )
    return User(
        id=user_id,
        name=name,
        email=words.email(name, 0),
        team=rng.choice(words.TEAMS),
        env_type=rng.choice(("dev", "test", "prod")),
        env_id=rng.randint(1_000, 999_999),
        offset=rng.choice(words.OFFSETS),
        embedded=embedded,
        recipes=tuple(recipes),
        recipe_weights=tuple(1 / (i + 1) for i in range(len(recipes))),
        members=members,
    )


def _recipe(
    rng: random.Random, r: int, recipe_count: int, embedded: bool, recipe_ids: Iterator[int]
) -> Recipe:
    """Recipe number `r` of a workspace.

    The last (least used) recipe always masks a step, recipe 1 always reports custom
    columns and recipe 2 is a recipe function, so the coverage plans can rely on them.
    """
    recipe_id = next(recipe_ids) if not embedded else rng.randint(100, 99_999) * 10 + r
    actions = tuple(rng.choice(words.ACTIONS) for _ in range(rng.randint(1, 6)))
    numbers = [0]
    for _ in actions:
        numbers.append(numbers[-1] + (2 if rng.random() < 0.15 else 1))
    masked = [False] + [rng.random() < 0.08 for _ in actions]
    if r == recipe_count - 1:
        masked[-1] = True
    trigger = "function" if r == 2 else rng.choice(words.TRIGGERS)
    return Recipe(
        id=recipe_id,
        name=rng.choice(words.RECIPE_NAMES),
        path=rng.choice(words.FOLDERS),
        trigger=trigger,
        actions=actions,
        line_numbers=tuple(numbers),
        masked=tuple(masked),
        report_columns=rng.randint(1, 4) if r == 1 or rng.random() < 0.25 else 0,
    )
