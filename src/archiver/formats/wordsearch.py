"""Whether a text holds any of a few words, in one pass over it however many words there are.

The redaction policy's cheap test (does an object's payload text hold a secret-like word or a
key a rule names?) runs on every object, so it must cost little next to parsing the object.
Python has no fast way to look for several words at once: `in` reads the text once per word
(about 1 ns a byte each, nine passes for the secret hints), and `re` tries every alternative at
every position (over 50 ns a byte for the same words). Rust's regex engine finds a set of literal
words with a vectorised prefilter, over a gigabyte a second. pydantic-core runs that engine for
string patterns, so a `str` schema whose pattern is the words is that engine, compiled once;
wrapped to give `None` instead of raising when the text has none of the words (an exception per
object would cost more than the search).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


class WordSearch:
    """Finds whether ASCII text holds any of `words` (ASCII bytes, matched as they are). Compiled at
    its first search, so a process that never searches never loads pydantic-core (about 20 ms)."""

    __slots__ = ("_validate", "words")

    def __init__(self, words: tuple[bytes, ...]) -> None:
        self.words = words
        self._validate: Callable[[bytes], Any] | None = None

    def found_in(self, text: bytes) -> bool:
        """Whether `text` holds one of the words; text that is not ASCII (the callers fold theirs to
        ASCII) is said to, so that the caller looks properly."""
        if not self.words:
            return False
        if not text.isascii():
            return True
        validate = self._validate or self._compile()
        return validate(text) is not None

    def _compile(self) -> Callable[[bytes], Any]:
        from pydantic_core import SchemaValidator, core_schema

        pattern = "|".join("".join(_literal(byte) for byte in word) for word in self.words)
        schema = core_schema.with_default_schema(
            core_schema.str_schema(pattern=pattern), default=None, on_error="default"
        )
        config = core_schema.CoreConfig(regex_engine="rust-regex")
        self._validate = SchemaValidator(schema, config).validate_python
        return self._validate

    def __reduce__(self) -> tuple[object, tuple[tuple[bytes, ...]]]:
        """Sent to a worker process as its words: each process compiles a set of words once."""
        return word_search, (self.words,)

    def __repr__(self) -> str:
        return f"WordSearch({self.words!r})"


@functools.lru_cache(maxsize=256)
def word_search(words: tuple[bytes, ...]) -> WordSearch:
    """The search for these words, compiled once per process."""
    return WordSearch(words)


def _literal(byte: int) -> str:
    """One byte of a word as a pattern that matches only that byte (letters and digits as themselves)."""
    char = chr(byte)
    return char if char.isascii() and char.isalnum() else f"\\x{byte:02x}"
