"""`archiver demo`: a synthetic corpus through the embedded S3 server, then a short tour of the archive.

The tour reads the archive's Iceberg tables (through its own catalog), as readers do.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import pyarrow as pa
import pyarrow.compute as pc

from archiver.config import Settings
from archiver.engine import api
from archiver.local.replay import replay
from archiver.local.synth import write_corpus
from archiver.storage.localfs import LocalStore

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
    say(f"\nThe archive is in {out_dir.resolve()}, its Iceberg tables in its own catalog:")
    read = functools.partial(_read, out_dir, settings)
    for table in ("jobs", "job_lines", "activity", "quarantine"):
        data = read(table)
        files = sorted((out_dir / table).rglob("*.parquet"))
        size = sum(path.stat().st_size for path in files)
        say(f"  {table:<11} {data.num_rows:>7} rows  {len(files):>3} files  {size / 1e6:6.2f} MB")
    jobs = read("jobs")
    say("\nA few jobs:")
    columns = ["partition_date", "job_id", "recipe_name", "status", "started_at", "line_count"]
    sample = jobs.select(columns).slice(0, 5)
    for row in sample.to_pylist():
        say("  " + "  ".join(str(value) for value in row.values()))
    quarantine = read("quarantine")
    if quarantine.num_rows:
        say("\nQuarantined objects, by reason:")
        for item in quarantine.group_by("reason").aggregate([("source_key", "count")]).to_pylist():
            say(f"  {item['reason']:<14} {item['source_key_count']}")
    failed = jobs.filter(pc.equal(jobs.column("status"), "failed"))
    say(f"\nFailed jobs: {failed.num_rows} of {jobs.num_rows}. The same question in DuckDB:")
    say("  INSTALL iceberg; LOAD iceberg;")
    say(f"  SELECT status, count(*) FROM iceberg_scan('{out_dir}/jobs') GROUP BY status;")
    return 0


def _say(out: TextIO, line: str) -> None:
    out.write(line + "\n")


def _read(out_dir: Path, settings: Settings, table: str) -> pa.Table:
    """The table as of its current snapshot, through the archive's catalog."""
    return api.read_table(LocalStore(out_dir), replace(settings, catalog=None), table)
