"""A whole synthetic corpus: jobs and their versions, activity, malformed and skipped objects.

`generate` yields the objects lazily in a fixed order; `write_corpus` puts them on disk.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

from archiver.local.synth.activity import activity_object
from archiver.local.synth.jobs import big_object, job_object
from archiver.local.synth.malformed import malformed_object, skipped_objects
from archiver.local.synth.plans import Overrides, draw_plan, job_coverage, versions
from archiver.local.synth.truth import CorpusSummary, Expectation, SynthObject
from archiver.local.synth.world import World

DEFAULT_START = dt.date(2024, 8, 20)
_SAMPLE_FOLDERS = 16
"""Job folders remembered for the partial uploads among the skipped objects."""


def generate(
    jobs: int,
    seed: int = 0,
    start: dt.date = DEFAULT_START,
    days: int = 30,
    *,
    big_objects: int = 0,
) -> Iterator[SynthObject]:
    """Yield the corpus lazily: `jobs` distinct jobs (plus their earlier versions),
    user activity, malformed and non-JSON objects, and `big_objects` ~39 MB jobs."""
    if jobs < 0 or days < 1 or big_objects < 0:
        raise ValueError("jobs and big_objects must be >= 0 and days >= 1")
    return _Corpus(jobs, World(seed, start, days), big_objects).objects()


def write_corpus(
    outdir: Path,
    jobs: int,
    seed: int = 0,
    start: dt.date = DEFAULT_START,
    days: int = 30,
    *,
    big_objects: int = 0,
) -> CorpusSummary:
    """Write every object under `outdir` with its key as relative path (existing files
    with the same keys are overwritten, others are left alone) and count them."""
    root = os.fspath(outdir)
    made: set[str] = set()
    expectation = Expectation()
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
    return expectation.summary(objects, total_bytes)


def synth_command(outdir: Path, jobs: int, seed: int) -> CorpusSummary:
    """`archiver synth OUTDIR --jobs N --seed S`: write the default corpus."""
    return write_corpus(outdir, jobs, seed)


class _Corpus:
    """The order of a corpus's objects, and the checks that hold across them."""

    def __init__(self, jobs: int, world: World, big_objects: int) -> None:
        self.jobs = jobs
        self.world = world
        self.big_objects = big_objects
        self.keys: set[str] = set()
        self.job_folders: list[str] = []

    def objects(self) -> Iterator[SynthObject]:
        world = self.world
        coverage = job_coverage()
        for index in range(self.jobs):
            plan = draw_plan(world, coverage[index] if index < len(coverage) else Overrides())
            for version in versions(world, plan):
                obj = job_object(world.rng, plan, version)
                if version.final and len(self.job_folders) < _SAMPLE_FOLDERS:
                    self.job_folders.append(obj.key.rsplit("/", 1)[0])
                yield self._emit(obj)
        for index in range(max(8, self.jobs // 8)):
            yield self._emit(activity_object(world, index))
        for index in range(max(8, self.jobs // 100)):
            yield self._emit(malformed_object(world, index))
        for obj in skipped_objects(world, self.jobs, self.job_folders):
            yield self._emit(obj)
        for _ in range(self.big_objects):
            yield self._emit(big_object(world))

    def _emit(self, obj: SynthObject) -> SynthObject:
        if obj.key in self.keys:
            raise AssertionError(f"synth produced the key {obj.key} twice")
        self.keys.add(obj.key)
        return obj
