"""The redaction policy: what the archive keeps of each column and of each value inside JSON payloads.

A policy is a TOML document (`ARCHIVER_POLICY`):

    secrets = "redact"             # values under secret-named keys, in every payload column (the default)

    [columns.jobs]                 # per table and column: keep, drop, hash, mask or redact
    user_email = "hash"

    [payload.keys]                 # inside every JSON payload column, by key name (any case), any depth
    email = "hash"

    [payload.paths]                # ... and by path: $.a.b, $..name, .*, [*]
    "$.body.customer.*" = "mask"

    [payload.job_lines.output.keys] # rules for one payload column only (also .paths)
    note = "drop"

Actions: `keep`; `drop` (null); `hash` (HMAC-SHA256 under the policy key, so equal
values stay joinable across tables and runs); `mask` (e-mail addresses, phone
numbers, Luhn-valid card numbers, bearer tokens and AWS keys inside the text
replaced by markers, the rest kept); `redact` (the whole value replaced by a
marker). Loading validates everything, and a mistake is one line naming the
table, column or path.

With no policy file, `DEFAULT_POLICY` applies: secret-named keys redacted, all
else kept. Each policy has a `digest` (of its rules and the key's id, never the
key), which every data file records.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from archiver.errors import PolicyError
from archiver.formats.masking import key_id
from archiver.formats.schema import TABLES
from archiver.formats.wordsearch import WordSearch, word_search

KEEP, DROP, HASH, MASK, REDACT = "keep", "drop", "hash", "mask", "redact"
ACTIONS = (KEEP, DROP, HASH, MASK, REDACT)
TERMINAL = frozenset({DROP, HASH, REDACT})
"""Actions that replace a value whole: nothing inside it is looked at any more."""

PAYLOAD_COLUMNS: dict[str, tuple[str, ...]] = {
    "jobs": ("report", "error_raw"),
    "job_lines": ("input", "output", "error"),
    "activity": ("details",),
}
"""Columns holding JSON text (or text that may be JSON) whose values the payload rules walk."""

PROTECTED: dict[str, frozenset[str]] = {
    "jobs": frozenset(
        {"job_id", "user_id", "recipe_id", "status", "started_at", "completed_at", "stream_type"}
        | {"source_key", "source_etag"}
    ),
    "job_lines": frozenset({"job_id", "user_id", "line_index", "source_key", "source_etag"}),
    "activity": frozenset(
        {"event_id", "event", "category", "occurred_at", "user_id", "resource_type", "resource_id"}
        | {"source_key", "source_etag", "stream_type"}
    ),
}
"""Columns the archive identifies, orders and versions rows by: a rule may not change them."""

# A key names a secret when, folded (lower case, without `_`, `-` and spaces), it ends with one of these.
SECRET_SUFFIXES = (
    "password", "passwd", "pwd", "passphrase", "secret", "token", "apikey", "authorization", "auth",
    "cookie", "cookies", "privatekey", "secretaccesskey", "credential", "credentials",
)  # fmt: skip
SECRET_HINTS = ("pass", "pwd", "secret", "token", "apikey", "auth", "cookie", "privatekey", "credential")
"""Every folded secret key holds one of these: folded text with none of them holds no secret key."""
# `fold_bytes`: ASCII letters lower-cased; the last byte of the Kelvin sign (U+212A, the one non-ASCII
# character `str.lower` turns into an ASCII letter, "k") read as that "k"; every other byte above ASCII,
# `_`, `-` and spaces dropped.
_KELVIN_LAST = 0xAA
_FOLD_BYTES = bytes.maketrans(bytes([*range(65, 91), _KELVIN_LAST]), bytes([*range(97, 123), ord("k")]))
_FOLD_DELETE = b"_- " + bytes(byte for byte in range(128, 256) if byte != _KELVIN_LAST)
_FOLD_TEXT = str.maketrans("", "", "_- ")

_PATH_STEP = re.compile(
    r"\.\.(?P<deep>\*|[^.\[\]]+)|\.(?P<child>\*|[^.\[\]]+)|\[(?P<bracket>\*|'[^']*'|\"[^\"]*\")\]"
)


def fold(text: str) -> str:
    """A key or text as the cheap tests compare it: lower case, without `_`, `-` and spaces."""
    return text.lower().translate(_FOLD_TEXT)


def fold_bytes(data: bytes) -> bytes:
    """UTF-8 text as the cheap tests read it, in one pass: what `fold` makes of its ASCII letters and of
    the Kelvin sign, every other non-ASCII byte dropped. Hints are ASCII, and dropping bytes only brings
    others together, so every hint `fold` finds in the text is still found; what is left is ASCII, which
    the word search reads fastest."""
    return data.translate(_FOLD_BYTES, _FOLD_DELETE)


class _SecretNames(dict[str, bool]):
    """Key name -> whether it names a secret, filled as names are asked: a payload walk asks once per
    key, and a dict subscript is the cheapest answer there is. Emptied past 65,536 names."""

    def __missing__(self, name: str) -> bool:
        if len(self) >= 65_536:
            self.clear()
        secret = self[name] = fold(name).endswith(SECRET_SUFFIXES)
        return secret


SECRET_NAMES = _SecretNames()
"""`SECRET_NAMES[name]` is `is_secret_key(name)`, for loops that ask it of every key."""


def is_secret_key(name: str) -> bool:
    """Whether a JSON key names a secret: password, api_key, X-Api-Key, Authorization, clientSecret,
    private-key, Set-Cookie, credentials... (its folded form ends with one of SECRET_SUFFIXES)."""
    return SECRET_NAMES[name]


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a path: a child (`.name`, `.*`, `[*]`) or any descendant (`..name`, `..*`)."""

    name: str | None  # None: any key (or element)
    deep: bool


