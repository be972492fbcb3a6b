"""Turn one source object's bytes into `jobs`, `job_lines` and `activity` rows.

This is the pipeline's parse step: bytes in, rows or one rejection out, for every
object, so it never raises for bad input and never touches I/O, the environment
or a clock. Rejections carry a stable reason code and a detail that says what was
wrong and where, but never a value from the object (security rule: object
contents stay out of logs and quarantine rows).

Row dicts have exactly the columns of `schema.py`: ids are lossless strings,
timestamps UTC epoch microseconds, payloads of arbitrary shape JSON text.

Full job details dropped fields that duplicated others in September 2024. Every
column is read from the top-level field first and then from its `context`
duplicate, and `parent_job_id` is restored from the job URL, so objects from
before and after the change land in the same columns with the same meaning.
"""

from __future__ import annotations

import math
import urllib.parse
from typing import Any, NamedTuple, TypedDict, cast

import orjson

from archiver.formats.catalogue import category_of
from archiver.formats.envelopes import (
    JOB_DETAILS,
    JOB_HISTORY,
    PROJECT_DEPLOYMENT,
    Envelope,
    describe_document,
    read_envelope,
)
from archiver.formats.layout import KeyInfo
from archiver.formats.numbers import InexactNumberError, float_id, load_exact, plain
from archiver.formats.records import (
    REASON_EMPTY,
    REASON_INVALID_JSON,
    REASON_INVALID_UTF8,
    REASON_INVALID_VALUE,
    REASON_MISSING_FIELD,
    REASON_TRUNCATED,
    REASON_UNRECOGNIZED,
    ActivityEvent,
    ActivityRow,
    Contents,
    JobLineRow,
    JobRow,
    JobState,
    ParsedObject,
    Reason,
    Rejection,
    Row,
    as_row,
)
from archiver.formats.timestamps import day_of, parse_timestamp

_BOM = b"\xef\xbb\xbf"
_EMPTY: dict[str, Any] = {}
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
# orjson (and the UTF-8 decoder) report input that stops early with this message.
_END_OF_DATA = "unexpected end of data"

# Top-level event keys that have columns of their own; any other top-level key is
# kept inside `details` so nothing the event says is lost (e.g. `resource_changes`).
_EVENT_KEYS = frozenset(
    {"id", "event", "event_type", "timestamp", "user", "team", "workspace", "resource", "details"}
)
# Flat project-deployment keys that have columns of their own; the rest is `details`.
_DEPLOYMENT_KEYS = frozenset(
    {
        "id", "event", "event_type", "timestamp",
        "user_id", "user_id_d", "user_name", "user_email", "user_environment_type",
        "team_id", "team_id_d", "team_name",
        "resource_type", "resource_id", "resource_id_d", "resource_name", "resource_project_name",
        "resource_path",
    }
)  # fmt: skip
# What a project deployment is called when the flat record names no event.
DEPLOYMENT_EVENT = "project_deployed"


def read_object(data: bytes, *, key: str, etag: str, key_info: KeyInfo | None) -> ParsedObject:
    """Every job state and activity event one source object holds, or why it holds none.

    One bad body rejects the whole object: the object (key, etag) is the unit the
    archive records as done, so it is quarantined whole rather than half-archived.
    An object with an id past 2**53 that orjson read as a float is read again with
    `load_exact`, so every id keeps the digits the document held.
    """
    if not data or data.isspace():
        return _reject(REASON_EMPTY, "the object is empty" if not data else "the object is only whitespace")
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        return ParsedObject(_decode_rejection(data, error))
    try:
        try:
            return _read_document(document, key=key, etag=etag, key_info=key_info)
        except InexactNumberError:
            return _read_document(load_exact(data), key=key, etag=etag, key_info=key_info, exact=True)
    except RecursionError:  # Python's parser reaches its depth limit before orjson's
        return _reject(REASON_INVALID_VALUE, "an id past 2**53 in an object nested too deep to read exactly")


