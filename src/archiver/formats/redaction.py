"""Applying a policy: to the rows of a parsed object before they are written, and to Arrow tables
read back from the archive (`redact`).

Payload columns hold JSON text. A value is parsed (orjson) and walked: rules
apply at every depth, through arrays, and into JSON held inside strings, which is
only parsed when a cheap test on the string says a rule could apply (a key the
rules name, a secret-like word). A value nothing applies to keeps its exact text.
Applying a policy twice changes nothing the second time (see `masking.py`), so
rows carried through a merge or a rewrite can never be double-hashed.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

import orjson
import pyarrow as pa

from archiver.formats.masking import REDACTED, hash_text, mask_number, mask_text
from archiver.formats.policy import (
    DROP,
    HASH,
    KEEP,
    MASK,
    PAYLOAD_COLUMNS,
    REDACT,
    SECRET_NAMES,
    TERMINAL,
    PayloadRules,
    Policy,
    fold_bytes,
    is_secret_key,
)
from archiver.formats.records import ParsedObject, Row

State = tuple[int, int]
"""(path rule, steps of it matched so far)."""


def redact_parsed(policy: Policy, parsed: ParsedObject) -> ParsedObject:
    """The object's rows under the policy (changed in place; the same object is returned).

    One cheap test over all the object's payloads joined and folded settles, for most
    objects, that no payload rule applies: then none is parsed. Where one may, the same
    folded text, cut back into its values, says which: only those are parsed.
    """
    folded = None if policy.search is None else fold_bytes(_joined_payloads(parsed))
    payloads = folded is None or policy.may_touch_folded(folded)
    if not payloads and not policy.columns:
        return parsed
    rows = _rows(parsed)
    cells = _payload_cells(policy, rows) if payloads else []  # before the column rules replace any
    if policy.columns:
        for table, row in rows:
            redact_row(policy, table, row, payloads=False)
    _redact_payloads(policy, cells, folded)
    return parsed


_JOB_PAYLOADS = operator.itemgetter(*PAYLOAD_COLUMNS["jobs"])
_LINE_PAYLOADS = operator.itemgetter(*PAYLOAD_COLUMNS["job_lines"])
_EVENT_COLUMNS = PAYLOAD_COLUMNS["activity"]


def _joined_payloads(parsed: ParsedObject) -> bytes:
    """Every payload value of the object as one text, `\\0` between values, in `_rows` order, empty ones
    left out (itemgetters and joins, no call per value; a text value, which the join refuses, is
    encoded only then)."""
    values: list[Any] = []
    for state in parsed.jobs:
        values += _JOB_PAYLOADS(state.row)
        for line in state.lines:
            values += _LINE_PAYLOADS(line)
    values += [event.row.get(column) for event in parsed.activity for column in _EVENT_COLUMNS]
    try:
        return b"\0".join(filter(None, values))
    except TypeError:
        return b"\0".join([_utf8(value) for value in values if value])


def _rows(parsed: ParsedObject) -> list[tuple[str, Row]]:
    """The object's rows with their tables, in the order `_joined_payloads` reads them."""
    rows: list[tuple[str, Row]] = []
    for state in parsed.jobs:
        rows.append(("jobs", state.row))
        rows += [("job_lines", line) for line in state.lines]
    rows += [("activity", event.row) for event in parsed.activity]
    return rows


Cell = tuple[PayloadRules | None, Row, str]
"""(the rules the value is walked by, row, payload column): see `Policy.walks`."""


def _payload_cells(policy: Policy, rows: list[tuple[str, Row]]) -> list[Cell]:
    """The rows' payload values that `_joined_payloads` joins, in its order."""
    walks = policy.walks
    return [(rules, row, column) for table, row in rows for column, rules in walks[table] if row.get(column)]


def _redact_payloads(policy: Policy, cells: list[Cell], folded: bytes | None) -> None:
    """The payload rules on these payload values (`folded`: their `_joined_payloads`, folded, taken
    before any column rule applied; it tells each value's cheap test without folding it again)."""
    pieces: list[bytes | None] = [] if folded is None else list(folded.split(b"\0"))
    if len(pieces) != len(cells):  # a value holding a NUL cuts in two: each value is folded on its own
        pieces = [None] * len(cells)
    for (rules, row, column), piece in zip(cells, pieces, strict=True):
        if rules is None:
            continue
        value = row[column]
        search = rules.search
        if search is None or search.found_in(fold_bytes(_utf8(value)) if piece is None else piece):
            row[column] = _apply_rules(rules, policy.key, value)


def _utf8(value: str | bytes) -> bytes:
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value