@dataclass(frozen=True, slots=True)
class PathRule:
    text: str
    steps: tuple[Step, ...]
    action: str


@dataclass(frozen=True, slots=True)
class PayloadRules:
    """The rules one payload column applies: paths first (in order), then key names, then secrets."""

    paths: tuple[PathRule, ...] = ()
    keys: Mapping[str, str] = field(default_factory=dict)  # lower-cased key name -> action
    secrets: str = REDACT
    whole: str = KEEP
    """The column's own rule (`[columns.T] C = ...`): `mask` masks every string inside."""
    hints: tuple[str, ...] | None = None
    """Folded text (see `fold`) holding none of these has nothing the rules touch (None: no such test)."""
    byte_hints: tuple[bytes, ...] = field(init=False, default=())
    search: WordSearch | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "byte_hints", tuple(hint.encode() for hint in self.hints or ()))
        object.__setattr__(self, "search", None if self.hints is None else word_search(self.byte_hints))

    @property
    def by_keys_only(self) -> bool:
        """Only key-name rules (and the secrets rule) apply: no path, no masking of the whole column."""
        return not self.paths and self.whole == KEEP

    @property
    def inert(self) -> bool:
        return not self.paths and not self.keys and self.secrets == KEEP and self.whole == KEEP

    def may_apply(self, value: str | bytes) -> bool:
        """Whether the rules can touch anything in this text: a cheap test (one folded copy and one
        search for every hint at once, no parsing)."""
        if self.search is None:
            return True
        text = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
        return self.search.found_in(fold_bytes(text))


@dataclass(frozen=True, slots=True)
class Policy:
    """A loaded, validated policy. `key` is the HMAC key (never shown, never part of the digest)."""

    columns: Mapping[str, Mapping[str, str]]
    payload: Mapping[tuple[str, str], PayloadRules]
    digest: str
    source: Mapping[str, Any] = field(default_factory=dict, compare=False)
    key: bytes = field(default=b"", repr=False, compare=False)
    hints: tuple[bytes, ...] | None = field(init=False, repr=False, compare=False)
    """What the payload columns' cheap tests look for, together (None: some column walks every value)."""
    search: WordSearch | None = field(init=False, repr=False, compare=False)
    walks: Mapping[str, tuple[tuple[str, PayloadRules | None], ...]] = field(
        init=False, repr=False, compare=False
    )
    """Per table, each payload column and the rules its values are walked by (None: never walked, as
    the column's own rule replaces it whole or its payload rules do nothing)."""

    def __post_init__(self) -> None:
        hints: dict[bytes, None] | None = {}
        for rules in self.payload.values():
            if hints is not None and not rules.inert:
                hints = None if rules.hints is None else hints | dict.fromkeys(rules.byte_hints)
        object.__setattr__(self, "hints", None if hints is None else tuple(hints))
        object.__setattr__(self, "search", None if hints is None else word_search(tuple(hints)))
        walks = {
            table: tuple((column, self._walked_by(table, column)) for column in names)
            for table, names in PAYLOAD_COLUMNS.items()
        }
        object.__setattr__(self, "walks", walks)

    def _walked_by(self, table: str, column: str) -> PayloadRules | None:
        rules = self.payload.get((table, column))
        if self.columns.get(table, {}).get(column, KEEP) in TERMINAL or rules is None or rules.inert:
            return None
        return rules

    def may_touch(self, payloads: bytes) -> bool:
        """Whether any payload rule can apply to a row's (or an object's) payloads, joined: one cheap test
        (one folded copy, one search for every hint at once) that lets most objects through with no
        payload parsed."""
        return self.may_touch_folded(fold_bytes(payloads))

    def may_touch_folded(self, folded: bytes) -> bool:
        """`may_touch` of payloads already folded (`fold_bytes`)."""
        return self.search is None or self.search.found_in(folded)

    def column_rules(self, table: str) -> Mapping[str, str]:
        return self.columns.get(table, {})

    def payload_rules(self, table: str, column: str) -> PayloadRules | None:
        return self.payload.get((table, column))


