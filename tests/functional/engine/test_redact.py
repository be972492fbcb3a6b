"""`archiver redact`: an archive written under one policy rewritten under another, from the archive alone,
exactly once, and to the same rows as a clean run under the new policy, even after a crash mid-way."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from archiver.config import Settings
from archiver.engine.api import RedactReport, compact, redact, verify
from archiver.formats.policy import DEFAULT_POLICY, read_policy
from archiver.local.synth import write_corpus
from archiver.storage.localfs import LocalStore
from tests.functional.engine.buckets import committed_archive, differences, heads
from tests.functional.faults import CrashingStore, SimulatedCrash

KEY = b"redact key"
HEAVY = read_policy(
    '[columns.jobs]\nuser_email = "hash"\ntitle = "mask"\n[columns.activity]\nuser_email = "hash"\n'
    '[payload.paths]\n"$.body.customer.*" = "mask"\n',
    key=KEY,
)
SETTINGS = Settings(concurrency=8, retire_grace_seconds=0, parse_workers=1)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("redact-corpus")
    write_corpus(root, jobs=150, seed=21, days=4, start=dt.date(2024, 8, 30))
    return root


def _compact(source: Path, dest: Path, settings: Settings) -> None:
    report = asyncio.run(compact(LocalStore(source), LocalStore(dest), settings))
    assert not report.failures


@pytest.fixture(scope="module")
def written_plain(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus archived under the default policy (to be copied by each test)."""
    dest = tmp_path_factory.mktemp("plain")
    _compact(source, dest, replace(SETTINGS, policy=DEFAULT_POLICY))
    return dest


@pytest.fixture(scope="module")
def clean_heavy(source: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """What a clean run under the new policy holds, every table, row by row."""
    dest = tmp_path_factory.mktemp("clean-heavy")
    _compact(source, dest, replace(SETTINGS, policy=HEAVY))
    return committed_archive(dest)


def _redact(dest: Path, *, crash_at: int | None = None) -> RedactReport:
    store = LocalStore(dest) if crash_at is None else CrashingStore(LocalStore(dest), crash_at)
    return asyncio.run(redact(store, replace(SETTINGS, policy=HEAVY)))  # type: ignore[arg-type]


def _copy(archive: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(archive, tmp_path / "archive"))


def test_redact_rewrites_every_file_under_the_new_policy_once(
    written_plain: Path, clean_heavy: dict[str, list[str]], source: Path, tmp_path: Path
) -> None:
    # GIVEN an archive written under the default policy (and no source at hand)
    dest = _copy(written_plain, tmp_path)
    before = sum(len(head.files) for head in heads(dest).values())
    # WHEN it is redacted under a policy that hashes e-mails and masks customers
    report = _redact(dest)
    # THEN every file not under it was rewritten, and the archive holds exactly what a clean run
    # under the new policy holds, every file recording the new policy
    assert report.failures == [] and report.policy == HEAVY.digest
    assert report.files_rewritten > 0 and report.policies_before == {
        DEFAULT_POLICY.digest: report.files_rewritten
    }
    assert before - report.files_rewritten == sum(
        1 for head in heads(dest).values() for ref in head.files if ref.table == "quarantine"
    )
    assert differences(committed_archive(dest), clean_heavy) == {}
    for head in heads(dest).values():
        for ref in head.files:
            if ref.table != "quarantine":
                assert ref.policies == (HEAVY.digest,)
                assert (
                    pq.ParquetFile(dest / ref.key).metadata.metadata[b"archiver.policy"]
                    == HEAVY.digest.encode()
                )
    # ... verify still proves the source archived, and names the one policy of the window
    checked = asyncio.run(verify(LocalStore(source), LocalStore(dest), SETTINGS))
    rewritable = sum(1 for head in heads(dest).values() for ref in head.files if ref.table != "quarantine")
    assert checked.ok and checked.policies == {HEAVY.digest: rewritable}
    # WHEN it runs again; THEN it has nothing left to do
    again = _redact(dest)
    assert (again.files_rewritten, again.units_rewritten, again.failures) == (0, 0, [])


def test_a_crash_mid_way_and_a_rerun_end_as_one_clean_redact(
    written_plain: Path, clean_heavy: dict[str, list[str]], tmp_path: Path
) -> None:
    # GIVEN how many storage calls a whole redact makes
    probe = _copy(written_plain, tmp_path / "probe")
    counting = CrashingStore(LocalStore(probe))
    asyncio.run(redact(counting, replace(SETTINGS, policy=HEAVY)))  # type: ignore[arg-type]
    calls = len(counting.calls)
    for crash_at in sorted({calls // 4, calls // 2, (3 * calls) // 4, calls - 2}):
        dest = _copy(written_plain, tmp_path / f"crash-{crash_at}")
        # WHEN a redact dies before call N, and runs again
        with pytest.raises(SimulatedCrash):
            _redact(dest, crash_at=crash_at)
        report = _redact(dest)
        # THEN the archive is what one clean redact makes, and a third run finds nothing to do
        assert report.failures == []
        assert differences(committed_archive(dest), clean_heavy) == {}, crash_at
        assert _redact(dest).files_rewritten == 0
