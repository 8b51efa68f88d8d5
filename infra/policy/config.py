"""Policy pack configuration the way the Pulumi CLI builds it before `Configure`.

`--policy-pack-config FILE` maps a policy name (or `all`) to an enforcement level string or to
an object of properties with an optional `enforcementLevel`. The engine then reconciles: schema
defaults and each policy's own level, under the pack's initial config, under the user's config
(`all` sets every level first), and validates each policy's properties against its schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

LEVELS = ("advisory", "mandatory", "remediate", "disabled")


class PolicyConfigError(ValueError):
    """A policy config file or value the Pulumi CLI would reject."""


def load_policy_config(path: Path) -> dict[str, Any]:
    """Read a `--policy-pack-config` file; an empty file is no config, as for the CLI."""
    text = path.read_text()
    if not text.strip():
        return {}
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise PolicyConfigError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise PolicyConfigError(f"{path}: expected an object of policy names")
    return {key: normalize_entry(key, value) for key, value in doc.items()}


def normalize_entry(key: str, value: Any) -> dict[str, Any]:
    """One entry as `{"enforcementLevel"?: level, **properties}`."""
    if isinstance(value, str):
        value = {"enforcementLevel": value}
    if not isinstance(value, dict):
        raise PolicyConfigError(
            f"parsing {key!r}: {value!r} is not a valid value; must be a string or object"
        )
    level = value.get("enforcementLevel")
    if level is not None and level not in LEVELS:
        raise PolicyConfigError(f"parsing enforcement level for {key!r}: {level!r} is not valid")
    return dict(value)


def reconcile(
    policies: list[dict[str, Any]],
    initial: dict[str, dict[str, Any]],
    user: dict[str, dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """{policy: {"enforcementLevel": level, "properties": {...}}}.

    `policies` is as GetAnalyzerInfo lists them."""
    result = {
        p["name"]: {
            "enforcementLevel": p["enforcementLevel"],
            "properties": {
                k: v["default"] for k, v in (p.get("schema") or {}).items() if "default" in v
            },
        }
        for p in policies
    }
    known = set(result)
    for layer in (initial, user):
        unknown = sorted(set(layer) - known - {"all"})
        if unknown:
            raise PolicyConfigError(
                f"config names policies the pack does not have: {', '.join(unknown)}"
            )
        all_level = (layer.get("all") or {}).get("enforcementLevel")
        if all_level:
            for entry in result.values():
                entry["enforcementLevel"] = all_level
        for name, given in layer.items():
            if name == "all":
                continue
            entry = result[name]
            if given.get("enforcementLevel"):
                entry["enforcementLevel"] = given["enforcementLevel"]
            entry["properties"].update({k: v for k, v in given.items() if k != "enforcementLevel"})
    errors = []
    for policy in policies:
        schema = {"type": "object", "properties": policy.get("schema") or {}}
        if policy.get("required"):
            schema["required"] = policy["required"]
        validator = jsonschema.Draft7Validator(schema)
        for error in validator.iter_errors(result[policy["name"]]["properties"]):
            where = ".".join(str(p) for p in error.path) or "(root)"
            errors.append(f"{policy['name']}: {where}: {error.message}")
    if errors:
        raise PolicyConfigError("invalid policy pack config:\n  " + "\n  ".join(errors))
    return result
