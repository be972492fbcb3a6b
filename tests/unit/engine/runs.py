"""A run's shared context for engine unit tests, over fake stores and a fixed clock."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from archiver.config import Settings
from archiver.engine.context import RunContext
from archiver.engine.parsing import Parser
from archiver.storage.store import ObjectStore

NOW_US = 1_724_200_000_000_000
"""2024-08-21 00:26:40 UTC: the day after the test corpus's day."""


def run_context(
    workdir: Path, source: ObjectStore, dest: ObjectStore, *, now_us: int = NOW_US, **settings: object
) -> RunContext:
    """A context with inline parsing and the given settings over the defaults."""
    return RunContext(
        source=source,
        dest=dest,
        settings=replace(Settings(), **settings),  # type: ignore[arg-type]
        workdir=workdir,
        now_us=now_us,
        parser=Parser(1),
    )
