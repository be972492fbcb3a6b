"""The redaction policy end to end: a synthetic corpus that echoes credentials and personal data at every
depth, archived bucket to bucket on a moto server, read back with DuckDB and pyarrow."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow.parquet as pq
import pytest

from archiver.engine.api import RunReport, VerifyReport, activity_sink, verify
from archiver.formats.envelopes import ACTIVITY_API, Envelope
from archiver.formats.masking import CARD_MARK, EMAIL_MARK, PHONE_MARK, is_hashed
from archiver.formats.normalize import read_activity
from archiver.formats.policy import DEFAULT_POLICY, Policy, read_policy
from archiver.formats.records import ActivityEvent
from archiver.local.moto_server import upload_tree
from archiver.local.synth import CorpusSummary, write_corpus
from archiver.local.synth.echoes import SECRET_TAG
from tests.functional.engine.buckets import SETTINGS, archive, download, heads, new_bucket, s3_store
from tests.functional.readback import read_rows

KEY = b"a policy key for tests"
HEAVY = """
[columns.jobs]
user_email = "hash"
title = "mask"
[columns.activity]
user_email = "hash"
[payload.paths]
"$.body.customer.*" = "mask"
"""
TABLES = ("jobs", "job_lines", "activity", "quarantine")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z]{2,}")


@dataclass(frozen=True, slots=True)
class Archived:
    root: Path
    report: RunReport
    verified: VerifyReport


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> tuple[str, CorpusSummary]:
    root = tmp_path_factory.mktemp("policy-corpus")
    summary = write_corpus(root, jobs=300, seed=11, days=6, start=dt.date(2024, 8, 29))
    bucket = new_bucket(moto_endpoint, "policy-src")
    upload_tree(moto_endpoint, bucket, root)
    return bucket, summary


def _archive(endpoint: str, source: str, policy: Policy, folder: Path) -> Archived:
    settings = replace(SETTINGS, policy=policy)
    dest = new_bucket(endpoint, "policy-dst")
    report = archive(endpoint, source, dest, settings)

    async def check() -> VerifyReport:
        stores = s3_store(source, endpoint), s3_store(dest, endpoint)
        try:
            return await verify(*stores, settings)
        finally:
            for store in stores:
                await store.close()

    return Archived(download(endpoint, dest, folder), report, asyncio.run(check()))


@pytest.fixture(scope="module")
def plain(
    corpus: tuple[str, CorpusSummary], moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Archived:
    """The corpus archived with no policy file: the default policy."""
    return _archive(moto_endpoint, corpus[0], DEFAULT_POLICY, tmp_path_factory.mktemp("plain"))


@pytest.fixture(scope="module")
def heavy(
    corpus: tuple[str, CorpusSummary], moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Archived:
    """The corpus archived with e-mail columns hashed, titles and customers masked."""
    return _archive(moto_endpoint, corpus[0], read_policy(HEAVY, key=KEY), tmp_path_factory.mktemp("heavy"))


def _strings(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else []


def test_with_the_default_policy_no_secret_survives_in_any_column_of_any_table(
    corpus: tuple[str, CorpusSummary], plain: Archived
) -> None:
    # GIVEN a corpus whose steps and events echo credentials at every depth and inside JSON strings
    secrets = corpus[1].expected.secrets
    assert len(secrets) > 50
    # WHEN it is archived with no policy file
    texts = [
        text
        for table in TABLES
        for row in read_rows(plain.root, table)
        for v in row.values()
        for text in _strings(v)
    ]
    # THEN no string of any column of any table holds any of them, nor the tag every one carries
    assert not [text for text in texts if SECRET_TAG in text]
    archive_text = "\n".join(texts)
    assert not [secret for secret in secrets if secret in archive_text]
    # ... while the rest of the payloads is kept: the customers' e-mail addresses are still there
    outputs = [orjson.loads(row["output"]) for row in read_rows(plain.root, "job_lines") if row["output"]]
    customers = [
        out["body"]["customer"]
        for out in outputs
        if isinstance(out.get("body"), dict) and "customer" in out["body"]
    ]
    assert customers and all(EMAIL.fullmatch(customer["email"]) for customer in customers)


def test_every_data_file_records_the_policy_its_rows_were_written_under(
    plain: Archived, heavy: Archived
) -> None:
    for archived, policy in ((plain, DEFAULT_POLICY), (heavy, read_policy(HEAVY, key=KEY))):
        # GIVEN an archive written under a policy
        files = sorted(archived.root.rglob("*.parquet"))
        data = [path for path in files if "_archiver" not in path.parts]
        # THEN each data file's Parquet metadata and its ledger entry name that policy's digest,
        # the run report names it, and verify names it as the one policy in force over the window
        assert data
        for path in data:
            assert pq.ParquetFile(path).metadata.metadata[b"archiver.policy"] == policy.digest.encode()
        refs = [
            ref for head in heads(archived.root).values() for ref in head.files if ref.table != "quarantine"
        ]
        assert refs and all(ref.policies == (policy.digest,) for ref in refs)
        assert archived.report.as_dict()["policy"] == policy.digest
        assert archived.verified.ok
        assert archived.verified.as_dict()["policies"] == {policy.digest: len(refs)}


def test_hashed_columns_join_across_tables_as_the_plain_values_did(plain: Archived, heavy: Archived) -> None:
    # GIVEN the same corpus archived with plain and with hashed e-mail columns
    query = (
        "SELECT count(*) FROM read_parquet('{root}/jobs/*/*.parquet') j "
        "JOIN read_parquet('{root}/activity/*/*.parquet') a ON j.user_email = a.user_email"
    )
    with duckdb.connect() as connection:
        plain_pairs = connection.execute(query.format(root=plain.root)).fetchall()
        hashed_pairs = connection.execute(query.format(root=heavy.root)).fetchall()
    # THEN the hashed columns join exactly as the plain ones (and the corpus has such pairs)
    assert plain_pairs[0][0] > 0
    assert hashed_pairs == plain_pairs
    # ... and no address is left in them, only keyed hashes
    for table in ("jobs", "activity"):
        emails = [row["user_email"] for row in read_rows(heavy.root, table) if row["user_email"] is not None]
        assert emails and all(is_hashed(email) for email in emails)


def test_masks_catch_what_they_promise_and_every_other_value_is_kept(
    plain: Archived, heavy: Archived
) -> None:
    # GIVEN the corpus archived plain and with titles and customers masked
    plain_lines = _by_line(plain.root)
    heavy_lines = _by_line(heavy.root)
    assert plain_lines.keys() == heavy_lines.keys()
    masked = 0
    for line, row in heavy_lines.items():
        before = plain_lines[line]
        output = orjson.loads(row["output"]) if row["output"] else None
        body = output.get("body") if isinstance(output, dict) else None
        if isinstance(body, dict) and "customer" in body:
            # THEN every customer's e-mail, phone and card number is masked, the name kept
            customer, original = body["customer"], orjson.loads(before["output"])["body"]["customer"]
            assert (customer["email"], customer["phone"], customer["card"]) == (
                EMAIL_MARK,
                PHONE_MARK,
                CARD_MARK,
            )
            assert customer["name"] == original["name"]
            assert not EMAIL.search(customer["note"]) and PHONE_MARK in customer["note"]
            masked += 1
        else:
            # ... and every other line is exactly as the plain archive holds it
            assert row == before
    assert masked > 10
    jobs = {row["job_id"]: row for row in read_rows(plain.root, "jobs")}
    for row in read_rows(heavy.root, "jobs"):
        expected = jobs[row["job_id"]]
        assert {k: v for k, v in row.items() if k not in ("user_email", "title")} == {
            k: v for k, v in expected.items() if k not in ("user_email", "title")
        }


def _by_line(root: Path) -> dict[tuple[str, int], dict[str, Any]]:
    return {(row["job_id"], row["line_index"]): row for row in read_rows(root, "job_lines")}


def test_events_from_the_activity_api_are_written_under_the_policy(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN an API record whose details echo a connection's secret, and a policy hashing e-mail columns
    record = {
        "id": 501,
        "event": "connection_updated",
        "timestamp": "2024-09-02T10:00:00Z",
        "user": {"id": 7, "name": "Ann", "email": "ann@x.com"},
        "resource": {"type": "SharedAccount", "id": 9},
        "details": {"connection": {"client_id": "c-1", "client_secret": f"cs-{SECRET_TAG}"}},
    }
    dest = new_bucket(moto_endpoint, "policy-api")
    policy = read_policy(HEAVY, key=KEY)

    async def pull() -> int:
        event = read_activity(Envelope(ACTIVITY_API, record), key="api:activity_logs", etag="")
        assert isinstance(event, ActivityEvent)
        store = s3_store(dest, moto_endpoint)
        sink = await activity_sink(store, replace(SETTINGS, policy=policy))
        try:
            return await sink.commit([event])
        finally:
            await sink.close()
            await store.close()

    # WHEN the event is archived the way pull-activity archives it
    assert asyncio.run(pull()) == 1
    rows = read_rows(download(moto_endpoint, dest, tmp_path / "api"), "activity")
    # THEN its row holds no secret and a hashed address, in a file that records the policy
    assert len(rows) == 1
    assert orjson.loads(rows[0]["details"])["connection"] == {
        "client_id": "c-1",
        "client_secret": "[redacted]",
    }
    assert is_hashed(rows[0]["user_email"])
    files = list((tmp_path / "api" / "activity").rglob("*.parquet"))
    assert [pq.ParquetFile(path).metadata.metadata[b"archiver.policy"] for path in files] == [
        policy.digest.encode()
    ]
