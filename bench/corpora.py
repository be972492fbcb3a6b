"""The bench's corpora, cached under bench/out/<name> with a `<name>.stamp.json` of what made them.

Two generators: `archiver.local.synth.write_corpus` (the heavier synthetic corpus, also the
one-day scaling corpora) and the bench's own held-out small-object generator (heldout.py).
A stamp records the parameters and a hash of the generator's source; a change of either
rewrites the corpus.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import heldout
import orjson
from harness import OUT, log

from archiver.local.synth import write_corpus

START = dt.date(2024, 8, 20)
DAYS = 30
SCALE_DAY = dt.date(2024, 9, 16)
"""The day of the one-day scaling corpora (after synth's format change: new-format details only)."""


def _fingerprint(kind: str) -> str:
    """Corpora are rebuilt when their generator changes."""
    digest = hashlib.sha256()
    if kind == "heldout":
        modules = [Path(heldout.__file__)]
    else:
        import archiver.local.synth as synth

        modules = sorted(Path(synth.__file__).parent.glob("*.py"))
    for module in modules:
        digest.update(module.name.encode() + b"\0" + module.read_bytes())
    return digest.hexdigest()[:16]


def ensure_corpus(
    name: str,
    *,
    jobs: int,
    seed: int,
    start: dt.date = START,
    days: int = DAYS,
    big_objects: int = 0,
    kind: str = "synth",
    shape: dict[str, int] | None = None,
) -> dict[str, Any]:
    """bench/out/<name>, written unless a matching stamp says it already is.

    kind "synth": `write_corpus(jobs=...)` (jobs, their versions, activity, malformed, skipped);
    kind "heldout": heldout.write_heldout with `jobs` objects (and `shape`: recipes,
    workspaces, world_seed).
    """
    folder = OUT / name
    stamp = OUT / f"{name}.stamp.json"
    params = {
        "kind": kind,
        "jobs": jobs,
        "seed": seed,
        "start": start.isoformat(),
        "days": days,
        "big_objects": big_objects,
        "generator": _fingerprint(kind),
        **({"shape": shape} if shape else {}),
    }
    if stamp.exists() and folder.is_dir():
        recorded = json.loads(stamp.read_text())
        if recorded.get("params") == params:
            return {**recorded, "name": name, "path": str(folder), "reused": True}
    log(
        f"writing corpus {name} ({kind}): jobs={jobs} seed={seed} start={start} days={days} big={big_objects}"
    )
    stamp.unlink(missing_ok=True)
    temporary = OUT / f"{name}.partial"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(temporary, ignore_errors=True)
    started = time.perf_counter()
    extra: dict[str, Any] = {}
    if kind == "heldout":
        written = heldout.write_heldout(temporary, jobs, seed=seed, start=start, days=days, **(shape or {}))
        objects, total_bytes = written.objects, written.total_bytes
        expected = {"jobs": written.jobs, "job_lines": written.job_lines, "activity": 0}
        expected["quarantined"] = written.quarantined
        extra["by_kind"] = written.by_kind
    else:
        summary = write_corpus(
            temporary, jobs=jobs, seed=seed, start=start, days=days, big_objects=big_objects
        )
        objects, total_bytes = summary.objects, summary.total_bytes
        expected = {
            "jobs": summary.jobs,
            "job_lines": summary.job_lines,
            "activity": summary.activity_events,
            "quarantined": summary.quarantined,
        }
    temporary.rename(folder)
    recorded = {
        "params": params,
        "objects": objects,
        "json_files": sum(n.endswith(".json") for _, _, names in os.walk(folder) for n in names),
        "bytes": total_bytes,
        "expected": expected,
        "write_seconds": round(time.perf_counter() - started, 1),
        **extra,
    }
    stamp.write_text(json.dumps(recorded, indent=2))
    return {**recorded, "name": name, "path": str(folder), "reused": False}


def parquet_bytes(root: Path) -> dict[str, int]:
    """Bytes of the archive's parquet files (outside _archiver/) and of its own bookkeeping."""
    data = bookkeeping = files = 0
    for folder, _, names in os.walk(root):
        relative = Path(folder).relative_to(root).parts
        for name in names:
            size = os.path.getsize(os.path.join(folder, name))
            if relative and relative[0] == "_archiver":
                bookkeeping += size
            elif name.endswith(".parquet"):
                data += size
                files += 1
    return {"parquet_bytes": data, "parquet_files": files, "archiver_bytes": bookkeeping}


def parseable_files(root: Path, listing: Path) -> int:
    """Write the paths of the files that parse as JSON (what read_json_objects can take) to `listing`."""
    good: list[str] = []
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith(".json"):
                path = os.path.join(folder, name)
                with open(path, "rb") as handle:
                    try:
                        orjson.loads(handle.read())
                    except orjson.JSONDecodeError:
                        continue
                good.append(path)
    good.sort()
    listing.write_text("\n".join(good) + "\n", encoding="utf-8")
    return len(good)


def link_tree(source: Path, dest: Path) -> int:
    """Hard-link every file of `source` into `dest` (same relative paths, replacing existing ones)."""
    linked = 0
    for folder, _, names in os.walk(source):
        target = dest / Path(folder).relative_to(source)
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            (target / name).unlink(missing_ok=True)
            os.link(Path(folder, name), target / name)
            linked += 1
    return linked


def day_prefixes(root: Path) -> int:
    """How many distinct `.../YYYYMMDD/` folders (e.g. USER/jobs/RECIPE/DAY/) hold files under root."""
    prefixes: set[str] = set()
    for folder, _, names in os.walk(root):
        if not names:
            continue
        parts = Path(folder).relative_to(root).parts
        for index, part in enumerate(parts):
            if len(part) == 8 and part.isdigit():
                prefixes.add("/".join(parts[: index + 1]))
                break
    return len(prefixes)


def write_late_jobs(corpus: Path, root: Path, count: int) -> list[str]:
    """`count` new jobs in the layout of `corpus`, written under `root` (a copy of it); their keys.

    Each is a copy of an existing job object, spread evenly over the corpus's key order (so
    they fall into different units of a split day, as late arrivals of a real day would),
    under a new job id: in its key and everywhere in its body.
    """
    keys: list[str] = []
    for folder, _, names in os.walk(corpus):
        parts = Path(folder).relative_to(corpus).parts
        if len(parts) == 5 and parts[1] == "jobs":  # USER/jobs/RECIPE/DAY/JOB_ID: the standard layout
            keys.extend("/".join((*parts, name)) for name in names if name.endswith(".json"))
    keys.sort()
    written: list[str] = []
    for index in range(count):
        for key in keys[(2 * index + 1) * len(keys) // (2 * count) :]:
            parts = key.split("/")
            old_id = parts[4]
            body = corpus.joinpath(*parts).read_bytes()
            try:
                orjson.loads(body)
            except orjson.JSONDecodeError:
                continue  # a malformed object: not a job
            if old_id.encode() not in body:
                continue
            new_id = f"{old_id}L{index}"
            new_key = key.replace(old_id, new_id)
            path = root.joinpath(*new_key.split("/"))
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body.replace(old_id.encode(), new_id.encode()))
            written.append(new_key)
            break
    if len(written) != count:
        raise RuntimeError(f"found only {len(written)} jobs to copy in {corpus}")
    return written