def redact_row(policy: Policy, table: str, row: Row, *, payloads: bool = True) -> None:
    """One row of `table` under the policy, in place (`payloads` False: its payloads need nothing)."""
    columns = policy.column_rules(table)
    for column, action in columns.items():
        if action != KEEP and (column not in PAYLOAD_COLUMNS[table] or action in TERMINAL):
            value = row.get(column)
            row[column] = apply_action(
                action, _text(value) if isinstance(value, bytes) else value, policy.key
            )
    if not payloads:
        return
    for column in PAYLOAD_COLUMNS.get(table, ()):
        value = row.get(column)
        if value is not None and columns.get(column, KEEP) not in TERMINAL:
            row[column] = redact_payload(policy, table, column, value)


def redact_payload(policy: Policy, table: str, column: str, value: str | bytes) -> str | bytes | None:
    """One payload column's value: the column's own rule, else its payload rules."""
    whole = policy.column_rules(table).get(column, KEEP)
    if whole in TERMINAL:
        text = value.decode() if isinstance(value, bytes) else value
        replaced: str | None = apply_action(whole, text, policy.key)
        return replaced
    rules = policy.payload_rules(table, column)
    if rules is None or rules.inert or not rules.may_apply(value):
        return value
    return _apply_rules(rules, policy.key, value)


def _apply_rules(rules: PayloadRules, key: bytes, value: str | bytes) -> str | bytes:
    """A payload value under its column's rules (past the cheap test): the same value if nothing changes."""
    masking = rules.whole == MASK
    try:
        document: Any = orjson.loads(value)
    except orjson.JSONDecodeError:
        new, changed = _Walk(rules, key).text(str(_text(value)), _start(rules), masking)
        return new if changed else value
    new, changed = _Walk(rules, key).value(document, _start(rules), masking)
    if not changed:
        return value
    encoded = orjson.dumps(new)
    return encoded if isinstance(value, bytes) else encoded.decode()


_JSON_STARTS = frozenset("{[ \t\n\r")
"""The first characters of a string `looks_like_json` may say yes to (whitespace: it looks further)."""


def _plain(value: Any) -> bool:
    """A scalar no walk changes unless masking: not a container, not a string that may hold JSON."""
    kind = type(value)
    return kind is not dict and kind is not list and (kind is not str or value[:1] not in _JSON_STARTS)


def looks_like_json(text: str) -> bool:
    first = text[:1]
    if first in ("{", "["):
        return True
    return first.isspace() and text.lstrip()[:1] in ("{", "[")


def apply_action(action: str, value: Any, key: bytes) -> Any:
    """A column's (or a matched payload value's) replacement under a keep/drop/hash/mask/redact rule."""
    if value is None or action == KEEP:
        return value
    if action == DROP:
        return None
    if action == REDACT:
        return REDACTED
    if action == HASH:
        if isinstance(value, str):
            return hash_text(key, value)
        return hash_text(key, orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())
    if isinstance(value, str):  # MASK of a column value
        return mask_text(value)
    return value


def redact_table(policy: Policy, table: str, data: pa.Table) -> pa.Table:
    """Rows read back from the archive under the policy (the same columns and types)."""
    rules = policy.column_rules(table)
    payload = [c for c in PAYLOAD_COLUMNS.get(table, ()) if not _inert(policy, table, c)]
    for column in data.column_names:
        action = rules.get(column, KEEP)
        if column in payload:
            values = [
                None if v is None else redact_payload(policy, table, column, v) for v in _values(data, column)
            ]
        elif action != KEEP:
            values = [apply_action(action, v, policy.key) for v in _values(data, column)]
        else:
            continue
        index = data.column_names.index(column)
        data = data.set_column(
            index, data.schema.field(index), pa.array(values, data.schema.field(index).type)
        )
    return data


def _inert(policy: Policy, table: str, column: str) -> bool:
    rules = policy.payload_rules(table, column)
    return policy.column_rules(table).get(column, KEEP) == KEEP and (rules is None or rules.inert)


def _values(data: pa.Table, column: str) -> list[Any]:
    values: list[Any] = data.column(column).to_pylist()
    return values


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _start(rules: PayloadRules) -> tuple[State, ...]:
    return tuple((index, 0) for index in range(len(rules.paths)))


