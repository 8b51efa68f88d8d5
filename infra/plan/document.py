"""The plan file: one stack's capture as sorted JSON, byte-identical across runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.plan import values
from infra.plan.engine import Capture

FORMAT_VERSION = 1


def to_document(capture: Capture, policy: dict[str, Any] | None = None) -> dict[str, Any]:
    resources = [
        {
            "urn": r.urn,
            "type": r.type,
            "name": r.name,
            "parent": r.parent,
            "custom": r.custom,
            "provider": r.provider,
            "inputs": values.to_json(r.inputs),
            "propertyDependencies": r.property_dependencies,
            "dependencies": r.dependencies,
            "options": r.options,
        }
        for r in sorted(capture.resources, key=lambda r: r.urn)
    ]
    doc: dict[str, Any] = {
        "formatVersion": FORMAT_VERSION,
        "project": capture.project,
        "stack": capture.stack,
        "config": values.to_json(capture.config),
        "resources": resources,
        "outputs": values.to_json(capture.outputs),
    }
    if policy is not None:
        doc["policy"] = policy
    return doc


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(doc))


def read(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text())
    if doc.get("formatVersion") != FORMAT_VERSION:
        raise ValueError(f"{path}: not an mlops-kit plan file (formatVersion {FORMAT_VERSION})")
    return doc
