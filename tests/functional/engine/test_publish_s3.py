"""Iceberg tables of an S3 archive: with a Glue catalog (moto's), and without any catalog."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

from pyiceberg.catalog import load_catalog

from archiver.config import Settings
from tests.functional.cli.test_cli import archiver_cli, cli_env, single_report
from tests.functional.engine.buckets import (
    archive,
    bucket_keys,
    download,
    heads,
    job_body,
    new_bucket,
    put_objects,
    standard_key,
    visible_archive,
)
from tests.functional.iceberg import canonical

DAY = "20240820"


def jobs(count: int, status: str = "running") -> dict[str, bytes]:
    stamp = f"{DAY}100000" if status == "running" else f"{DAY}110000"
    return {
        standard_key("5234", "234", DAY, f"j-{n}", stamp, status): job_body(
            f"j-{n}", status=status, completed_at=None if status == "running" else "2024-08-20T10:00:00Z"
        )
        for n in range(count)
    }


def test_with_a_glue_catalog_compact_publishes_tables_pyiceberg_reads_back(
    moto_endpoint: str, aws_env: str, tmp_path: Path
) -> None:
    # GIVEN an S3 archive and ARCHIVER_CATALOG naming a Glue catalog configured the pyiceberg way
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    put_objects(moto_endpoint, source, jobs(6))
    namespace = f"archiver_{uuid.uuid4().hex[:8]}"
    env = cli_env(
        moto_endpoint,
        ARCHIVER_CATALOG="glue",
        PYICEBERG_CATALOG__GLUE__TYPE="glue",
        ARCHIVER_CATALOG_NAMESPACE=namespace,
        ARCHIVER_PARSE_WORKERS="1",
    )
    # WHEN compact runs, then a late version of two jobs arrives and compact runs again
    first = archiver_cli(["compact", f"s3://{source}/", f"s3://{dest}/", "--json"], env)
    assert first.returncode == 0, first.stderr
    put_objects(moto_endpoint, source, {k: v for k, v in list(jobs(2, "succeeded").items())})
    second = archiver_cli(["compact", f"s3://{source}/", f"s3://{dest}/", "--json"], env)
    assert second.returncode == 0, second.stderr
    # THEN each run published (one commit per table with rows), and pyiceberg reads the tables back
    # from Glue with every job once and the late versions in them
    report = single_report(second)
    published = report["publish"]
    assert isinstance(published, dict) and published["catalog"] == "glue" and published["failures"] == []
    catalog = load_catalog("check", type="glue", **{"s3.endpoint": moto_endpoint, "s3.region": "us-east-1"})
    rows = catalog.load_table((namespace, "jobs")).scan().to_arrow().to_pylist()
    assert Counter(row["job_id"] for row in rows) == Counter(f"j-{n}" for n in range(6))
    assert Counter(row["status"] for row in rows) == {"succeeded": 2, "running": 4}
    lines = catalog.load_table((namespace, "job_lines")).scan().to_arrow().to_pylist()
    assert len(lines) == len({(row["job_id"], row["line_index"]) for row in lines}) == 12
    # AND the table's files are the archive's own, under DEST/jobs/
    assert catalog.load_table((namespace, "jobs")).location() == f"s3://{dest}/jobs"
    # AND a publish from the command line has nothing left to commit
    again = archiver_cli(["publish", f"s3://{dest}/", "--json"], env)
    assert again.returncode == 0, again.stderr
    assert single_report(again)["commits"] == 0
    assert canonical(rows) == canonical(catalog.load_table((namespace, "jobs")).scan().to_arrow().to_pylist())


def test_without_a_catalog_superseded_files_go_right_after_the_commit(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN an S3 archive with no catalog named, and the default settings
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    put_objects(moto_endpoint, source, jobs(3))
    settings = Settings(concurrency=8, parse_workers=1)
    assert archive(moto_endpoint, source, dest, settings).failures == []
    before = set(bucket_keys(moto_endpoint, dest, "jobs/"))
    # WHEN a late version of one job is archived
    put_objects(moto_endpoint, source, dict(list(jobs(1, "succeeded").items())))
    assert archive(moto_endpoint, source, dest, settings).failures == []
    # THEN the file it superseded is gone at once, no head keeps it, and a glob sees every job once
    assert not before & set(bucket_keys(moto_endpoint, dest, "jobs/"))
    folder = download(moto_endpoint, dest, tmp_path / "after")
    assert all(not head.retired for head in heads(folder).values())
    assert len(visible_archive(folder)["jobs"]) == 3
    # AND `archiver publish` says in its report that there is no catalog, and exits 0
    result = archiver_cli(["publish", f"s3://{dest}/", "--json"], cli_env(moto_endpoint))
    assert result.returncode == 0, result.stderr
    report = single_report(result)
    assert report["catalog"] is None and report["commits"] == 0
    assert len(report["notes"]) == 1 and "ARCHIVER_CATALOG" in str(report["notes"])
