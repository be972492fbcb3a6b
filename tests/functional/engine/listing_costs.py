"""Source requests of each listing plan on a workspace-shaped corpus.

Run `python -m tests.functional.engine.listing_costs`. Not a test (it takes minutes):
it prints, for `folders`, `prefix` and `flat`, the source LISTs and GETs (the run
report's `by_store`) of a 30-day backfill, of a nightly run after one new day
arrived, and of an unchanged rerun, over a moto server listing 1,000 keys a page as
S3 does. The corpus is shaped like the issue's held-out workspaces: 8 workspaces of
60 recipes, each recipe busy on a few days with a few objects per day folder.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace

from archiver.local.moto_server import running_moto_server
from tests.functional.engine.buckets import SETTINGS, archive, job_body, new_bucket, put_objects, standard_key

WORKSPACES, RECIPES, DAYS = 8, 60, 30
START = dt.date(2024, 7, 1)
PLANS = ("folders", "prefix", "flat")


def day_objects(rng: random.Random, day: dt.date, folders: int) -> dict[str, bytes]:
    """About six objects in each of `folders` recipe-day folders of `day`."""
    objects: dict[str, bytes] = {}
    cells = rng.sample([(w, r) for w in range(WORKSPACES) for r in range(RECIPES)], folders)
    for workspace, recipe in cells:
        user, recipe_id = str(4_000_000 + 7919 * workspace), str(310_000 + 97 * recipe)
        for _ in range(rng.randint(2, 10)):
            job = f"j-{rng.getrandbits(40):010x}"
            key = standard_key(user, recipe_id, f"{day:%Y%m%d}", job, f"{day:%Y%m%d}101500", "succeeded")
            objects[key] = job_body(job)
    return objects


def source_requests(endpoint: str, source: str, dest: str, plan: str) -> str:
    report = archive(endpoint, source, dest, replace(SETTINGS, listing=plan))
    assert report.failures == [], report.failures
    use = report.by_store["source"]
    return f"{use['list']:>5} LIST {use['get']:>6} GET"


def main() -> None:
    rng = random.Random(15)
    backfill: dict[str, bytes] = {}
    for offset in range(DAYS):
        backfill.update(day_objects(rng, START + dt.timedelta(days=offset), 67))
    nightly = day_objects(rng, START + dt.timedelta(days=DAYS), 100)
    print(f"corpus: {len(backfill)} objects over {DAYS} days, then {len(nightly)} new on day {DAYS + 1}")
    with running_moto_server(max_keys=1000) as endpoint:
        source = new_bucket(endpoint, "costs")
        put_objects(endpoint, source, backfill)
        dests = {plan: new_bucket(endpoint, "costs") for plan in PLANS}
        for plan in PLANS:
            print(f"{plan:>8} backfill: {source_requests(endpoint, source, dests[plan], plan)}")
        put_objects(endpoint, source, nightly)
        for plan in PLANS:
            print(f"{plan:>8} nightly:  {source_requests(endpoint, source, dests[plan], plan)}")
        for plan in PLANS:
            print(f"{plan:>8} no-op:    {source_requests(endpoint, source, dests[plan], plan)}")


if __name__ == "__main__":
    main()
