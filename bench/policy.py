"""What the redaction policy costs the parse step: files/s with no policy, the default one and a heavy one.

Parsing is the CPU-bound part of a run, and the policy is applied there, in the
same worker, to every row before it is written. This measures the one-core parse
throughput (read_object, then the policy; files per CPU second) on two in-memory
corpora, side by side in interleaved rounds (medians): the held-out small-object corpus and synth's corpus
(which echoes credentials and personal data in its HTTP steps). Target: the default
policy costs under 10% of files/s.

    python bench/policy.py [--objects N] [--rounds R]
    python bench/run.py --only policy    # the same as a section of the bench, with its target rows

`measure_policy_cost()` is what `bench/run.py` calls; it returns the figures as a dict, and
`policy_tables()` and `policy_targets()` are what `bench/summary.py` prints of them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from heldout import generate as heldout_objects

from archiver.formats.layout import parse_key
from archiver.formats.normalize import read_object
from archiver.formats.policy import DEFAULT_POLICY, Policy, read_policy
from archiver.formats.redaction import redact_parsed
from archiver.local.synth import generate as synth_objects

HEAVY_POLICY = """
[columns.jobs]
user_email = "hash"
user_name = "hash"
title = "mask"
error_message = "mask"
[columns.activity]
user_email = "hash"
user_name = "hash"
ip_address = "drop"
[payload.keys]
email = "hash"
name = "hash"
phone = "mask"
[payload.paths]
"$..customer.*" = "mask"
"$..*" = "mask"
"""
"""Every e-mail column hashed, free text masked, every payload walked and every string masked."""

Corpus = list[tuple[bytes, str]]


def _heldout(objects: int) -> Corpus:
    return [
        (body, key)
        for key, body, _, _ in heldout_objects(objects, seed=7, start=dt.date(2024, 9, 1), days=30)
    ]


def _synth(objects: int) -> Corpus:
    corpus = [(obj.body, obj.key) for obj in synth_objects(max(1, objects // 2), seed=7)]
    return [(body, key) for body, key in corpus if len(body) < 4 * 1024 * 1024][:objects]


def _parser(policy: Policy | None) -> Callable[[Corpus], None]:
    def parse(corpus: Corpus) -> None:
        for body, key in corpus:
            parsed = read_object(body, key=key, etag="e", key_info=parse_key(key))
            if policy is not None:
                redact_parsed(policy, parsed)

    return parse


def _rate(parse: Callable[[Corpus], None], corpus: Corpus) -> float:
    """Files per CPU second of this process: on a shared machine, wall time measures the neighbours."""
    started = time.process_time()
    parse(corpus)
    return len(corpus) / (time.process_time() - started)


def measure_policy_cost(objects: int = 20_000, rounds: int = 5) -> dict[str, Any]:
    """Parse files/s (one core) with no policy, the default policy and a heavy one, on two corpora."""
    policies: dict[str, Policy | None] = {
        "none": None,
        "default": DEFAULT_POLICY,
        "heavy": read_policy(HEAVY_POLICY, key=b"bench key"),
    }
    results: dict[str, Any] = {}
    for name, corpus in (("heldout", _heldout(objects)), ("synth", _synth(objects))):
        rates: dict[str, list[float]] = {label: [] for label in policies}
        _parser(None)(corpus[: min(len(corpus), 500)])  # warm up
        for _ in range(rounds):
            for label, policy in policies.items():
                rates[label].append(_rate(_parser(policy), corpus))
        medians = {label: statistics.median(values) for label, values in rates.items()}
        results[name] = {
            "objects": len(corpus),
            "files_per_s": {label: round(rate) for label, rate in medians.items()},
            "cost": {label: round(1 - medians[label] / medians["none"], 4) for label in ("default", "heavy")},
        }
    worst = max(results[name]["cost"]["default"] for name in results)
    results["target"] = {
        "default_cost_below": COST_GOAL,
        "met": worst < COST_GOAL,
        "worst_default_cost": worst,
    }
    return results


COST_GOAL = 0.10
"""Issue 16: the default policy costs under 10% of parse files/s."""
CORPORA = {"heldout": "held-out corpus", "synth": "synth's corpus"}


def policy_tables(policy: dict[str, Any]) -> list[str]:
    """The policy section's table: parse files per CPU second under each policy, and what each costs."""
    from summary import table

    rows = [
        (
            f"{CORPORA[name]} ({figures['objects']:,} objects)",
            *(f"{figures['files_per_s'][label]:,}" for label in ("none", "default", "heavy")),
            f"{figures['cost']['default'] * 100:.1f}%",
            f"{figures['cost']['heavy'] * 100:.1f}%",
        )
        for name, figures in policy.items()
        if name in CORPORA
    ]
    return [
        table(
            "Redaction policy: parse files per CPU second (read_object + policy, one core), medians",
            rows,
            ("corpus", "no policy", "default", "heavy", "default costs", "heavy costs"),
        )
    ]


def policy_targets(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 16's goal on each corpus: the default policy costs under 10% of parse files/s."""
    from summary import target_row

    return [
        target_row(
            f"policy, {CORPORA[name]}: the default policy's cost of parse files/s",
            figures["cost"]["default"],
            COST_GOAL,
            "<=",
            f"{figures['cost']['default'] * 100:.1f}%",
            f"< {COST_GOAL:.0%}",
        )
        for name, figures in policy.items()
        if name in CORPORA
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(measure_policy_cost(args.objects, args.rounds), indent=2))


if __name__ == "__main__":
    main()
