"""A plan file read back as the Capture it was written from.

Secrets come back as `Secret(<hash>)`: the clear value never reached the file, so a policy
reading a secret sees its hash, while everything else (unknowns, references, options) is as
the plan captured it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.plan import document, values
from infra.plan.engine import Capture, Resource


def _restore(value: Any) -> Any:
    if isinstance(value, dict):
        if values.is_secret_marker(value):
            return values.Secret(value["$secret"])
        return {k: _restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value


def _value(raw: Any) -> Any:
    return _restore(values.from_json(raw))


def load_capture(path: Path) -> Capture:
    doc = document.read(path)
    resources = [
        Resource(
            urn=r["urn"],
            type=r["type"],
            name=r["name"],
            parent=r["parent"],
            custom=r["custom"],
            inputs=_value(r["inputs"]),
            property_dependencies=r["propertyDependencies"],
            dependencies=r["dependencies"],
            provider=r["provider"],
            options=r["options"],
        )
        for r in doc["resources"]
    ]
    return Capture(
        project=doc["project"],
        stack=doc["stack"],
        config=_value(doc["config"]),
        resources=resources,
        outputs=_value(doc["outputs"]),
    )
