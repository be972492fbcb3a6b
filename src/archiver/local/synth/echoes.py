"""What connectors echo into job logs: credentials and personal data, at every depth of a payload.

An HTTP step's input carries its request headers (an `Authorization` bearer token,
an API key); its output carries the customer the call returned (e-mail, phone,
card number) and the session the API handed back, and a `raw_response` that is
JSON held inside a string, with more JSON inside a string of its own. A connection
event's details echo the connection's client secret.

Every secret value holds `SECRET_TAG`, so a test can assert that no string of any
column of any table still contains it; `secrets_in` lists the exact values an
object echoes (the truth of that object). Values derive from a digest of values the
corpus already drew, never from the random state, so the rest of the corpus keeps
its bytes.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from archiver.local.synth import vocabulary as words
from archiver.local.synth.formatting import Json

SECRET_TAG = "SYNTHSECRET"
"""Part of every echoed secret value, and of nothing else in a corpus."""


def _digest(seed: str, kind: str) -> str:
    return hashlib.sha256(f"{kind}:{seed}".encode()).hexdigest()


def secret(seed: str, kind: str) -> str:
    """A credential as its kind looks (a JWT-like bearer token, an `sk_live_` key, a password...)."""
    body = _digest(seed, kind)[:24]
    shapes = {
        "bearer": f"eyJhbGciOiJIUzI1NiJ9.{SECRET_TAG}{body}.c2lnbmF0dXJl",
        "api_key": f"sk_live_{SECRET_TAG}{body}",
        "access_token": f"ya29.{SECRET_TAG}{body}",
        "refresh_token": f"1//{SECRET_TAG}{body}",
        "client_secret": f"cs_{SECRET_TAG}_{body}",
        "password": f"Tr0ub4dor&{SECRET_TAG}{body[:8]}",
        "aws_secret": f"{SECRET_TAG}{body[:12]}/K7MDENGbPxRfiCY{body[12:20]}",
    }
    return shapes[kind]


def card_number(seed: str) -> str:
    """A 16-digit Visa-like number that passes the Luhn check."""
    digits = [4] + [int(char, 16) % 10 for char in _digest(seed, "card")[:14]]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        total += (digit * 2 - 9 if digit > 4 else digit * 2) if position % 2 == 0 else digit
    digits.append((10 - total % 10) % 10)
    text = "".join(map(str, digits))
    return " ".join(text[i : i + 4] for i in range(0, 16, 4))


def phone_number(seed: str) -> str:
    value = int(_digest(seed, "phone")[:8], 16)
    return f"+1 415-{value % 900 + 100}-{value % 9000 + 1000}"


def http_request(seed: str, url: str) -> Json:
    """An HTTP step's input: the request, its credentials in the headers (depth 2)."""
    return {
        "url": url,
        "method": "GET",
        "headers": {
            "Authorization": f"Bearer {secret(seed, 'bearer')}",
            "X-Api-Key": secret(seed, "api_key"),
        },
    }


def http_response(seed: str, person: str, item: Json) -> Json:
    """An HTTP step's output: a customer (personal data at depth 3), a session (secrets at depth 3, in a
    list at depth 4), and the raw body as JSON inside a string, itself holding JSON inside a string."""
    email = words.email(person, 7)
    inner = orjson.dumps({"refresh_token": secret(seed, "refresh_token"), "scope": "read"}).decode()
    raw = {
        "customer": {"email": email, "phone": phone_number(seed)},
        "auth": {"client_secret": secret(seed, "client_secret"), "grant": inner},
    }
    return {
        "status": 200,
        "body": {
            "items": [item],
            "customer": {
                "name": person,
                "email": email,
                "phone": phone_number(seed),
                "card": card_number(seed),
                "note": f"Call {phone_number(seed)} or write to {email}",
            },
            "session": {
                "access_token": secret(seed, "access_token"),
                "keys": [{"password": secret(seed, "password")}],
            },
        },
        "raw_response": orjson.dumps(raw).decode(),
    }


def connection_settings(seed: str) -> Json:
    """What a connection event's details echo: its client id and secret, its AWS keys."""
    return {
        "client_id": f"client-{_digest(seed, 'client')[:12]}",
        "client_secret": secret(seed, "client_secret"),
        "aws_secret_access_key": secret(seed, "aws_secret"),
    }


def secrets_in(value: Any) -> tuple[str, ...]:
    """The secret values a document echoes, wherever they are (JSON inside strings included)."""
    found: list[str] = []
    _collect(value, found)
    return tuple(dict.fromkeys(found))


def _collect(value: Any, found: list[str]) -> None:
    if isinstance(value, dict):
        for child in value.values():
            _collect(child, found)
    elif isinstance(value, list):
        for child in value:
            _collect(child, found)
    elif isinstance(value, str) and SECRET_TAG in value:
        if value[:1] in "{[":
            _collect(orjson.loads(value), found)
        else:
            found.append(value.removeprefix("Bearer "))
