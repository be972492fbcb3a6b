"""Recognise what a parsed JSON document holds and unwrap it.

Workato's log messages are customer templates: around the placeholders
`{{log_message}}` (the job or event as an object) and `{{{log_message_str}}}` (the
same as a JSON string) a customer can write any keys, so a file may be a bare job,
a wrapper of any shape, a list of events, or a bare JSON string. Recognition is
therefore by content, never by the name of a key: the document is searched a few
levels deep for dicts that look like a job or an activity event. Structured
objects win; JSON-string copies are read only when the document holds no object,
because the string copy may not parse and may disagree with the object.

The stream type says where the body came from (and so whether a job carries its
step lines); the wrapper's own user id and clock travel along as extras.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

import orjson

from archiver.formats.timestamps import parse_timestamp


class StreamType(StrEnum):
    """Where a body came from: the `stream_type` column of `jobs` and `activity`."""

    # Job streams.
    JOB_HISTORY = "job_history"  # a bare job object
    JOB_SUMMARY = "job_summary"  # {"log_message": {job}, "now_utc_micro": ...}
    JOB_STATUS = "job_status"  # {"source", "UserID", "log": {job without lines}, "log_message": "..."}
    JOB_DETAILS = "job_details"  # {"source", "Env", "Time", ..., "Log": {job}, "Log_Str": "..."}
    # Activity streams.
    USER_ACTIVITY = "user_activity"  # a wrapped (or string-encoded) activity event
    ACTIVITY_EVENT = "activity_event"  # a bare activity event
    PROJECT_DEPLOYMENT = "project_deployment"  # flat deployment keys: user_name, team_id_d, ...
    ACTIVITY_API = "activity_api"  # a record of GET /api/activity_logs


JOB_HISTORY = StreamType.JOB_HISTORY
JOB_SUMMARY = StreamType.JOB_SUMMARY
JOB_STATUS = StreamType.JOB_STATUS
JOB_DETAILS = StreamType.JOB_DETAILS
USER_ACTIVITY = StreamType.USER_ACTIVITY
ACTIVITY_EVENT = StreamType.ACTIVITY_EVENT
PROJECT_DEPLOYMENT = StreamType.PROJECT_DEPLOYMENT
ACTIVITY_API = StreamType.ACTIVITY_API

JOB_STREAMS = frozenset({JOB_HISTORY, JOB_SUMMARY, JOB_STATUS, JOB_DETAILS})
ACTIVITY_STREAMS = frozenset({USER_ACTIVITY, ACTIVITY_EVENT, PROJECT_DEPLOYMENT, ACTIVITY_API})

# How deep to look for a body: {"a": {"b": [job]}} puts the job at depth 3.
MAX_DEPTH = 3


class BodyKind(Enum):
    """What a dict is by its content, before the stream type is decided."""

    JOB = "job"
    EVENT = "event"  # a structured activity event
    API_RECORD = "api_record"  # a record of the activity API
    DEPLOYMENT = "deployment"  # a flat project-deployment record


_EVENT_PARTS = ("user", "team", "workspace", "resource", "details")
_DEPLOYMENT_MARKS = ("team_id_d", "resource_id_d", "resource_project_name", "user_id_d")
_USER_ID_KEYS = ("UserID", "UserId", "userId", "user_id")
# The wrapper's own clock, most precise first.
_TIME_KEYS = ("now_utc_micro", "Time_micro", "Time_nano", "Time_utc", "Time", "time", "timestamp")
_DETAILS_TIME_KEYS = frozenset({"Time", "Time_utc", "Time_micro", "Time_nano"})


@dataclass(frozen=True, slots=True)
class Envelope:
    """One job or activity event found in a document, and what its wrapper says about it."""

    stream_type: StreamType
    body: dict[str, Any]
    user_id: object = None  # the wrapper's user id ("UserID"), raw
    time_us: int | None = None  # the wrapper's clock (now_utc_micro, Time_utc, ...), UTC µs
    from_string: bool = False  # the body was read from a JSON-string copy
    position: int = 0  # order of this body in the document

    @property
    def is_job(self) -> bool:
        return self.stream_type in JOB_STREAMS


def read_envelope(document: object, *, loads: Callable[[str], object] = orjson.loads) -> list[Envelope]:
    """Every job and activity event in a parsed document, in document order; [] if none.

    JSON-string copies are parsed with `loads` (the parser that read the document).
    Never raises: anything unrecognisable is simply not returned.
    """
    found: list[tuple[dict[str, Any], BodyKind, dict[str, Any] | None]] = []
    strings: list[tuple[str, dict[str, Any] | None]] = []
    _search(document, None, 0, found, strings)
    if found:
        return [
            _envelope(body, kind, wrapper, False, index) for index, (body, kind, wrapper) in enumerate(found)
        ]
    envelopes: list[Envelope] = []
    for text, wrapper in strings:
        parsed = _loads_copy(text, loads)
        if parsed is None:
            continue
        inner: list[tuple[dict[str, Any], BodyKind, dict[str, Any] | None]] = []
        _search(parsed, None, 0, inner, [])
        for body, kind, inner_wrapper in inner:
            envelopes.append(
                _envelope(body, kind, inner_wrapper or wrapper, True, len(envelopes)),
            )
    return envelopes


def describe_document(document: object) -> str:
    """A short account of a document that holds no job or event, naming no values.

    Shapes and counts only: object contents must never reach logs or quarantine rows.
    """
    strings: list[tuple[str, dict[str, Any] | None]] = []
    _search(document, None, 0, [], strings)
    copies = [text for text, _ in strings if _looks_like_json(text)]
    unreadable = sum(1 for text in copies if _loads_copy(text, orjson.loads) is None)
    if isinstance(document, dict):
        shape = f"a JSON object with {len(document)} keys"
    elif isinstance(document, list):
        shape = f"a JSON array of {len(document)} items"
    elif isinstance(document, str):
        shape = "a JSON string"
    elif isinstance(document, bool) or document is None:
        shape = "a JSON literal"
    else:
        shape = "a JSON number"
    detail = f"{shape} holding no job or activity event within {MAX_DEPTH} levels"
    if unreadable:
        detail += f"; {unreadable} embedded JSON string copy(ies) did not parse"
    return detail


def _search(
    value: object,
    wrapper: dict[str, Any] | None,
    depth: int,
    found: list[tuple[dict[str, Any], BodyKind, dict[str, Any] | None]],
    strings: list[tuple[str, dict[str, Any] | None]],
) -> None:
    """Collect bodies (never looking inside one) and the strings that might be copies."""
    if isinstance(value, dict):
        kind = _kind(value)
        if kind is not None:
            found.append((value, kind, wrapper))
            return
        if depth >= MAX_DEPTH:
            return
        for item in value.values():
            if isinstance(item, dict | list):
                _search(item, value, depth + 1, found, strings)
            elif isinstance(item, str):
                strings.append((item, value))
    elif isinstance(value, list):
        if depth >= MAX_DEPTH:
            return
        for item in value:
            if isinstance(item, dict | list):
                _search(item, wrapper, depth + 1, found, strings)
            elif isinstance(item, str):
                strings.append((item, wrapper))
    elif isinstance(value, str):
        strings.append((value, wrapper))


def _kind(candidate: dict[str, Any]) -> BodyKind | None:
    """What a dict is by its content: a job, an event, an API record, a deployment, or None."""
    if "status" in candidate:
        has_context = isinstance(candidate.get("context"), dict)
        names_recipe = has_context or "recipe_id" in candidate or "flow_id" in candidate
        if names_recipe and (has_context or "id" in candidate or "started_at" in candidate):
            return BodyKind.JOB
    if isinstance(candidate.get("event"), str) and _has_event_parts(candidate):
        return BodyKind.EVENT
    if isinstance(candidate.get("event_type"), str) and _has_event_parts(candidate):
        return BodyKind.API_RECORD
    if "resource_type" in candidate and (
        candidate["resource_type"] == "Deployment" or any(mark in candidate for mark in _DEPLOYMENT_MARKS)
    ):
        return BodyKind.DEPLOYMENT
    return None


def _has_event_parts(candidate: dict[str, Any]) -> bool:
    return any(isinstance(candidate.get(part), dict) for part in _EVENT_PARTS)


def _envelope(
    body: dict[str, Any],
    kind: BodyKind,
    wrapper: dict[str, Any] | None,
    from_string: bool,
    position: int,
) -> Envelope:
    bare = wrapper is None and not from_string
    stream_type: StreamType
    if kind is BodyKind.JOB:
        stream_type = JOB_HISTORY if bare else _job_stream(body, wrapper)
    elif kind is BodyKind.DEPLOYMENT:
        stream_type = PROJECT_DEPLOYMENT
    elif kind is BodyKind.API_RECORD:
        stream_type = ACTIVITY_API
    else:
        stream_type = ACTIVITY_EVENT if bare else USER_ACTIVITY
    if wrapper is None:
        return Envelope(stream_type, body, from_string=from_string, position=position)
    return Envelope(
        stream_type,
        body,
        user_id=_first(wrapper, _USER_ID_KEYS),
        time_us=_wrapper_time(wrapper),
        from_string=from_string,
        position=position,
    )


def _job_stream(job: dict[str, Any], wrapper: dict[str, Any] | None) -> StreamType:
    """Which wrapped job stream, by the wrapper's own markers first.

    The full-job-details wrapper carries Time fields, the summary `now_utc_micro`.
    Any other wrapper (a customer's template, or a bare JSON string) around a job
    with step lines holds a job-history object; without lines, a job status.
    """
    if wrapper is not None:
        if any(key in wrapper for key in _DETAILS_TIME_KEYS):
            return JOB_DETAILS
        if "now_utc_micro" in wrapper:
            return JOB_SUMMARY
    return JOB_HISTORY if "lines" in job else JOB_STATUS


def _first(wrapper: dict[str, Any], keys: tuple[str, ...]) -> object:
    for key in keys:
        value = wrapper.get(key)
        if value is not None:
            return value
    return None


def _wrapper_time(wrapper: dict[str, Any]) -> int | None:
    for key in _TIME_KEYS:
        value = wrapper.get(key)
        if value is not None:
            micros = parse_timestamp(value)
            if micros is not None:
                return micros
    return None


def _looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[", '"')


def _loads_copy(text: str, loads: Callable[[str], object]) -> object:
    """A JSON-string copy as a value (a list or dict), or None if it is not one."""
    if not _looks_like_json(text):
        return None
    try:
        value = loads(text)
        if isinstance(value, str) and _looks_like_json(value):  # encoded twice
            value = loads(value)
    except ValueError:  # orjson.JSONDecodeError and json.JSONDecodeError are ValueErrors
        return None
    return value if isinstance(value, dict | list) else None
