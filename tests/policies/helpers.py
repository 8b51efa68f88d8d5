"""Hand-made captures for policy tests: resources built as the plan records them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from infra.plan.engine import Capture, Resource
from infra.plan.values import UNKNOWN
from infra.policy import PolicyReport, evaluate

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "policies"
TAGS = {
    "Name": "thing",
    "Project": "mlops",
    "Environment": "dev",
    "Owner": "ml-platform",
    "CostCenter": "ml",
    "ManagedBy": "pulumi",
}


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:test::mlops::{type_}::{name}"


def res(
    type_: str,
    name: str,
    inputs: dict[str, Any] | None = None,
    deps: dict[str, list[str]] | None = None,
) -> Resource:
    return Resource(
        urn=urn(type_, name),
        type=type_,
        name=name,
        parent=None,
        custom=True,
        inputs=copy.deepcopy(inputs or {}),
        property_dependencies=deps or {},
        dependencies=sorted({u for us in (deps or {}).values() for u in us}),
        provider=None,
        options={},
    )


def tagged(env: str = "dev", **extra: str) -> dict[str, str]:
    return {**TAGS, "Environment": env, **extra}


def run(resources: list[Resource], env: str = "dev", config: dict | None = None) -> PolicyReport:
    capture = Capture("mlops", "test", {"mlops:environment": env}, resources, {})
    return evaluate(capture, PACK, config)


def found(report: PolicyReport, policy: str) -> list[str]:
    return [v.message.splitlines()[-1] for v in report.violations if v.policy_name == policy]


def levels(report: PolicyReport, policy: str) -> set[str]:
    return {v.enforcement_level for v in report.violations if v.policy_name == policy}


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


__all__ = ["UNKNOWN", "doc", "found", "levels", "res", "run", "tagged", "urn"]