def read_policy(text: str, *, key: bytes | None = None, name: str = "policy") -> Policy:
    """Parse and validate a policy document; PolicyError (one line) names what is wrong."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"{name}: not valid TOML ({error})") from None
    return build_policy(document, key=key, name=name)


def build_policy(document: Mapping[str, Any], *, key: bytes | None = None, name: str = "policy") -> Policy:
    """A policy from a parsed document (see the module docstring for its shape)."""
    unknown = sorted(set(document) - {"secrets", "columns", "payload", "version"})
    if unknown:
        raise PolicyError(f"{name}: unknown setting {unknown[0]!r} (expected secrets, columns, payload)")
    if document.get("version", 1) != 1:
        raise PolicyError(f"{name}: version must be 1, got {document.get('version')!r}")
    secrets = _action(document.get("secrets", REDACT), f"{name}: secrets")
    columns = _columns(_table(document.get("columns", {}), f"{name}: [columns]"), name)
    global_rules, scoped = _payload(_table(document.get("payload", {}), f"{name}: [payload]"), name)
    canonical: dict[str, Any] = {
        "secrets": secrets,
        "columns": columns,
        "payload": {"*": global_rules, **scoped},
    }
    uses_hash = _uses_hash(secrets, columns, [global_rules, *scoped.values()])
    if uses_hash and not key:
        raise PolicyError(f"{name}: it hashes values, but no key is set (ARCHIVER_POLICY_KEY)")
    canonical["key"] = key_id(key) if uses_hash and key else None
    digest = hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    payload = {
        (table, column): _compile(
            secrets,
            columns.get(table, {}).get(column, KEEP),
            global_rules,
            scoped.get(f"{table}.{column}", {}),
        )
        for table, names in PAYLOAD_COLUMNS.items()
        for column in names
    }
    return Policy(columns, payload, digest, canonical, key or b"")


def _uses_hash(secrets: str, columns: dict[str, dict[str, str]], rule_sets: list[dict[str, Any]]) -> bool:
    actions = [secrets, *(a for rules in columns.values() for a in rules.values())]
    for rules in rule_sets:
        actions += [*rules["keys"].values(), *rules["paths"].values()]
    return HASH in actions


def _table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PolicyError(f"{where} must be a table")
    return value


def _action(value: object, where: str) -> str:
    if value not in ACTIONS:
        raise PolicyError(f"{where} = {value!r}: the action must be one of {', '.join(ACTIONS)}")
    return str(value)


def _columns(section: dict[str, Any], name: str) -> dict[str, dict[str, str]]:
    columns: dict[str, dict[str, str]] = {}
    for table, rules in section.items():
        schema = _schema_of(table, f"{name}: [columns.{table}]")
        for column, action in _table(rules, f"{name}: [columns.{table}]").items():
            where = f"{name}: columns.{table}.{column}"
            _column_of(schema, table, column, where)
            action = _action(action, where)
            if column in PROTECTED[table] and action != KEEP:
                raise PolicyError(f"{where}: the archive identifies and orders rows by this column; keep it")
            if action in (HASH, MASK, REDACT) and schema.field(column).type != pa.string():
                raise PolicyError(f"{where}: {action} needs a text column; this one only takes keep or drop")
            columns.setdefault(table, {})[column] = action
    return columns


def _schema_of(table: str, where: str) -> pa.Schema:
    if table not in PROTECTED:
        raise PolicyError(
            f"{where}: no table {table!r}{_suggest(table, PROTECTED)} (jobs, job_lines, activity)"
        )
    return TABLES[table]


def _column_of(schema: pa.Schema, table: str, column: str, where: str) -> None:
    if column not in schema.names:
        raise PolicyError(f"{where}: {table} has no column {column!r}{_suggest(column, schema.names)}")


def _suggest(word: str, choices: object) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)  # type: ignore[call-overload]
    return f" (did you mean {close[0]!r}?)" if close else ""


def _payload(section: dict[str, Any], name: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The rules for every payload column, and those of single columns (`"table.column"`)."""
    global_rules = _rule_set(section, f"{name}: [payload]", allow_tables=True)
    scoped: dict[str, dict[str, Any]] = {}
    for table in sorted(set(section) - {"keys", "paths"}):
        _schema_of(table, f"{name}: [payload.{table}]")
        for column, rules in _table(section[table], f"{name}: [payload.{table}]").items():
            where = f"{name}: [payload.{table}.{column}]"
            _column_of(TABLES[table], table, column, where)
            if column not in PAYLOAD_COLUMNS[table]:
                payload = ", ".join(PAYLOAD_COLUMNS[table])
                raise PolicyError(f"{where}: {column} holds no JSON payload ({table}'s are {payload})")
            scoped[f"{table}.{column}"] = _rule_set(_table(rules, where), where, allow_tables=False)
    return global_rules, scoped