class _Walk:
    """One walk of a payload value: returns (new value, whether anything changed).

    Values come from orjson, so their types are exact (`type(x) is dict`: no subclasses, and a
    bool is no int). Scalars nothing can change are stepped over without a call.
    """

    def __init__(self, rules: PayloadRules, key: bytes) -> None:
        self.rules = rules
        self.key = key
        self.keys = rules.keys
        self.secrets = None if rules.secrets == KEEP else rules.secrets

    def value(self, value: Any, states: tuple[State, ...], masking: bool) -> tuple[Any, bool]:
        return self.child(value, states, masking, None)

    def mapping(self, value: dict[str, Any], states: tuple[State, ...], masking: bool) -> tuple[Any, bool]:
        if not states and not masking:
            return self.keyed(value)
        out: dict[str, Any] | None = None
        for name, child in value.items():
            following = self.advance(states, name) if states else states
            action = self.action(name, following)
            if action is None and not masking and _plain(child):
                continue
            new, changed = self.child(child, following, masking, action)
            if changed:
                if out is None:
                    out = dict(value)
                out[name] = new
        return (value, False) if out is None else (out, True)

    def keyed(self, value: dict[str, Any]) -> tuple[Any, bool]:
        """`mapping` with no path under way and nothing masked, where only key rules and the secrets rule
        apply: the whole walk of the default policy, once per key of a payload, so all inline."""
        out: dict[str, Any] | None = None
        keys, secrets, secret_names = self.keys, self.secrets, SECRET_NAMES
        for name, child in value.items():
            action = keys.get(name.lower()) if keys else None
            if action is None and secrets is not None and secret_names[name]:
                action = secrets
            if action is not None:
                new, changed = self.child(child, (), False, action)
            else:
                kind = type(child)
                if kind is dict:
                    new, changed = self.keyed(child)
                elif kind is list:
                    new, changed = self.sequence(child, (), False)
                elif kind is str and child[:1] in _JSON_STARTS:
                    new, changed = self.text(child, (), False)
                else:
                    continue
            if changed:
                if out is None:
                    out = dict(value)
                out[name] = new
        return (value, False) if out is None else (out, True)

    def sequence(self, value: list[Any], states: tuple[State, ...], masking: bool) -> tuple[Any, bool]:
        out: list[Any] | None = None
        following = tuple(dict.fromkeys((*states, *self.advance(states, None)))) if states else states
        action = self.matched(following) if following else None
        for index, child in enumerate(value):
            if action is None and not masking and _plain(child):
                continue
            new, changed = self.child(child, following, masking, action)
            if changed:
                if out is None:
                    out = list(value)
                out[index] = new
        return (value, False) if out is None else (out, True)

    def child(
        self, value: Any, states: tuple[State, ...], masking: bool, action: str | None
    ) -> tuple[Any, bool]:
        """A value under a key or in an array, where `action` (None: no rule) applies."""
        if action is not None:
            if action in TERMINAL:
                new = apply_action(action, value, self.key)
                return new, new != value
            masking = masking or action == MASK
        kind = type(value)
        if kind is dict:
            return self.mapping(value, states, masking)
        if kind is list:
            return self.sequence(value, states, masking)
        if kind is str:
            if masking or value[:1] in _JSON_STARTS:
                return self.text(value, states, masking)
            return value, False
        if masking and kind is int:
            masked = mask_number(value)
            return masked, masked is not value
        return value, False

    def text(self, value: str, states: tuple[State, ...], masking: bool) -> tuple[Any, bool]:
        """A string: JSON inside it is walked like the rest (and written back compact); else masked."""
        if looks_like_json(value) and self.rules.may_apply(value):
            try:
                inner = orjson.loads(value)
            except orjson.JSONDecodeError:
                inner = None
            if isinstance(inner, dict | list):
                new, changed = self.value(inner, states, masking)
                return (orjson.dumps(new).decode(), True) if changed else (value, False)
        if masking:
            masked = mask_text(value)
            return masked, masked != value
        return value, False

    def advance(self, states: Iterable[State], name: str | None) -> tuple[State, ...]:
        """The path states after stepping into key `name` (None: an element of an array)."""
        paths = self.rules.paths
        result: list[State] = []
        for rule, step in states:
            steps = paths[rule].steps
            if step >= len(steps):
                continue
            current = steps[step]
            if current.deep and name is not None:
                result.append((rule, step))
            if current.name is None or current.name == name:
                result.append((rule, step + 1))
        return tuple(result)

    def matched(self, states: tuple[State, ...]) -> str | None:
        """The action of the first path rule (in the policy's order) that `states` completes."""
        paths = self.rules.paths
        done = [rule for rule, step in states if step == len(paths[rule].steps)]
        return paths[min(done)].action if done else None

    def action(self, name: str, states: tuple[State, ...]) -> str | None:
        """What applies to the value under key `name`: a path rule, a key rule, or the secrets rule."""
        if states:
            by_path = self.matched(states)
            if by_path is not None:
                return by_path
        rules = self.rules
        if rules.keys:
            by_key = rules.keys.get(name.lower())
            if by_key is not None:
                return by_key
        if rules.secrets != KEEP and is_secret_key(name):
            return rules.secrets
        return None


__all__ = ["HASH", "apply_action", "redact_parsed", "redact_payload", "redact_row", "redact_table"]
