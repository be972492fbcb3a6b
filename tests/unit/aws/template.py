"""Read infra/template.yaml the way CloudFormation does (cfn-lint's decoder understands !Ref, !Sub, ...),
and follow its state machine's JSONPath templates without running Step Functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cfnlint.decode import decode

TEMPLATE = Path(__file__).resolve().parents[3] / "infra" / "template.yaml"


def load_template() -> dict[str, Any]:
    template, matches = decode(str(TEMPLATE))
    assert not matches and template is not None, matches
    return dict(template)


def definition() -> dict[str, Any]:
    machine = load_template()["Resources"]["BackfillStateMachine"]["Properties"]
    return dict(machine["Definition"])


def all_states(states: dict[str, Any]) -> dict[str, Any]:
    """Every state by name, the Map's child states included."""
    found = dict(states)
    for state in states.values():
        processor = state.get("ItemProcessor")
        if processor:
            found.update(all_states(processor["States"]))
    return found


def path(document: Any, expression: str) -> Any:
    """A reference path (`$`, `$.a.b`) into a document."""
    assert expression == "$" or expression.startswith("$."), expression
    value = document
    for part in expression[2:].split(".") if expression != "$" else []:
        value = value[part]
    return value


def resolve(template: Any, state: Any, context: dict[str, Any] | None = None) -> Any:
    """Fill a Parameters/ItemSelector/ResultSelector template: keys ending `.$` take a path's value."""
    if isinstance(template, dict):
        filled: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                source = (context or {}) if value.startswith("$$") else state
                filled[key[:-2]] = path(source, value[1:] if value.startswith("$$") else value)
            else:
                filled[key] = resolve(value, state, context)
        return filled
    if isinstance(template, list):
        return [resolve(item, state, context) for item in template]
    return template


def parameter_defaults() -> dict[str, Any]:
    """Every template parameter's default (None when it has none)."""
    return {name: spec.get("Default") for name, spec in load_template()["Parameters"].items()}


def render(value: Any, refs: dict[str, Any], conditions: dict[str, bool]) -> Any:
    """Fill Ref, Fn::Sub and Fn::If the way CloudFormation would, from `refs` (parameters and resources)."""
    if isinstance(value, list):
        return [render(item, refs, conditions) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return refs[value["Ref"]]
    if set(value) == {"Fn::If"}:
        condition, yes, no = value["Fn::If"]
        return render(yes if conditions[condition] else no, refs, conditions)
    if set(value) == {"Fn::Sub"}:
        text, local = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
        names = {**refs, **{key: render(item, refs, conditions) for key, item in local.items()}}
        for name, filled in names.items():
            text = text.replace("${" + name + "}", str(filled))
        return text
    return {key: render(item, refs, conditions) for key, item in value.items()}