def _read_document(
    document: object, *, key: str, etag: str, key_info: KeyInfo | None, exact: bool = False
) -> ParsedObject:
    """`read_object` of a parsed document; `exact` when it was parsed by `load_exact`."""
    envelopes = read_envelope(document, loads=load_exact if exact else orjson.loads)
    if not envelopes:
        return _reject(REASON_UNRECOGNIZED, describe_document(document))
    contents = Contents()
    many = len(envelopes) > 1
    # A layout key names one job: it settles the job id only of an object that holds one job.
    key_names_job = not many or sum(1 for envelope in envelopes if envelope.is_job) == 1
    for envelope in envelopes:
        result: JobState | ActivityEvent | Rejection
        if envelope.is_job:
            result = read_job(envelope, key=key, etag=etag, key_info=key_info, key_names_job=key_names_job)
        else:
            result = read_activity(envelope, key=key, etag=etag)
        if isinstance(result, JobState):
            contents.jobs.append(result)
        elif isinstance(result, ActivityEvent):
            contents.activity.append(result)
        else:
            if many:
                where = f"body {envelope.position + 1} of {len(envelopes)} ({envelope.stream_type}): "
                return _reject(result.reason, where + result.detail)
            return ParsedObject(result)
    return ParsedObject(contents)


def _reject(reason: Reason, detail: str) -> ParsedObject:
    return ParsedObject(Rejection(reason, detail))


def _decode_rejection(data: bytes, error: orjson.JSONDecodeError) -> Rejection:
    """Name the fault and its position; the parser's messages are fixed texts, not content."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as bad:
        if bad.reason == _END_OF_DATA:  # cut inside a multi-byte character
            return Rejection(
                REASON_TRUNCATED, f"the object ends inside a UTF-8 character at byte {bad.start}"
            )
        return Rejection(REASON_INVALID_UTF8, f"invalid UTF-8 at byte {bad.start} ({bad.reason})")
    where = f"line {error.lineno} column {error.colno} (char {error.pos})"
    message = error.msg[:120]
    if message.startswith(_END_OF_DATA) or error.pos >= len(data.rstrip()):
        return Rejection(REASON_TRUNCATED, f"JSON ends early at {where}: {message}")
    return Rejection(REASON_INVALID_JSON, f"{message} at {where}")


# --- jobs -------------------------------------------------------------------------


def read_job(
    envelope: Envelope,
    *,
    key: str,
    etag: str,
    key_info: KeyInfo | None,
    key_names_job: bool = True,
) -> JobState | Rejection:
    """The `jobs` row and `job_lines` rows of one job body, or why it cannot be archived.

    With a layout key the key's folders decide the workspace and the day, and (when
    `key_names_job`, i.e. the object holds this one job) the job id: the key holds it
    exactly, while a body may not (orjson reads integers beyond 64 bits as floats).
    """
    job = envelope.body
    context = job.get("context")
    if not isinstance(context, dict):
        context = _EMPTY
    notes: list[str] = []
    job_id = _job_id(job, context, key_info if key_names_job else None, notes)
    if job_id is None and key_info is not None:
        job_id = key_info.job_id
    if job_id is None:
        return Rejection(REASON_MISSING_FIELD, "job has no id (looked at id, context.job_id and the key)")
    started_at = parse_timestamp(job.get("started_at"))
    completed_at = parse_timestamp(job.get("completed_at"))
    if key_info is not None:
        day = key_info.day
    else:
        moment = started_at if started_at is not None else completed_at
        if moment is None:
            moment = envelope.time_us
        if moment is None:
            return Rejection(
                REASON_MISSING_FIELD,
                "job has no usable date (no layout key, started_at, completed_at or envelope time)",
            )
        day = day_of(moment)
    user_id = _user_id(envelope, context, key_info)
    lines, lines_truncated, line_count = _lines(envelope, (user_id, job_id), key, etag)
    row = _job_row(
        envelope,
        context,
        (user_id, job_id),
        key_info,
        times=(started_at, completed_at),
        lines=(lines_truncated, line_count),
        source=(key, etag),
    )
    return JobState(job_id=job_id, day=day, row=as_row(row), lines=lines, notes=notes)


def _job_id(
    job: dict[str, Any], context: dict[str, Any], key_info: KeyInfo | None, notes: list[str]
) -> str | None:
    """The job id of the body, or the key's when the key names the job (a disagreement is noted)."""
    body_id = _id(job.get("id")) or _id(context.get("job_id"))
    if key_info is None:
        return body_id
    if body_id is not None and body_id != key_info.job_id:
        notes.append(f"job id in body {body_id} differs from key {key_info.job_id}; key kept")
    return key_info.job_id


def _user_id(envelope: Envelope, context: dict[str, Any], key_info: KeyInfo | None) -> str | None:
    """The workspace of a job: the key's folder, else the wrapper's, the context's or the account's id."""
    if key_info is not None:
        return key_info.user_id
    return _id(envelope.user_id) or _id(context.get("user_id")) or _id(envelope.body.get("account_id"))


