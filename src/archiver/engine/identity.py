"""What two copies of one user-activity event agree on, whichever way they came."""

from __future__ import annotations

from archiver.formats.records import Row


def event_identity(row: Row) -> str:
    """The event name, the second it happened, the user, and the resource type and id."""
    occurred = row.get("occurred_at")
    second = "" if occurred is None else str(int(occurred) // 1_000_000)
    parts = (row.get("event"), second, row.get("user_id"), row.get("resource_type"), row.get("resource_id"))
    return "\x1f".join("" if part is None else str(part) for part in parts)
