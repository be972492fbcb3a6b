"""Activity documents: user-activity events as each stream writes them.

Four streams: a wrapped event with a JSON-string copy that may disagree with it
(`user_activity`), a bare event (`activity_event`), a flat project-deployment record
that names no event (`project_deployment`), and a record of the activity API
(`activity_api`).
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from archiver.formats.layout import format_day
from archiver.local.synth import vocabulary as words
from archiver.local.synth.echoes import connection_settings, secrets_in
from archiver.local.synth.formatting import Json, day_start_us, dumps, spaced, utc_day
from archiver.local.synth.truth import (
    ACTIVITY_API,
    ACTIVITY_EVENT,
    KIND_ACTIVITY,
    PROJECT_DEPLOYMENT,
    USER_ACTIVITY,
    SynthObject,
    Truth,
)
from archiver.local.synth.world import User, World

_STREAMS = (USER_ACTIVITY, ACTIVITY_EVENT, PROJECT_DEPLOYMENT, ACTIVITY_API)
_STREAM_WEIGHTS = (40, 45, 8, 7)


@dataclass(frozen=True, slots=True)
class _Occasion:
    """Who did what when: the draws every activity stream shares."""

    user: User
    member: tuple[int, str, str]
    occurred: int
    day: dt.date
    timestamp: str
    event_name: str
    resource_type: str
    token: uuid.UUID


@dataclass(frozen=True, slots=True)
class _Document:
    key: str
    body: Any
    user_folder: str | None  # the key's user folder, if the key has one
    event: str | None


def activity_object(world: World, index: int) -> SynthObject:
    """Activity object number `index`: the first four cover every stream, then weighted draws."""
    rng = world.rng
    stream = _STREAMS[index] if index < len(_STREAMS) else rng.choices(_STREAMS, _STREAM_WEIGHTS)[0]
    occasion = _occasion(world)
    if stream == PROJECT_DEPLOYMENT:
        document = _deployment(rng, occasion)
    elif stream == ACTIVITY_API:
        document = _api_record(world, occasion)
    else:
        document = _event_document(rng, occasion, full=stream == USER_ACTIVITY)
    truth = Truth(
        kind=KIND_ACTIVITY,
        stream_type=stream,
        envelope=stream,
        user_id=document.user_folder,
        day=occasion.day,
        event=document.event,
        occurred_us=occasion.occurred,
        secrets=secrets_in(document.body),
    )
    return SynthObject(document.key, dumps(document.body, rng.random() < 0.2), truth)


def _occasion(world: World) -> _Occasion:
    rng = world.rng
    user = rng.choice(world.users)
    member = rng.choice(user.members)
    occurred = day_start_us(rng.choice(world.all_days)) + rng.randrange(86_400) * 1_000_000
    local = rng.random() < 0.3
    timestamp = spaced(occurred, user.offset) if local else spaced(occurred, 0, utc_word=True)
    event_name, resource_type = rng.choice(words.EVENTS)
    token = uuid.UUID(int=rng.getrandbits(128), version=4)
    return _Occasion(user, member, occurred, utc_day(occurred), timestamp, event_name, resource_type, token)


def _deployment(rng: random.Random, occasion: _Occasion) -> _Document:
    user, member = occasion.user, occasion.member
    body = {
        "user_name": member[1],
        "user_environment_id": user.env_id,
        "user_environment_type": user.env_type,
        "user_account_id": user.id,
        "user_account_name": user.name,
        "team_id_d": user.id,
        "team_email": user.email,
        "team_name": user.team,
        "team_environment_id": user.env_id,
        "team_environment_type": user.env_type,
        "team_account_id": user.id,
        "team_account_name": user.name,
        "resource_type": "Deployment",
        "resource_id_d": rng.randint(1, 999_999),
        "resource_project_name": rng.choice(("HR projects", "Finance ↔ ERP", "Intégrations")),
        "resource_target_environment": rng.choice(("Production", "Test")),
        "resource_performed_by": member[1],
        "timestamp": occasion.timestamp,
    }
    key = f"audit/deployments/{format_day(occasion.day)}/{occasion.token}.json"
    return _Document(key, body, None, None)


def _api_record(world: World, occasion: _Occasion) -> _Document:
    rng, user, member = world.rng, occasion.user, occasion.member
    body = {
        "id": world.new_activity_id(),
        "timestamp": spaced(occasion.occurred, 0, utc_word=True),
        "event_type": occasion.event_name,
        "workspace": {"id": user.id, "name": user.team, "email": user.email, "environment": user.env_type},
        "user": {"id": member[0], "name": member[1], "email": member[2]},
        "details": _event_details(rng, occasion.event_name),
        "resource": _resource(rng, occasion.resource_type),
    }
    key = f"audit/activity_logs/{format_day(occasion.day)}/{body['id']}.json"
    return _Document(key, body, None, occasion.event_name)


def _event_document(rng: random.Random, occasion: _Occasion, *, full: bool) -> _Document:
    """A wrapped event with its string copy (`full`), or a bare event."""
    user = occasion.user
    key = f"{user.id}/activity/{format_day(occasion.day)}/{occasion.token}.json"
    event_body = _event(rng, occasion, full=full)
    if not full:
        if rng.random() < 0.05:  # keys with spaces exist too
            return _Document(
                f"audit/manual export/{occasion.token}.json", event_body, None, occasion.event_name
            )
        return _Document(key, event_body, str(user.id), occasion.event_name)
    copy = dict(event_body)
    if rng.random() < 0.3:  # the string copy may disagree with the object
        copy["user"] = {**event_body["user"], "name": "Random User"}
    body = {
        "source": f"Workato {user.env_type.capitalize()} Environment",
        "UserID": str(user.id),
        "log": event_body,
        "log_message": orjson.dumps(copy).decode(),
    }
    return _Document(key, body, str(user.id), occasion.event_name)


def _event(rng: random.Random, occasion: _Occasion, *, full: bool) -> Json:
    """A user-activity event like the seed samples; `full` adds the streamed fields."""
    user, member, event_name = occasion.user, occasion.member, occasion.event_name
    person: Json = {"name": member[1], "id": member[0], "email": member[2]}
    team: Json = {"name": user.team, "id": user.id, "email": user.email}
    if full:
        extra = {
            "environment_id": user.env_id,
            "environment_type": user.env_type,
            "account_id": user.id,
            "account_name": user.name,
        }
        person = {"id": member[0], "external_id": None, "email": member[2], "name": member[1], **extra}
        team = {"id": user.id, "external_id": None, "email": user.email, "name": user.team, **extra}
    event: Json = {"resource": _resource(rng, occasion.resource_type)}
    if event_name == "recipe_renamed":
        event = {"resource_changes": {"name": {"old_value": "Send request via HTTP"}}, **event}
    if not event_name.startswith("package_") and event_name != "recipe_created":
        event["details"] = _event_details(rng, event_name)
    event |= {"team": team, "event": event_name, "user": person, "timestamp": occasion.timestamp}
    return event


def _event_details(rng: random.Random, event_name: str) -> Json:
    details: Json = {
        "request": {
            "ip_address": ".".join(str(rng.randint(1, 254)) for _ in range(4)),
            "user_agent": rng.choice(words.AGENTS),
        }
    }
    if event_name in ("user_login", "user_logout"):
        details["activity"] = rng.choice(("sso_login", "password_login", "switch_team"))
        if details["activity"] == "sso_login":
            details["sso_provider"] = "google"
    elif event_name == "recipe_started":
        details["run_once"] = rng.random() < 0.1
    elif event_name == "recipe_stopped":
        details |= {"stop_reason": rng.choice(("user", "error")), "force": False, "error": False}
    elif event_name in ("connection_created", "connection_updated"):
        details["connection"] = connection_settings(details["request"]["ip_address"])
    return details


def _resource(rng: random.Random, resource_type: str) -> Json:
    resource: Json = {
        "name": rng.choice(words.RECIPE_NAMES),
        "id": rng.randint(100, 99_999),
        "type": resource_type,
    }
    if resource_type == "User":
        person = rng.choice(words.PEOPLE)
        resource |= {
            "name": person,
            "email": words.email(person, 2),
            "email_confirmed_at": "2019-11-24 14:29:30 -0800",
        }
    elif resource_type == "Folder":
        resource["path"] = rng.choice(words.FOLDERS)
    elif resource_type == "SharedAccount":
        resource |= {
            "provider": rng.choice(("postgresql", "asana", "salesforce")),
            "authorized": rng.random() < 0.5,
        }
    elif resource_type == "Package":
        resource |= {
            "file_name": "export-ünïcode.zip",
            "folder_id": rng.randint(1, 9_999),
            "folder_path": "Home/HR",
        }
    elif resource_type == "MemberInvitation":
        person = rng.choice(words.PEOPLE)
        resource |= {"role": "Admin", "name": person, "email": words.email(person, 3)}
    elif resource_type == "Flow" and rng.random() < 0.5:
        resource |= {"path": rng.choice(words.FOLDERS), "folder_id": rng.randint(1, 9_999_999)}
    return resource