def _lines(
    envelope: Envelope, job: tuple[str | None, str], key: str, etag: str
) -> tuple[list[Row], bool | None, int | None]:
    """The `job_lines` rows of a job body, whether they were dropped, and how many there were.

    Every row carries the `job` (user id, job id): a line is (user_id, job_id, line_index).
    """
    lines = envelope.body.get("lines")
    if lines is None or envelope.stream_type not in (JOB_HISTORY, JOB_DETAILS):
        # This stream type (or this object) carries no step lines at all.
        return [], None, None
    if isinstance(lines, list):
        rows = [_line_row(line, index, job, key, etag) for index, line in enumerate(lines)]
        return cast(list[Row], rows), False, len(lines)
    # Over 40 MB Workato replaces the lines with "Log lines exceed size limit".
    return [], True, 0


def _job_row(
    envelope: Envelope,
    context: dict[str, Any],
    job: tuple[str | None, str],
    key_info: KeyInfo | None,
    *,
    times: tuple[int | None, int | None],
    lines: tuple[bool | None, int | None],
    source: tuple[str, str],
) -> JobRow:
    """The `jobs` row of a job body, each column read from the top level, then from `context`.

    The caller has read the `job` (user id, job id), `times` (started, completed),
    `lines` (truncated, count) and knows the `source` (key, etag).
    """
    get, cget = envelope.body.get, context.get
    user_id, job_id = job
    recipe_id = (
        _id(get("recipe_id"))
        or _id(get("flow_id"))
        or _id(cget("recipe_id"))
        or (key_info.recipe_id if key_info else None)
    )
    job_url = get("job_url") or cget("job_url")
    parent_job_id = _id(get("parent_id")) or _id(cget("parent_job_id")) or _parent_from_url(job_url, job_id)
    error = _read_error(get("error"), _text(get("error_type")))
    report = get("report")
    return {
        "job_id": job_id,
        "user_id": user_id,
        "recipe_id": recipe_id,
        "recipe_name": _text(cget("recipe_name")),
        "recipe_path": _text(cget("recipe_path")),
        "status": _text(get("status")),
        "title": _text(get("title")),
        "started_at": times[0],
        "completed_at": times[1],
        "master_job_id": _id(get("master_job_id")) or _id(cget("master_job_id")),
        "parent_job_id": parent_job_id,
        "calling_job_id": _id(get("calling_job_id")) or _id(cget("calling_job_id")),
        "calling_recipe_id": _id(get("calling_recipe_id")) or _id(cget("calling_recipe_id")),
        "is_repeat": _first_bool(get("is_repeat"), cget("is_repeat"), cget("repeated_job")),
        "repeat_count": _first_int(get("repeat_count"), cget("repeat_count"), cget("repeated_count")),
        "is_test": _first_bool(get("is_test"), cget("is_test")),
        "action_count": _int(get("action_count")),
        "environment_type": _text(get("environment_type")),
        "environment_id": _id(get("environment_id")),
        "account_id": _id(get("account_id")),
        "account_name": _text(get("account_name")),
        "error_type": error.type,
        "error_message": error.message,
        "error_id": error.id,
        "error_adapter": error.adapter,
        "error_action": error.action,
        "error_line_number": error.line_number,
        "report": None if report is None else _json(report),
        "lines_truncated": lines[0],
        "line_count": lines[1],
        "stream_type": envelope.stream_type,
        "source_key": source[0],
        "source_etag": source[1],
        "user_name": _text(cget("user_name")),
        "user_email": _text(cget("user_email")),
        "job_created_at": parse_timestamp(cget("job_created_at")),
        "error_at": error.at,
        "error_inner_message": error.inner_message,
        "error_raw": error.raw,
    }


def _first_bool(*values: object) -> bool | None:
    """The first value that reads as a boolean."""
    for value in values:
        flag = _bool(value)
        if flag is not None:
            return flag
    return None


def _first_int(*values: object) -> int | None:
    """The first value that reads as a whole number."""
    for value in values:
        number = _int(value)
        if number is not None:
            return number
    return None


class _Error(NamedTuple):
    """The parts of a job's `error` field, one per `error_*` column."""

    type: str | None = None
    message: str | None = None
    id: str | None = None
    adapter: str | None = None
    action: str | None = None
    line_number: int | None = None
    at: int | None = None
    inner_message: str | None = None
    raw: str | None = None


_NO_ERROR = _Error()


