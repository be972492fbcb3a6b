"""The policy a run writes under: loaded from its file (a local path or an `s3://` key), or the default."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from archiver.config import Settings
from archiver.engine.stores import open_url
from archiver.errors import NotFoundError, PolicyError
from archiver.formats.policy import DEFAULT_POLICY, Policy, read_policy

MAX_POLICY_BYTES = 1024 * 1024


def current_policy(settings: Settings) -> Policy:
    """The settings' policy, or the default one (secret-named payload keys redacted) when none is loaded."""
    return settings.policy or DEFAULT_POLICY


async def with_policy(settings: Settings, key: bytes | None) -> Settings:
    """The settings with the policy `ARCHIVER_POLICY` names loaded (unchanged when it names none).

    A policy that cannot be read or is wrong is a PolicyError: one line, and nothing is written.
    """
    location = settings.policy_location
    if not location:
        return settings
    text = await _read(location, settings)
    return replace(settings, policy=read_policy(text, key=key, name=f"ARCHIVER_POLICY {location}"))


async def _read(location: str, settings: Settings) -> str:
    if location.startswith("s3://"):
        folder, _, name = location.rpartition("/")
        store = await open_url(folder + "/", settings, create=False)
        try:
            body = (await store.get(name)).body
        except NotFoundError:
            raise PolicyError(f"ARCHIVER_POLICY {location}: no such object") from None
        finally:
            await store.close()
    else:
        try:
            body = Path(location).read_bytes()[: MAX_POLICY_BYTES + 1]
        except OSError as error:
            raise PolicyError(f"ARCHIVER_POLICY {location}: {error.strerror or error}") from None
    if len(body) > MAX_POLICY_BYTES:
        raise PolicyError(f"ARCHIVER_POLICY {location}: larger than {MAX_POLICY_BYTES} bytes")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError(f"ARCHIVER_POLICY {location}: not UTF-8 text") from None
