"""The diff as JSON for other tools; values pass through the same redaction as the text forms,
so a secret appears as `{"$secret": true}` and never as its value or its hash."""

from __future__ import annotations

import json
from typing import Any

from infra.diff.compare import ResourceChange, StackDiff
from infra.diff.markdown import summary_line
from infra.diff.paths import to_jsonable

REPORT_VERSION = 1


def _resource(change: ResourceChange) -> dict[str, Any]:
    return {
        "kind": change.kind,
        "urn": change.urn,
        "oldUrn": change.old_urn,
        "type": change.type,
        "name": change.name,
        "needsAliases": change.needs_aliases,
        "replaceReasons": change.replace_reasons,
        "inputs": [to_jsonable(c) for c in change.inputs],
        "options": [to_jsonable(c) for c in change.options],
        "notes": change.notes,
    }


def to_report(diffs: list[StackDiff]) -> dict[str, Any]:
    return {
        "reportVersion": REPORT_VERSION,
        "summary": summary_line(diffs),
        "stacks": [
            {
                "stack": d.stack,
                "summary": d.summary(),
                "hasChanges": d.has_changes,
                "error": d.error,
                "notes": d.notes,
                "resources": [_resource(r) for r in d.resources],
                "config": [to_jsonable(c) for c in d.config],
                "outputs": [to_jsonable(c) for c in d.outputs],
                "policy": {"appeared": d.policy_appeared, "resolved": d.policy_resolved},
            }
            for d in diffs
        ],
    }


def render(diffs: list[StackDiff]) -> str:
    return json.dumps(to_report(diffs), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
