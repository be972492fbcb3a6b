"""`archiver demo`: a synthetic corpus through the embedded S3 server, then a short tour of the archive."""

from __future__ import annotations

import functools
import logging
import tempfile
from pathlib import Path
from typing import TextIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from archiver.config import Settings
from archiver.local.replay import replay
from archiver.local.synth import write_corpus

DEMO_JOBS = 2000
DEMO_SEED = 7
DEMO_OUT = Path("archive")

logger = logging.getLogger(__name__)


def run_demo(settings: Settings, out_dir: Path = DEMO_OUT, *, out: TextIO) -> int:
    """Run the demo and tell `out` (the command's stdout) what happened, for a person to read."""
    say = functools.partial(_say, out)
    with tempfile.TemporaryDirectory(prefix="archiver-demo-") as scratch:
        corpus = Path(scratch) / "corpus"
        summary = write_corpus(corpus, jobs=DEMO_JOBS, seed=DEMO_SEED)
        logger.info("demo corpus: %d objects in %s", summary.objects, corpus)
        megabytes = summary.total_bytes / 1e6
        say(f"1. synthesised {summary.objects} objects ({megabytes:.1f} MB) in the Workato layout")
        say("2. uploaded them to an embedded S3 server (moto on 127.0.0.1) and ran `compact` over HTTP")
        report = replay(corpus, out_dir, settings)
    say(
        f"3. {report.objects_listed} objects listed: {report.objects_archived} archived, "
        f"{report.objects_quarantined} quarantined, {report.objects_skipped} skipped, "
        f"in {report.seconds:.1f}s"
    )
    say(f"\nThe archive is in {out_dir.resolve()}:")
    for table in ("jobs", "job_lines", "activity", "quarantine"):
        data = _read(out_dir, table)
        files = sorted((out_dir / table).rglob("*.parquet"))
        size = sum(path.stat().st_size for path in files)
        say(f"  {table:<11} {data.num_rows:>7} rows  {len(files):>3} files  {size / 1e6:6.2f} MB")
    jobs = _read(out_dir, "jobs")
    say("\nA few jobs:")
    sample = jobs.select(["date", "job_id", "recipe_name", "status", "started_at", "line_count"]).slice(0, 5)
    for row in sample.to_pylist():
        say("  " + "  ".join(str(value) for value in row.values()))
    quarantine = _read(out_dir, "quarantine")
    if quarantine.num_rows:
        say("\nQuarantined objects, by reason:")
        for item in quarantine.group_by("reason").aggregate([("source_key", "count")]).to_pylist():
            say(f"  {item['reason']:<14} {item['source_key_count']}")
    failed = jobs.filter(pc.equal(jobs.column("status"), "failed"))
    say(f"\nFailed jobs: {failed.num_rows} of {jobs.num_rows}. The same question in DuckDB:")
    say(
        f"  SELECT status, count(*) FROM read_parquet('{out_dir}/jobs/*/*.parquet', hive_partitioning=true)"
        " GROUP BY status;"
    )
    return 0


def _say(out: TextIO, line: str) -> None:
    out.write(line + "\n")


def _read(out_dir: Path, table: str) -> pa.Table:
    folder = out_dir / table
    if not folder.exists():
        return pa.table({})
    partitioning = None if table == "quarantine" else "hive"
    return ds.dataset(folder, format="parquet", partitioning=partitioning).to_table()
