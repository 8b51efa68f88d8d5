"""How every rule of the pack is declared, configured and fed.

Each rule is an ordinary CrossGuard policy. Two things are shared:

- Configuration. Every policy's schema has an `environment` property (dev, staging, prod): the
  engine only passes configuration per policy, so this is how a rule learns which environment it
  guards. `policies/config.<env>.json` sets it together with the stricter enforcement levels of
  that environment, and the in-process evaluator sets it from the stack's `mlops:environment`.
- Unknowns. During preview a value computed by the cloud (a new key's ARN) is unknown, and
  reading it raises `UnknownValueError`, which the analyzer reports as "can't run policy ... during
  preview". Rules therefore decide from what is known (property dependencies name the resource a
  value comes from) and only read a value when nothing else can decide.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

ENVIRONMENTS = ("dev", "staging", "prod")
ADVISORY = EnforcementLevel.ADVISORY
MANDATORY = EnforcementLevel.MANDATORY

ENVIRONMENT_SCHEMA: dict[str, Any] = {
    "type": "string",
    "enum": list(ENVIRONMENTS),
    "default": "dev",
    "description": "Environment of the stack under analysis (the stack's mlops:environment).",
}

ResourceCheck = Callable[[ResourceValidationArgs, ReportViolation], None]
StackCheck = Callable[[StackValidationArgs, ReportViolation], None]


def schema(**properties: dict[str, Any]) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties={"environment": ENVIRONMENT_SCHEMA, **properties})


def environment(args: ResourceValidationArgs | StackValidationArgs) -> str:
    return str(args.get_config().get("environment", "dev"))


def resource_policy(
    name: str,
    description: str,
    resource_types: Iterable[str],
    check: ResourceCheck,
    *,
    remediation: str,
    level: EnforcementLevel = ADVISORY,
    config: dict[str, dict[str, Any]] | None = None,
) -> ResourceValidationPolicy:
    """A policy run on each resource of `resource_types` (every type when empty)."""
    types = frozenset(resource_types)

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if not types or args.resource_type in types:
            check(args, report)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=level,
        config_schema=schema(**(config or {})),
        remediation_steps=remediation,
    )


def stack_policy(
    name: str,
    description: str,
    check: StackCheck,
    *,
    remediation: str,
    level: EnforcementLevel = ADVISORY,
    config: dict[str, dict[str, Any]] | None = None,
) -> StackValidationPolicy:
    return StackValidationPolicy(
        name=name,
        description=description,
        validate=check,
        enforcement_level=level,
        config_schema=schema(**(config or {})),
        remediation_steps=remediation,
    )


def of_type(resources: Iterable[PolicyResource], *types: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type in types]


def check_each(items: Iterable[Any], check: Callable[[Any], None]) -> None:
    """Check every item, then re-raise the first unknown one met.

    A stack policy that stopped at the first unknown value would hide the violations of every
    resource after it; this reports those and still tells the engine the policy hit an unknown.
    """
    pending: UnknownValueError | None = None
    for item in items:
        try:
            check(item)
        except UnknownValueError as exc:
            pending = pending or exc
    if pending is not None:
        raise pending


def has(mapping: Any, key: str) -> bool:
    """Whether `key` is set, without reading it: `key in proxy` reads the value, so on a
    pulumi_policy proxy it raises for an unknown value that is plainly set."""
    return isinstance(mapping, Mapping) and any(k == key for k in mapping)


def is_known(mapping: Mapping[str, Any], key: str) -> bool:
    try:
        mapping[key]
    except UnknownValueError:
        return False
    except KeyError:
        return True
    return True


def dig(value: Any, *path: str | int) -> Any:
    """The value at `path`, None when a step is missing; raises on an unknown step (engine rule)."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, (list, tuple)) and not _is_list_proxy(value):
                return None
            if step >= len(value):
                return None
            value = value[step]
        else:
            if not has(value, step):
                return None
            value = value[step]
    return value


def _is_list_proxy(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def known_strings(value: Any) -> Iterator[str]:
    """Every known string inside `value` (keys and values), skipping unknown ones silently."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key in value:
            yield str(key)
            try:
                inner = value[key]
            except UnknownValueError:
                continue
            yield from known_strings(inner)
    elif _is_list_proxy(value):
        for index in range(len(value)):
            try:
                inner = value[index]
            except UnknownValueError:
                continue
            yield from known_strings(inner)


def known_str(mapping: Any, key: str) -> str | None:
    """A string property's value when set and known, else None (never raises)."""
    if not has(mapping, key) or not is_known(mapping, key):
        return None
    value = mapping[key]
    return value if isinstance(value, str) else None


def depends_on(resource: PolicyResource, target: PolicyResource, prop: str | None = None) -> bool:
    """Whether `resource` takes a value (of `prop`, or of any property) from `target`."""
    deps = resource.property_dependencies
    groups = [deps.get(prop, [])] if prop else list(deps.values())
    return any(dep.urn == target.urn for group in groups for dep in group)


def refers_to(resource: PolicyResource, target: PolicyResource, *names: str | None) -> bool:
    """Linked by a property dependency, or one of `target`'s known names appears in `resource`."""
    if depends_on(resource, target):
        return True
    wanted = {n for n in names if n}
    return bool(wanted) and any(
        any(name in text for name in wanted) for text in known_strings(resource.props)
    )


def parse_json(text: Any) -> Any:
    """A JSON property (policy documents, pipeline definitions); None when it is not JSON."""
    if isinstance(text, Mapping):
        return text
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, Mapping)):
        return [value]
    return list(value)


def tags_of(resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
    tags = dig(resource_props, "tags")
    return tags if isinstance(tags, Mapping) else {}