def _read_error(error: object, error_type: str | None) -> _Error:
    """`error` is null, a JSON-encoded string, or (from some templates) the parsed object.

    A string that is not a JSON object is kept whole as the message.
    """
    if error is None or error == "":
        return _NO_ERROR if error_type is None else _Error(type=error_type)
    parsed: object = None
    if isinstance(error, dict):
        parsed, raw = error, _json_text(error)
    elif isinstance(error, str):
        raw = error
        if error.lstrip()[:1] == "{":
            try:
                parsed = orjson.loads(error)
            except orjson.JSONDecodeError:
                parsed = None
    else:
        raw = _json_text(error)
    if not isinstance(parsed, dict):
        return _Error(type=error_type, message=raw, raw=raw)
    get = parsed.get
    try:
        error_id = _id(get("error_id"))
    except InexactNumberError:
        if not isinstance(error, str):
            raise  # part of the document: the whole object is read again
        error_id = _id(_dict(load_exact(error)).get("error_id"))
    return _Error(
        type=error_type or _text(get("error_type")),
        message=_text(get("message")),
        id=error_id,
        adapter=_text(get("adapter")),
        action=_text(get("action")),
        line_number=_int(get("line_number")),
        at=parse_timestamp(get("error_at")),
        inner_message=_text(get("inner_message")),
        raw=raw,
    )


def _line_row(line: object, index: int, job: tuple[str | None, str], key: str, etag: str) -> JobLineRow:
    if not isinstance(line, dict):
        line = _EMPTY
    get = line.get
    given_input = get("input")
    stat = get("line_stat")
    total = stat.get("total") if isinstance(stat, dict) else None
    line_error = get("error")
    masked = _bool(get("mask_data")) is True or (
        isinstance(given_input, dict) and len(given_input) == 1 and given_input.get("data") == "masked"
    )
    output = get("output")
    return {
        "job_id": job[1],
        "user_id": job[0],
        "line_index": index,
        "recipe_line_number": _int(get("recipe_line_number")),
        "adapter_name": _text(get("adapter_name")),
        "adapter_operation": _text(get("adapter_operation")),
        "input": None if given_input is None else _json(given_input),
        "output": None if output is None else _json(output),
        "error": line_error if isinstance(line_error, str) or line_error is None else _json_text(line_error),
        "masked": masked,
        "duration_s": _float(total),
        "source_key": key,
        "source_etag": etag,
    }


def _parent_from_url(url: object, job_id: str) -> str | None:
    """The parent job id in `.../job/<PARENT>?child_job_id=<THIS JOB>`, else None.

    Full job details since September 2024 no longer carry `parent_id`; the job URL
    of a child job still names its parent, and it is only trusted when it names
    this job as the child.
    """
    if not isinstance(url, str) or "child_job_id=" not in url:
        return None
    path, _, query = url.partition("?")
    child = None
    for pair in query.split("#", 1)[0].split("&"):
        name, _, value = pair.partition("=")
        if name == "child_job_id":
            child = urllib.parse.unquote_plus(value)
            break
    if child != job_id:
        return None
    marker = path.rfind("/job/")
    if marker < 0:
        return None
    parent = urllib.parse.unquote(path[marker + len("/job/") :].strip("/"))
    return parent if parent and "/" not in parent and parent != job_id else None


# --- activity ---------------------------------------------------------------------


def read_activity(envelope: Envelope, *, key: str, etag: str) -> ActivityEvent | Rejection:
    """The `activity` row of one event body (a structured event or a flat deployment)."""
    body = envelope.body
    occurred_at = parse_timestamp(body.get("timestamp"))
    if occurred_at is None:
        if "timestamp" in body:
            return Rejection(REASON_MISSING_FIELD, "activity event has an unreadable timestamp")
        return Rejection(REASON_MISSING_FIELD, "activity event has no timestamp")
    if envelope.stream_type == PROJECT_DEPLOYMENT:
        parts = _deployment_parts(body)
    else:
        parts = _event_parts(body, envelope.user_id)
    # Workato's id where the event carries one (API records); the stream's copies carry none,
    # and the archive matches them to their API twins by what both agree on (engine/activity.py).
    event_id = _id(body.get("id"))
    event = parts["event"]
    row: ActivityRow = {
        "event_id": event_id,
        "event": event,
        "category": category_of(event) if event else "other",
        "occurred_at": occurred_at,
        "user_id": parts["user_id"],
        "user_name": parts["user_name"],
        "user_email": parts["user_email"],
        "team_id": parts["team_id"],
        "team_name": parts["team_name"],
        "environment_type": parts["environment_type"],
        "resource_type": parts["resource_type"],
        "resource_id": parts["resource_id"],
        "resource_name": parts["resource_name"],
        "resource_path": parts["resource_path"],
        "ip_address": parts["ip_address"],
        "user_agent": parts["user_agent"],
        "details": parts["details"],
        "source_key": key,
        "source_etag": etag,
        "stream_type": envelope.stream_type,
    }
    return ActivityEvent(day=day_of(occurred_at), row=as_row(row))


