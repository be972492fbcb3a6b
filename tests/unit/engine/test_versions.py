from __future__ import annotations

from archiver.engine.versions import is_terminal, rank_of


def test_terminal_status_beats_a_later_non_terminal_one() -> None:
    running = rank_of("running", 2_000, 2_000, 2_000, "b")
    succeeded = rank_of("succeeded", 1_000, 1_000, 1_000, "a")
    assert max(running, succeeded) == succeeded


def test_later_completion_wins_between_terminal_versions() -> None:
    first = rank_of("failed", 1_000, 5_000, 5_000, "z")
    second = rank_of("succeeded", 2_000, 1_000, 1_000, "a")
    assert max(first, second) == second


def test_later_object_breaks_ties_and_missing_values_lose() -> None:
    older = rank_of("succeeded", 1_000, 1_000, None, "a")
    newer = rank_of("succeeded", 1_000, 2_000, None, "b")
    unknown = rank_of("succeeded", None, None, None, "c")
    assert sorted([newer, unknown, older]) == [unknown, older, newer]


def test_unknown_statuses_count_as_final() -> None:
    assert is_terminal("succeeded") and is_terminal("failed") and is_terminal("cancelled")
    assert not is_terminal("running") and not is_terminal("Pending") and not is_terminal(None)
