"""Load the real-shaped Lambda events in tests/events/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parents[2] / "events"
BUCKET = "workato-audit-logs"
PREFIX = "workato/"
JOB_KEY = (
    "98765/jobs/4321/20240901/j-AEcaNzd9-dGQ4Bf/98765-4321-j-AEcaNzd9-dGQ4Bf-20240901101500-succeeded.json"
)
FAILED_KEY = "98765/jobs/4321/20240901/12345/98765-4321-12345-20240901101700-failed.json"
SPECIAL_KEY = "loose/report 2024+final.json"
"""A key with a space and a real plus: S3 notifications send it as `report+2024%2Bfinal.json`."""


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event
