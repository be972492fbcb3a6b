"""`schedule_handler`: the nightly compact + verify, and how it behaves with little time left."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from archiver.aws.handlers import schedule_handler
from tests.functional.aws.archive import assert_same_archive, download_tree, s3_client
from tests.functional.aws.conftest import DEST_PREFIX, START, Deployed
from tests.functional.aws.lambda_context import LambdaContext
from tests.unit.aws.events import load_event


def nightly_event(day: dt.date) -> dict[str, Any]:
    event = load_event("eventbridge_scheduled.json")
    event["time"] = f"{day.isoformat()}T03:00:00Z"
    return event


def archive_keys(deployed: Deployed) -> list[str]:
    client: Any = s3_client(deployed.endpoint)
    listed = client.list_objects_v2(Bucket=deployed.dest_bucket, Prefix=DEST_PREFIX)
    return [item["Key"] for item in listed.get("Contents", [])]


def test_a_night_compacts_everything_then_verifies_the_final_days(
    deployed: Deployed, clean_archive: Path, tmp_path: Path
) -> None:
    # GIVEN a nightly event 16 days after the corpus starts (days 0-2 are past the 14-day retry window)
    event = nightly_event(START + dt.timedelta(days=16))
    # WHEN the schedule handler runs with a full Lambda's time
    result = schedule_handler(event, LambdaContext(remaining_s=900))
    # THEN everything was compacted, nothing is left, and verify of those days passed
    assert result["complete"] is True and result["units_left"] == 0
    assert result["compact"]["objects_failed"] == 0
    verify = result["verify"]
    assert verify["ok"] is True and verify["objects_checked"] > 0
    assert verify["window"] == {
        "since": START.isoformat(),
        "until": (START + dt.timedelta(days=2)).isoformat(),
    }
    assert_same_archive(
        download_tree(deployed.endpoint, deployed.dest_bucket, DEST_PREFIX, tmp_path / "g"), clean_archive
    )


def test_too_little_time_starts_nothing_and_the_next_night_catches_up(
    deployed: Deployed, clean_archive: Path, tmp_path: Path
) -> None:
    # GIVEN an invocation with 20 s left (a retry that arrives late, or a tiny timeout)
    event = nightly_event(START + dt.timedelta(days=16))
    # WHEN it runs
    starved = schedule_handler(event, LambdaContext(remaining_s=20))
    # THEN it starts neither compact nor verify, says so, and has written nothing
    assert starved["compact"] == {"skipped": "less than 60s left"}
    assert starved["verify"] == {"skipped": "less than 30s left"}
    assert starved["complete"] is False
    assert archive_keys(deployed) == []
    # AND the next invocation with time does everything
    again = schedule_handler(event, LambdaContext(remaining_s=900))
    assert again["complete"] is True and again["verify"]["ok"] is True
    assert_same_archive(
        download_tree(deployed.endpoint, deployed.dest_bucket, DEST_PREFIX, tmp_path / "g"), clean_archive
    )


class ShrinkingContext(LambdaContext):
    """A Lambda whose clock runs 30 s per question: after a few units the time is gone."""

    def __init__(self, remaining_s: float) -> None:
        super().__init__(remaining_s=remaining_s)
        self._asked = 0

    def get_remaining_time_in_millis(self) -> int:
        self._asked += 1
        return max(0, int((self.remaining_s - 30 * self._asked) * 1000))


def test_a_run_out_of_time_stops_between_units_and_reports_what_is_left(
    deployed: Deployed, clean_archive: Path, tmp_path: Path
) -> None:
    # GIVEN an invocation whose time runs out after a few units
    event = nightly_event(START + dt.timedelta(days=16))
    # WHEN it runs
    partial = schedule_handler(event, ShrinkingContext(remaining_s=250))
    # THEN it committed some units, stopped starting new ones, and says how many are left
    assert partial["units_left"] > 0 and partial["complete"] is False
    assert partial["compact"]["units_committed"] > 0
    # AND the next invocation finishes them: the archive equals one compact
    finished = schedule_handler(event, LambdaContext(remaining_s=900))
    assert finished["units_left"] == 0 and finished["complete"] is True
    assert_same_archive(
        download_tree(deployed.endpoint, deployed.dest_bucket, DEST_PREFIX, tmp_path / "g"), clean_archive
    )
