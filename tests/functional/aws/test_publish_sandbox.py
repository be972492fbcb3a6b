"""`publish_handler` inside the reproduction of AWS Lambda's execution environment (see `sandbox`).

Read-only filesystem but /tmp, no /dev/shm, HOME unset (so no `~/.pyiceberg.yaml`, and nowhere
for pyiceberg or pyarrow's S3 client to write but the archive), `__main__` not ours; the
catalog configured by the environment alone, as the template does, against moto's S3 and Glue.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.functional.aws.batches import batch, failed_ids
from tests.functional.aws.catalogs import reader, table_rows
from tests.functional.aws.conftest import SOURCE_PREFIX, Deployed
from tests.functional.aws.sandbox import run_handler
from tests.functional.iceberg import TABLES, canonical
from tests.functional.readback import read_rows
from tests.unit.aws.events import load_event

pytestmark = pytest.mark.slow  # several handler processes, each importing pyiceberg afresh


def test_publish_handler_publishes_the_sqs_paths_archive_inside_lambdas_environment(
    deployed: Deployed, with_catalog: str, clean_archive: Path
) -> None:
    # GIVEN the SQS path's archive of every object, made inside Lambda's environment too
    archived = run_handler("sqs_handler", batch(deployed.source_bucket, SOURCE_PREFIX, list(deployed.keys)))
    assert failed_ids(archived.answer) == set()
    # WHEN the publisher's schedule invokes it there, with the template's catalog settings
    published = run_handler("publish_handler", load_event("scheduler_publish.json"))
    # THEN it created and filled the four tables, wrote nothing outside /tmp (`answer` checks it)
    answer = published.answer
    assert answer["failures"] == [] and answer["commits"] >= 3 and answer["catalog"] == "glue"
    # AND the tables hold, through pyiceberg, exactly what a clean run archives
    catalog = reader(deployed.endpoint)
    for name in TABLES:
        clean = canonical(read_rows(clean_archive, name), drop=("date",))
        assert canonical(table_rows(catalog, with_catalog, name)) == clean, name
    # AND the next scheduled run commits nothing
    again = run_handler("publish_handler", load_event("scheduler_publish.json")).answer
    assert again["commits"] == 0 and again["failures"] == []
