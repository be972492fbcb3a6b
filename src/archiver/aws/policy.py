"""The redaction policy in Lambda: its file and its key, loaded once per execution environment.

- `ARCHIVER_POLICY`: the policy file, an `s3://bucket/key` or a path in the deployment
  package (relative to the function's root); unset or empty for the default policy.
- `ARCHIVER_POLICY_KEY_SECRET`: the ARN (or name) of the Secrets Manager secret whose
  string is the key of the policy's `hash` rules and of `forget`'s erasures; read
  through Powertools' cache, like the Workato token. Without it, `ARCHIVER_POLICY_KEY`
  as on the command line.

A policy or a key that cannot be read is a one-line ConfigError, raised before
anything is read or written; the key's value never appears in it or in a log.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace

from archiver.aws.secrets import without_response_bodies_in_debug_logs
from archiver.config import Settings, policy_key_from_env
from archiver.engine import api
from archiver.errors import ConfigError
from archiver.formats.masking import key_id
from archiver.formats.policy import Policy

KEY_SECRET_VARIABLE = "ARCHIVER_POLICY_KEY_SECRET"
KEY_MAX_AGE_S = 3600
"""How long Powertools keeps the key before reading the secret again (a rotation takes effect then)."""

_loaded: dict[tuple[str, str], Policy] = {}
"""Policies read in this execution environment, by (location, key id)."""


def with_policy_from_env(settings: Settings, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings with the policy and its key loaded (unchanged when neither is configured)."""
    env = os.environ if environ is None else environ
    key = policy_key(env)
    location = settings.policy_location
    if not location and key is None:
        return settings
    slot = (location, key_id(key) if key else "")
    policy = _loaded.get(slot)
    if policy is None:
        from archiver.aws.runtime import quiet_runner

        with quiet_runner() as runner:
            policy = runner.run(api.with_policy(settings, key)).policy
        assert policy is not None
        _loaded[slot] = policy
    return replace(settings, policy=policy)


def policy_key(env: Mapping[str, str]) -> bytes | None:
    """The policy key: from the secret `ARCHIVER_POLICY_KEY_SECRET` names, else `ARCHIVER_POLICY_KEY`."""
    secret = env.get(KEY_SECRET_VARIABLE, "").strip()
    if not secret:
        return policy_key_from_env(env)
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        with without_response_bodies_in_debug_logs():
            value = parameters.get_secret(secret, max_age=KEY_MAX_AGE_S)
    except GetParameterError as error:
        cause = " ".join(str(error).split())[:300]
        raise ConfigError(
            f"cannot read the policy key from the secret {KEY_SECRET_VARIABLE} names: {cause}"
        ) from None
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if not text.strip():
        raise ConfigError(f"{KEY_SECRET_VARIABLE}'s secret is empty: it must hold the policy key")
    return text.strip().encode()


def forget_policies() -> None:
    """Read the policies again on next use (tests: a new execution environment)."""
    _loaded.clear()
