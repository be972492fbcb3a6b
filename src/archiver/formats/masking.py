"""What a redaction policy does to one value: mask patterns in text, hash with a key, redact whole.

Every transformation here is idempotent, so a policy applied twice (a file
rewritten under the policy it was written under, rows carried through a merge)
changes nothing the second time: masks are replaced by markers the patterns do
not match, hashed values carry a prefix that marks them as hashed, and a
redacted value is a fixed marker.
"""

from __future__ import annotations

import hashlib
import hmac
import re

REDACTED = "[redacted]"
HASH_PREFIX = "hmac:"
HASH_HEX = 32
"""Hex digits of the HMAC kept: 128 bits, far beyond any collision an archive could meet."""

EMAIL_MARK = "[email]"
PHONE_MARK = "[phone]"
CARD_MARK = "[card]"
TOKEN_MARK = "[token]"
AWS_KEY_MARK = "[aws-key]"

_HASHED = re.compile(rf"{re.escape(HASH_PREFIX)}[0-9a-f]{{{HASH_HEX}}}")
# One pass over the text: the first alternative that matches at a position wins.
_PATTERNS = re.compile(
    r"(?P<bearer>\b[Bb]earer\s+)[A-Za-z0-9._~+/=-]{8,}"
    r"|(?P<aws>\b(?:AKIA|ASIA|AIDA|AROA)[0-9A-Z]{16}\b"
    r"|(?i:aws_?secret_?access_?key)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=]))"
    r"|(?P<email>[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
    r"|(?P<card>(?<![\w.+-])\d(?:[ -]?\d){12,18}(?![\w.]))"
    r"|(?P<phone>(?<![\w.+-])(?:(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}"
    r"|\+\d{1,3}(?:[ .-]\d{1,4}){3,6})(?![\w.]))"
)
_DIGITS = re.compile(r"\d")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of digits, as every payment card number passes it."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind == "bearer":
        return match.group("bearer") + TOKEN_MARK
    if kind == "aws":
        return AWS_KEY_MARK
    if kind == "email":
        return EMAIL_MARK
    if kind == "card":
        digits = "".join(_DIGITS.findall(match.group(0)))
        if luhn_valid(digits):
            return CARD_MARK
        return match.group(0)  # a long number that is no card (an order id, a timestamp): kept
    return PHONE_MARK


def mask_text(text: str) -> str:
    """`text` with e-mail addresses, phone numbers, Luhn-valid card numbers, bearer tokens and AWS keys
    replaced by markers (`[email]`, `[phone]`, `[card]`, `Bearer [token]`, `[aws-key]`); the rest kept."""
    return _PATTERNS.sub(_replace, text)


def mask_number(value: int) -> int | str:
    """A card number stored as a JSON number is masked too; any other number is kept."""
    if 10**12 <= abs(value) < 10**19 and luhn_valid(str(abs(value))):
        return CARD_MARK
    return value


def is_hashed(text: str) -> bool:
    return _HASHED.fullmatch(text) is not None


def hash_text(key: bytes, text: str) -> str:
    """HMAC-SHA256 of the text under the policy key: equal values stay equal (joinable across
    tables and runs), and without the key nobody can confirm a guess. Hashing a hash is a no-op."""
    if is_hashed(text):
        return text
    digest = hmac.new(key, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return HASH_PREFIX + digest[:HASH_HEX]


def key_id(key: bytes) -> str:
    """A name for the key that reveals nothing about it (part of the policy's digest)."""
    return hmac.new(key, b"archiver policy key", hashlib.sha256).hexdigest()[:16]
