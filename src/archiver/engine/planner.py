"""`plan`: the independent units of a window, each small enough for one worker (one Lambda invocation).

With the destination, planning routes every object of each root through the
root's unit tree and seals any unit that would outgrow `unit_max_objects`, so
the split of a day is decided when it is first planned and recorded in the
ledger; the units printed are the tree's leaves, each archiving its key range.
Without a destination nothing can be recorded: each root is printed whole.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from archiver.config import Settings
from archiver.engine.context import RunContext, ledger_listings
from archiver.engine.listing import ListingOptions, Window, iter_root, plan_source
from archiver.engine.parsing import Parser
from archiver.engine.routing import RootPass
from archiver.engine.units import shard_key
from archiver.formats.layout import is_json_key
from archiver.storage.store import ObjectStore

PLANS_PREFIX = "_archiver/plans/"
"""Where backfill manifests go, inside the archiver's own folder of the archive."""


@dataclass(frozen=True, slots=True)
class PlannedUnit:
    """One independent unit of work, as `plan` prints it and `compact --unit` takes it."""

    unit: str
    objects: int | None = None
    recorded: bool = True

    def as_dict(self) -> dict[str, object]:
        line: dict[str, object] = {"unit": self.unit, "shard_key": shard_key(self.unit)}
        if self.objects is not None:
            line["objects"] = self.objects
        if not self.recorded:
            line["recorded"] = False
        return line


async def plan_units(source: ObjectStore, dest: ObjectStore | None, settings: Settings) -> list[PlannedUnit]:
    window = Window(settings.since, settings.until)
    plan = await plan_source(source, window, ListingOptions.of(settings))
    if dest is None:
        units: list[PlannedUnit] = []
        for root in plan.roots():
            count = 0
            async for info in iter_root(source, plan, root):
                count += is_json_key(info.key)
            units.append(PlannedUnit(root, count, recorded=False))
        return units
    with tempfile.TemporaryDirectory(prefix="archiver-plan-") as workdir:
        ctx = RunContext(
            source=source,
            dest=dest,
            settings=settings,
            workdir=Path(workdir),
            now_us=int(dt.datetime.now(dt.UTC).timestamp() * 1_000_000),
            parser=Parser(1),
        )
        await ctx.ledgers.read(dest, ledger_listings(window.since))
        units = []
        for root in plan.roots():
            root_pass = RootPass(ctx, plan, root, use_markers=False)
            async for _ in root_pass.batches():
                pass
            units.extend(
                PlannedUnit(leaf.unit, root_pass.routed.get(leaf.unit, 0)) for leaf in root_pass.leaves()
            )
        return units


async def write_manifest(dest: ObjectStore, units: Sequence[PlannedUnit], name: str) -> str:
    key = f"{PLANS_PREFIX}{name}.jsonl"
    await dest.put(key, b"".join(orjson.dumps({"unit": unit.unit}) + b"\n" for unit in units))
    return key
