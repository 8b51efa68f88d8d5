"""The pipeline definition language's references: `Get`, `Std:JsonGet`, `Std:Join`, conditions.

A SageMaker pipeline definition wires steps together through these expressions; the local
executor resolves them exactly as the service does, against parameters, execution variables,
the properties of steps that already ran, and the property files they wrote.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(r"([A-Za-z0-9_:\-]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


class ReferenceError_(LookupError):
    """A reference names a step, parameter, property or file that does not exist."""


def path_tokens(path: str) -> list[str | int]:
    """`Steps.Eval.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri` → tokens."""
    tokens: list[str | int] = []
    for part in path.split("."):
        pos = 0
        while pos < len(part):
            match = _TOKEN.match(part, pos)
            if match is None:
                raise ReferenceError_(f"cannot parse reference path '{path}' at '{part[pos:]}'")
            name, index, key1, key2 = match.groups()
            if name is not None:
                tokens.append(name)
            elif index is not None:
                tokens.append(int(index))
            else:
                tokens.append(key1 if key1 is not None else key2)
            pos = match.end()
    return tokens


def walk(value: Any, tokens: list[str | int], where: str) -> Any:
    """Follow tokens through dicts and lists; a string key on a list finds the item it names."""
    for token in tokens:
        if isinstance(value, list) and isinstance(token, str):
            named = [
                item
                for item in value
                if isinstance(item, dict)
                and token
                in (
                    item.get("OutputName"),
                    item.get("InputName"),
                    item.get("ChannelName"),
                    item.get("Name"),
                    item.get("PropertyFileName"),
                )
            ]
            if not named:
                raise ReferenceError_(f"{where}: no list item named '{token}'")
            value = named[0]
        elif isinstance(value, list) and isinstance(token, int):
            if token >= len(value):
                raise ReferenceError_(f"{where}: index {token} out of range")
            value = value[token]
        elif isinstance(value, dict) and token in value:
            value = value[token]
        else:
            raise ReferenceError_(f"{where}: '{token}' not found")
    return value


@dataclass
class Scope:
    """What references can see during one execution."""

    parameters: dict[str, Any]
    execution: dict[str, Any]
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    property_files: dict[str, dict[str, Any]] = field(default_factory=dict)
    read_json: Callable[[str], Any] = lambda uri: json.loads(uri)

    def get(self, path: str) -> Any:
        tokens = path_tokens(path)
        head, rest = tokens[0], tokens[1:]
        if head == "Parameters":
            name = str(rest[0])
            if name not in self.parameters:
                raise ReferenceError_(f"Get '{path}': no parameter '{name}'")
            return walk(self.parameters[name], rest[1:], path)
        if head == "Execution":
            return walk(self.execution, rest, path)
        if head == "Steps":
            step = str(rest[0])
            if step not in self.steps:
                raise ReferenceError_(f"Get '{path}': step '{step}' has not run")
            if len(rest) > 1 and rest[1] == "PropertyFiles":
                return {"$property_file": (step, str(rest[2]))}
            return walk(self.steps[step], rest[1:], path)
        raise ReferenceError_(f"Get '{path}': unknown root '{head}'")

    def json_get(self, spec: Mapping[str, Any]) -> Any:
        path = spec["Path"]
        if "PropertyFile" in spec:
            ref = self.resolve(spec["PropertyFile"])
            if not (isinstance(ref, dict) and "$property_file" in ref):
                raise ReferenceError_(f"JsonGet: {spec['PropertyFile']} is not a property file")
            step, name = ref["$property_file"]
            files = self.property_files.get(step, {})
            if name not in files:
                raise ReferenceError_(f"JsonGet: step '{step}' wrote no property file '{name}'")
            document = files[name]
        else:
            document = self.read_json(self.resolve(spec["S3Uri"]))
        return walk(document, path_tokens(path), f"JsonGet '{path}'")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"Get"}:
                return self.get(value["Get"])
            if set(value) == {"Std:JsonGet"}:
                return self.json_get(value["Std:JsonGet"])
            if set(value) == {"Std:Join"}:
                spec = value["Std:Join"]
                return str(spec.get("On", "")).join(str(self.resolve(v)) for v in spec["Values"])
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def evaluate_condition(condition: Mapping[str, Any], scope: Scope) -> bool:
    kind = condition["Type"]
    if kind == "Not":
        return not evaluate_condition(condition["Condition"], scope)
    if kind == "Or":
        return any(evaluate_condition(c, scope) for c in condition["Conditions"])
    if kind == "And":
        return all(evaluate_condition(c, scope) for c in condition["Conditions"])
    left = _number(scope.resolve(condition["LeftValue"]))
    if kind == "In":
        return left in [_number(scope.resolve(v)) for v in condition["RightValue"]]
    right = _number(scope.resolve(condition["RightValue"]))
    comparisons = {
        "Equals": lambda a, b: a == b,
        "GreaterThan": lambda a, b: a > b,
        "GreaterThanOrEqualTo": lambda a, b: a >= b,
        "LessThan": lambda a, b: a < b,
        "LessThanOrEqualTo": lambda a, b: a <= b,
    }
    if kind not in comparisons:
        raise ReferenceError_(f"condition type '{kind}' is not part of the definition language")
    return bool(comparisons[kind](left, right))


def references(value: Any) -> list[str]:
    """Every `Get` path inside a value (for dependency order and reference checks)."""
    found: list[str] = []
    if isinstance(value, dict):
        if set(value) == {"Get"} and isinstance(value["Get"], str):
            found.append(value["Get"])
        for inner in value.values():
            found.extend(references(inner))
    elif isinstance(value, list):
        for inner in value:
            found.extend(references(inner))
    return found
