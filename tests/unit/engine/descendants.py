"""This process's child processes, read from /proc (the engine's workers are plain children)."""

from __future__ import annotations

import os
from pathlib import Path


def child_pids() -> list[int]:
    """The pids of this process's live children (Linux: /proc/self/task/*/children)."""
    tasks = Path(f"/proc/{os.getpid()}/task")
    assert tasks.is_dir(), "these tests read child processes from /proc (Linux)"
    found: set[int] = set()
    for task in tasks.iterdir():
        try:
            found.update(int(pid) for pid in (task / "children").read_text().split())
        except OSError:
            continue  # a thread that ended while we looked
    return sorted(found)