def _rule_set(section: dict[str, Any], where: str, *, allow_tables: bool) -> dict[str, Any]:
    extra = sorted(set(section) - {"keys", "paths"})
    if extra and not allow_tables:
        raise PolicyError(f"{where}: unknown setting {extra[0]!r} (expected keys, paths)")
    keys = {
        str(key).lower(): _action(action, f"{where} keys.{key}")
        for key, action in _table(section.get("keys", {}), f"{where} keys").items()
    }
    paths = {}
    for text, action in _table(section.get("paths", {}), f"{where} paths").items():
        parse_path(text, f"{where} paths")
        paths[text] = _action(action, f"{where} paths.{text!r}")
    return {"keys": keys, "paths": paths}


def parse_path(text: str, where: str = "path") -> tuple[Step, ...]:
    """`$.a.b`, `$..email`, `$.body.customer.*`, `$.items[*].id`, `$['odd key']`: steps, or PolicyError."""
    if not text.startswith("$"):
        raise PolicyError(f"{where}: {text!r} must start with $")
    steps: list[Step] = []
    position = 1
    while position < len(text):
        match = _PATH_STEP.match(text, position)
        if match is None:
            raise PolicyError(f"{where}: {text!r} cannot be read at character {position + 1}")
        if match.group("deep") is not None:
            name: str | None = match.group("deep")
            deep = True
        else:
            name = match.group("child") or match.group("bracket")
            deep = False
            if name and name[0] in "'\"":
                name = name[1:-1]
        steps.append(Step(None if name == "*" else name, deep))
        position = match.end()
    if not steps:
        raise PolicyError(f"{where}: {text!r} names no key ($ alone is the whole column: use [columns])")
    return tuple(steps)


def _compile(secrets: str, whole: str, global_rules: dict[str, Any], scoped: dict[str, Any]) -> PayloadRules:
    """One column's rules: its own first, then the global ones; and the cheap test that skips a value."""
    path_items = [*scoped.get("paths", {}).items(), *global_rules["paths"].items()]
    paths = tuple(PathRule(text, parse_path(text), action) for text, action in path_items)
    keys = {**global_rules["keys"], **scoped.get("keys", {})}
    needles: list[str] = [fold(key) for key in keys]
    walk_all = whole == MASK
    for rule in paths:
        named = [fold(step.name) for step in rule.steps if step.name is not None]
        if not named:
            walk_all = True
        else:
            needles.append(max(named, key=len))
    if secrets != KEEP:
        needles.extend(SECRET_HINTS)
    # fold_bytes folds ASCII only: a rule naming a non-ASCII (or folded-away) key cannot use the test.
    walk_all = walk_all or not all(needle.isascii() and needle for needle in needles)
    hints = None if walk_all else tuple(dict.fromkeys(needles))
    return PayloadRules(paths=paths, keys=keys, secrets=secrets, whole=whole, hints=hints)


DEFAULT_POLICY = build_policy({}, name="the default policy")
"""No policy file: secret-named keys redacted in every payload column, everything else kept."""
