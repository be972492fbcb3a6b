"""Masks catch what they promise and keep what they should; hashing is keyed, stable and idempotent."""

from __future__ import annotations

import pytest

from archiver.formats.masking import (
    AWS_KEY_MARK,
    CARD_MARK,
    EMAIL_MARK,
    PHONE_MARK,
    TOKEN_MARK,
    hash_text,
    is_hashed,
    luhn_valid,
    mask_number,
    mask_text,
)

CAUGHT = [
    ("write to jane.doe+orders@mail.example.co.uk today", f"write to {EMAIL_MARK} today"),
    ("call +1 415-555-0134", f"call {PHONE_MARK}"),
    ("office (415) 555-0199, desk 415.555.0188", f"office {PHONE_MARK}, desk {PHONE_MARK}"),
    ("Paris +33 1 42 68 53 00", f"Paris {PHONE_MARK}"),
    ("card 4111 1111 1111 1111 exp 12/27", f"card {CARD_MARK} exp 12/27"),
    ("card 5500-0000-0000-0004", f"card {CARD_MARK}"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def", f"Authorization: Bearer {TOKEN_MARK}"),
    ("key AKIAIOSFODNN7EXAMPLE used", f"key {AWS_KEY_MARK} used"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", AWS_KEY_MARK),
]
KEPT = [
    "2024-09-01T12:00:00.123456Z",
    "2024-09-01 12:00:00 -0700",
    "order 99999 amount 1234.56 qty 3",
    "job j-AEcaNzd9-dGQ4Bf, user 12345, recipe 40000001",
    "4111111111111112",  # sixteen digits that fail the Luhn check: an id, not a card
    "1725192000000000",  # a timestamp in microseconds
    "v1.2.3.4 at 10.0.0.1",
    "Bearer short",
    "Zoë Müller, 山田 太郎",
]


@pytest.mark.parametrize(("text", "masked"), CAUGHT)
def test_masks_catch_what_they_promise(text: str, masked: str) -> None:
    # GIVEN text holding an e-mail, a phone, a card, a bearer token or an AWS key; WHEN masked
    # THEN each is replaced by its marker and the rest of the text is kept
    assert mask_text(text) == masked


@pytest.mark.parametrize("text", KEPT)
def test_masks_keep_what_they_should(text: str) -> None:
    # GIVEN dates, ids, amounts, numbers that fail the Luhn check, names; WHEN masked; THEN unchanged
    assert mask_text(text) == text


def test_masking_twice_changes_nothing() -> None:
    # GIVEN masked text; WHEN masked again; THEN it is the same (markers match no pattern)
    once = mask_text(" / ".join(text for text, _ in CAUGHT))
    assert mask_text(once) == once


def test_card_numbers_stored_as_numbers_are_masked_too() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert mask_number(4111111111111111) == CARD_MARK
    assert mask_number(1725192000000000) == 1725192000000000
    assert mask_number(42) == 42


def test_hashing_is_keyed_stable_and_idempotent() -> None:
    # GIVEN two keys; WHEN the same value is hashed
    first, again, other = (
        hash_text(b"k1", "ann@x.com"),
        hash_text(b"k1", "ann@x.com"),
        hash_text(b"k2", "ann@x.com"),
    )
    # THEN equal values give equal hashes under one key (joinable), another key gives another hash,
    # the value is not in it, and hashing a hash returns it unchanged
    assert first == again != other
    assert is_hashed(first) and "ann" not in first
    assert hash_text(b"k1", first) == first
