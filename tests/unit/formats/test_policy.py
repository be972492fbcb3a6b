"""Loading a policy: each mistake is one line naming its table, column or path; a digest names the rules."""

from __future__ import annotations

import pytest

from archiver.errors import ConfigError, PolicyError
from archiver.formats.policy import (
    DEFAULT_POLICY,
    KEEP,
    REDACT,
    SECRET_HINTS,
    SECRET_SUFFIXES,
    fold,
    is_secret_key,
    parse_path,
    read_policy,
)

GOOD = """
secrets = "redact"
[columns.jobs]
user_email = "hash"
title = "mask"
[columns.activity]
user_email = "hash"
ip_address = "drop"
[payload.keys]
email = "hash"
[payload.paths]
"$.body.customer.*" = "mask"
"$..items[*].id" = "drop"
[payload.job_lines.output.keys]
note = "redact"
"""

MISTAKES = {
    "bad toml": ("[columns.jobs\n", "not valid TOML"),
    "unknown setting": ("secret = 'keep'", "unknown setting 'secret'"),
    "unknown table": ("[columns.jobz]\ntitle = 'mask'", "no table 'jobz' (did you mean 'jobs'?)"),
    "unknown column": (
        "[columns.jobs]\nuser_emial = 'hash'",
        "jobs has no column 'user_emial' (did you mean",
    ),
    "unknown action": ("[columns.jobs]\ntitle = 'scramble'", "columns.jobs.title = 'scramble'"),
    "protected column": ("[columns.activity]\nuser_id = 'hash'", "columns.activity.user_id"),
    "number column": (
        "[columns.jobs]\naction_count = 'mask'",
        "columns.jobs.action_count: mask needs a text",
    ),
    "bad path": ("[payload.paths]\n'$.body..' = 'drop'", "'$.body..' cannot be read at character"),
    "path without $": ("[payload.paths]\n'body.email' = 'drop'", "'body.email' must start with $"),
    "scoped unknown column": ("[payload.jobs.inputs.keys]\na = 'drop'", "jobs has no column 'inputs'"),
    "scoped non-payload column": ("[payload.jobs.title.keys]\na = 'drop'", "title holds no JSON payload"),
    "hash without key": ("[columns.jobs]\nuser_email = 'hash'", "no key is set (ARCHIVER_POLICY_KEY)"),
}


@pytest.mark.parametrize("case", list(MISTAKES))
def test_a_wrong_policy_is_one_line_naming_what_is_wrong(case: str) -> None:
    # GIVEN a policy with one mistake
    text, says = MISTAKES[case]
    # WHEN it is loaded
    with pytest.raises(PolicyError) as raised:
        read_policy(text, name="ARCHIVER_POLICY p.toml")
    # THEN a settings error (exit 2), one line, that names the file and the mistake
    message = str(raised.value)
    assert isinstance(raised.value, ConfigError)
    assert "\n" not in message and message.startswith("ARCHIVER_POLICY p.toml: ")
    assert says in message


def test_a_good_policy_loads_its_rules() -> None:
    policy = read_policy(GOOD, key=b"secret key")
    assert policy.column_rules("jobs") == {"user_email": "hash", "title": "mask"}
    output = policy.payload_rules("job_lines", "output")
    assert output is not None and output.keys == {"email": "hash", "note": "redact"}
    assert [rule.text for rule in output.paths] == ["$.body.customer.*", "$..items[*].id"]
    details = policy.payload_rules("activity", "details")
    assert details is not None and "note" not in details.keys


def test_the_digest_follows_the_rules_and_the_key_never_the_key_itself() -> None:
    # GIVEN the same rules with two keys, and other rules
    one, same = read_policy(GOOD, key=b"k1"), read_policy(GOOD, key=b"k1")
    other_key = read_policy(GOOD, key=b"k2")
    other_rules = read_policy(GOOD.replace('title = "mask"', 'title = "drop"'), key=b"k1")
    # THEN equal policies share a digest; another key or other rules change it; the key shows nowhere
    assert one.digest == same.digest
    assert len({one.digest, other_key.digest, other_rules.digest}) == 3
    assert "k1" not in repr(one) and "k1" not in str(one.source)


def test_the_default_policy_redacts_secret_keys_and_keeps_everything_else() -> None:
    assert DEFAULT_POLICY.column_rules("jobs") == {}
    rules = DEFAULT_POLICY.payload_rules("job_lines", "input")
    assert rules is not None and rules.secrets == REDACT and not rules.keys and not rules.paths
    assert read_policy('secrets = "keep"').payload_rules("job_lines", "input").secrets == KEEP  # type: ignore[union-attr]
    assert read_policy('secrets = "keep"').digest != DEFAULT_POLICY.digest


@pytest.mark.parametrize(
    "name",
    ["password", "Password", "user_password", "passwd", "pwd", "api_key", "apiKey", "X-Api-Key", "API Key",
     "Authorization", "access_token", "refreshToken", "client_secret", "clientSecret", "Cookie", "Set-Cookie",
     "private_key", "aws_secret_access_key", "credentials"],
)  # fmt: skip
def test_secret_key_names_in_the_usual_spellings(name: str) -> None:
    assert is_secret_key(name)


@pytest.mark.parametrize("name", ["email", "name", "total_tokens", "keys", "author", "passenger_count", "id"])
def test_other_keys_are_not_secrets(name: str) -> None:
    assert not is_secret_key(name)


def test_paths_read_dots_wildcards_descendants_and_brackets() -> None:
    steps = parse_path("$..items[*]['odd key'].*")
    assert [(step.name, step.deep) for step in steps] == [
        ("items", True),
        (None, False),
        ("odd key", False),
        (None, False),
    ]


@pytest.mark.parametrize("suffix", SECRET_SUFFIXES)
def test_every_secret_key_holds_a_hint_so_the_cheap_test_never_skips_one(suffix: str) -> None:
    # GIVEN any key the secrets rule catches; THEN its folded form holds a hint the cheap test looks for
    assert any(hint in fold(f"X_{suffix}") for hint in SECRET_HINTS)