class _EventParts(TypedDict):
    """The `activity` columns read from an event body; `read_activity` adds the rest."""

    event: str | None
    user_id: str | None
    user_name: str | None
    user_email: str | None
    team_id: str | None
    team_name: str | None
    environment_type: str | None
    resource_type: str | None
    resource_id: str | None
    resource_name: str | None
    resource_path: str | None
    ip_address: str | None
    user_agent: str | None
    details: bytes | None


def _event_parts(body: dict[str, Any], envelope_user_id: object) -> _EventParts:
    user = _dict(body.get("user"))
    team = body.get("team")
    if not isinstance(team, dict):
        team = _dict(body.get("workspace"))
    resource = _dict(body.get("resource"))
    details = body.get("details")
    request = _dict(details.get("request")) if isinstance(details, dict) else _EMPTY
    extras = [name for name in body if name not in _EVENT_KEYS]
    if extras:
        kept: dict[str, Any] = dict(details) if isinstance(details, dict) else {}
        if details is not None and not isinstance(details, dict):
            kept["details"] = details
        for name in extras:
            kept.setdefault(name, body[name])
        details_text: bytes | None = _json(kept)
    else:
        details_text = None if details is None else _json(details)
    environment_type = (
        _text(user.get("environment_type"))
        or _text(team.get("environment_type"))
        or _text(team.get("environment"))
        or _text(body.get("user_environment_type"))
    )
    return {
        "event": _text(body.get("event")) or _text(body.get("event_type")),
        "user_id": _id(user.get("id")) or _id(envelope_user_id),
        "user_name": _text(user.get("name")),
        "user_email": _text(user.get("email")),
        "team_id": _id(team.get("id")),
        "team_name": _text(team.get("name")),
        "environment_type": environment_type,
        "resource_type": _text(resource.get("type")),
        "resource_id": _id(resource.get("id")),
        "resource_name": _text(resource.get("name")) or _text(resource.get("file_name")),
        "resource_path": _text(resource.get("path")) or _text(resource.get("folder_path")),
        "ip_address": _text(request.get("ip_address")),
        "user_agent": _text(request.get("user_agent")),
        "details": details_text,
    }


def _deployment_parts(body: dict[str, Any]) -> _EventParts:
    get = body.get
    rest = {name: value for name, value in body.items() if name not in _DEPLOYMENT_KEYS}
    return {
        "event": _text(get("event")) or _text(get("event_type")) or DEPLOYMENT_EVENT,
        "user_id": _id(get("user_id_d")) or _id(get("user_id")),
        "user_name": _text(get("user_name")),
        "user_email": _text(get("user_email")),
        "team_id": _id(get("team_id_d")) or _id(get("team_id")),
        "team_name": _text(get("team_name")),
        "environment_type": _text(get("user_environment_type")) or _text(get("team_environment_type")),
        "resource_type": _text(get("resource_type")),
        "resource_id": _id(get("resource_id_d")) or _id(get("resource_id")),
        "resource_name": _text(get("resource_project_name")) or _text(get("resource_name")),
        "resource_path": _text(get("resource_path")),
        "ip_address": None,
        "user_agent": None,
        "details": _json(rest) if rest else None,
    }


# --- value readers ----------------------------------------------------------------


def _id(value: object) -> str | None:
    """An id as a lossless string: numbers as integers, strings as given, never a bool.

    A whole number read as a float (`98765.0`, `1e16`, or past 64 bits) is written in
    the digits the document held, never in exponent form (see `numbers.float_id`: past
    2**53 it raises `InexactNumberError` until the object is read with `load_exact`).
    """
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return float_id(value)
    return None


def _text(value: object) -> str | None:
    """A text column: strings as given, scalars spelled out, structures as JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return _json_text(value)


def _bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        return None
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            return None
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                return None
            if not as_float.is_integer():
                return None
            number = int(as_float)
    else:
        return None
    return number if _INT64_MIN <= number <= _INT64_MAX else None


def _float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else _EMPTY


def _json_text(value: object) -> str:
    """JSON text of a parsed value, for columns that also hold plain text."""
    return orjson.dumps(value, default=plain).decode()


def _json(value: object) -> bytes:
    """JSON text of a parsed value, keys in the order given, as UTF-8 bytes.

    Arrow builds string columns from UTF-8 bytes by validating them, about three
    times faster than re-encoding a str, which matters for large step payloads.
    """
    return orjson.dumps(value, default=plain)
