"""The word search behind the policy's cheap test: any of its words anywhere in the text, in one pass."""

from __future__ import annotations

import pickle

import pytest

from archiver.formats.policy import SECRET_HINTS, fold, fold_bytes
from archiver.formats.wordsearch import word_search

HINTS = tuple(hint.encode() for hint in SECRET_HINTS)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (b'{"id":"4818","note":"order shipped"}', False),
        (b'{"headers":{"authorization":"x"}}', True),
        (b"password", True),
        (b"\x00\x00xcredential\x00", True),
        (b"a\x00pa\x00ss", False),  # a word cut by a value's end is no word
        (b"", False),
    ],
)
def test_it_finds_any_of_its_words_anywhere_and_nothing_else(text: bytes, found: bool) -> None:
    assert word_search(HINTS).found_in(text) is found


def test_words_with_punctuation_match_only_themselves() -> None:
    # GIVEN words holding characters a pattern would read as operators
    search = word_search((b"a.b", b"(x)", b"c|d", b"$ref\\"))
    # THEN each is found as written, and text where an operator would have matched is not
    assert all(search.found_in(b"--" + word + b"--") for word in search.words)
    assert not any(search.found_in(text) for text in (b"aXb", b"x", b"c", b"d", b"ref"))


def test_no_words_find_nothing_and_text_that_is_no_utf8_is_found() -> None:
    # GIVEN text the engine cannot read (the callers pass folded, ASCII text)
    # THEN the search says yes, so the caller looks properly; with no words it says no
    assert word_search(HINTS).found_in(b"\xff\xfe")
    assert not word_search(()).found_in(b"password")


def test_a_search_travels_to_a_worker_as_its_words_and_is_compiled_once_per_process() -> None:
    # GIVEN a search sent through pickle, as a policy is to the parse workers
    search = word_search(HINTS)
    copy = pickle.loads(pickle.dumps(search))
    # THEN it is the same search, from the process's cache
    assert copy is search


@pytest.mark.parametrize(
    "text",
    ["X-Api-Key", "client_secret", "Set-Cookie", "PRIVATE KEY", "to\u212aen", "pass—wörd", "密码password"],
)
def test_folded_bytes_keep_every_hint_the_folded_text_holds(text: str) -> None:
    # GIVEN a key as `fold` reads it and as `fold_bytes` reads its UTF-8
    # THEN every hint in the first is in the second (dropping non-ASCII bytes never hides a hint)
    held = [hint for hint in SECRET_HINTS if hint in fold(text)]
    assert all(hint.encode() in fold_bytes(text.encode()) for hint in held)
