"""`publish_handler` on a moto server (S3 and Glue): what the SQS path archives becomes the Iceberg tables.

The deployment is the template's: every function names the Glue catalog (`ARCHIVER_CATALOG`,
the database as namespace), the publisher alone is given its pyiceberg configuration, and
the database exists before the first publish (the stack creates it; the publisher creates
the tables). The SQS path archives in small batches, whose merges retire files; after each
batch the publisher runs, as its schedule would, and the tables read through pyiceberg must
hold every job and line exactly once, the ledger's rows; at the end, a clean run's rows.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import boto3.session
import pytest

from archiver.aws.handlers import publish_handler, sqs_handler
from archiver.errors import ConfigError
from archiver.local.moto_server import MOTO_CREDENTIALS
from tests.functional.aws.archive import download_tree
from tests.functional.aws.batches import batch, described_objects, failed_ids
from tests.functional.aws.catalogs import reader, table_rows
from tests.functional.aws.conftest import DEST_PREFIX, SOURCE_PREFIX, Deployed
from tests.functional.aws.lambda_context import LambdaContext
from tests.functional.aws.test_sqs_handler import in_batches
from tests.functional.engine.buckets import committed_rows, heads
from tests.functional.iceberg import TABLES, canonical
from tests.functional.readback import read_rows
from tests.unit.aws.events import load_event


def publish() -> dict[str, Any]:
    return publish_handler(load_event("scheduler_publish.json"), LambdaContext())


def test_each_sqs_batch_is_in_the_tables_after_the_next_publish_every_row_once(
    deployed: Deployed, with_catalog: str, clean_archive: Path, tmp_path: Path
) -> None:
    # GIVEN the SQS path with the template's catalog settings, and the source's objects in batches of 10
    database, catalog = with_catalog, reader(deployed.endpoint)
    client: Any = boto3.session.Session(**MOTO_CREDENTIALS).client("s3", endpoint_url=deployed.endpoint)
    described = described_objects(client, deployed.source_bucket, SOURCE_PREFIX)
    batches = in_batches(list(deployed.keys), 10)
    assert len(batches) > 3
    for number, keys in enumerate(batches):
        # WHEN a batch is archived, then the publisher runs as its schedule would
        event = batch(deployed.source_bucket, SOURCE_PREFIX, keys, described=described)
        assert failed_ids(sqs_handler(event, LambdaContext())) == set()
        answer = publish()
        # THEN the publish committed and failed nothing, and the tables hold exactly the ledger's rows
        assert answer["failures"] == [] and answer["catalog"] == "glue"
        folder = download_tree(deployed.endpoint, deployed.dest_bucket, DEST_PREFIX, tmp_path / f"b{number}")
        for name in TABLES:
            got = canonical(table_rows(catalog, database, name))
            assert got == canonical(committed_rows(folder, name), drop=("date",)), (number, name)
        jobs = Counter(row["job_id"] for row in table_rows(catalog, database, "jobs"))
        assert set(jobs.values()) <= {1}, f"batch {number}: a job twice"
    # AND at the end the tables are row for row what a clean run archives
    for name in TABLES:
        clean = canonical(read_rows(clean_archive, name), drop=("date",))
        assert canonical(table_rows(catalog, database, name)) == clean, name
    # AND the tables are in the stack's database, located in the archive
    assert catalog.load_table((database, "jobs")).location() == f"{deployed.dest_url}jobs"
    # AND the next scheduled publish, with nothing new, commits nothing
    again = publish()
    assert again["commits"] == 0 and again["failures"] == [] and again["failure_count"] == 0


def test_the_sqs_function_commits_to_the_ledger_only_and_leaves_superseded_files_to_the_publisher(
    deployed: Deployed, with_catalog: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN the SQS function's environment in the template: the catalog named, no catalog configured
    monkeypatch.delenv("PYICEBERG_CATALOG__GLUE__TYPE")
    client: Any = boto3.session.Session(**MOTO_CREDENTIALS).client("s3", endpoint_url=deployed.endpoint)
    described = described_objects(client, deployed.source_bucket, SOURCE_PREFIX)
    # WHEN it archives every object in batches of 10, whose merges supersede earlier batches' files
    for keys in in_batches(list(deployed.keys), 10):
        event = batch(deployed.source_bucket, SOURCE_PREFIX, keys, described=described)
        assert failed_ids(sqs_handler(event, LambdaContext())) == set()
    # THEN no table was created (it never publishes), and every file it superseded is still there
    glue: Any = boto3.session.Session(**MOTO_CREDENTIALS).client("glue", endpoint_url=deployed.endpoint)
    assert glue.get_tables(DatabaseName=with_catalog)["TableList"] == []
    folder = download_tree(deployed.endpoint, deployed.dest_bucket, DEST_PREFIX, tmp_path / "before")
    retired = {item.key for head in heads(folder).values() for item in head.retired}
    assert retired and all((folder / key).is_file() for key in retired)
    # AND the publisher, once it runs, publishes the ledger and deletes what no snapshot ever held
    monkeypatch.setenv("PYICEBERG_CATALOG__GLUE__TYPE", "glue")
    assert publish()["failures"] == []
    after = download_tree(deployed.endpoint, deployed.dest_bucket, DEST_PREFIX, tmp_path / "after")
    assert not any((after / key).exists() for key in retired)
    assert all(not head.retired for head in heads(after).values())


def test_without_a_catalog_the_publisher_fails_at_once_naming_the_setting(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a publisher deployed without ARCHIVER_CATALOG
    monkeypatch.delenv("ARCHIVER_CATALOG", raising=False)
    # WHEN its schedule invokes it
    with pytest.raises(ConfigError, match="ARCHIVER_CATALOG"):
        publish()


@pytest.mark.parametrize("event", [{"source": "archiver.publish", "rebuild": True}, ["not", "an", "object"]])
def test_an_event_the_publisher_does_not_know_is_refused(
    deployed: Deployed, with_catalog: str, event: Any
) -> None:
    with pytest.raises(ConfigError, match="publish"):
        publish_handler(event, LambdaContext())
