"""Run programs and components under mocks with every value resolved, as after an update."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.plan.config import load_project, load_stack_config
from infra.plan.engine import Capture, Resource, capture_function, capture_program

ROOT = Path(__file__).resolve().parents[2]


def resolved_stack(stack: str, overrides: dict[str, Any] | None = None) -> Capture:
    project = load_project(ROOT)
    return capture_program(
        project, stack, load_stack_config(project, stack, overrides), preview=False
    )


def resolved(program: Callable[[], Any], environment: str = "dev") -> Capture:
    return capture_function(
        program, config={"aws:region": "us-east-1", "mlops:environment": environment}, preview=False
    )


def linked(capture: Capture, type_: str, target: Resource, prop: str = "bucket") -> Resource:
    """The one resource of `type_` whose `prop` was computed from `target` (engine dependencies)."""
    found = [
        r for r in capture.by_type(type_) if target.urn in r.property_dependencies.get(prop, [])
    ]
    assert len(found) == 1, f"{target.name}: expected one {type_}, found {len(found)}"
    return found[0]


def policy_of(capture: Capture, bucket: Resource) -> dict[str, Any]:
    policy = linked(capture, "aws:s3/bucketPolicy:BucketPolicy", bucket)
    return json.loads(policy.inputs["policy"])
