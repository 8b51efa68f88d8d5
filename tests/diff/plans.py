"""Hand-made plan documents in the plan-file format, small enough to read in a test."""

from __future__ import annotations

import copy
from typing import Any

STACK = "prod"
PROJECT = "mlops"
PLATFORM_TYPE = "mlops:platform:MlPlatform"
SECRET_HASH = "sha256:" + "ab" * 32
OTHER_SECRET_HASH = "sha256:" + "cd" * 32


def urn(type_: str, name: str, parent_types: tuple[str, ...] = ()) -> str:
    qualified = "$".join((*parent_types, type_))
    return f"urn:pulumi:{STACK}::{PROJECT}::{qualified}::{name}"


def options(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "protect": False,
        "retainOnDelete": False,
        "deleteBeforeReplace": False,
        "ignoreChanges": [],
        "replaceOnChanges": [],
        "aliases": [],
        "dependsOn": [],
        "provider": None,
        "additionalSecretOutputs": [],
    }
    base.update(overrides)
    return base


def resource(
    type_: str,
    name: str,
    inputs: dict[str, Any] | None = None,
    *,
    parent: dict[str, Any] | None = None,
    custom: bool = True,
    **opts: Any,
) -> dict[str, Any]:
    parent_types: tuple[str, ...] = ()
    if parent is not None:
        parent_types = tuple(parent["urn"].split("::")[2].split("$"))
    return {
        "urn": urn(type_, name, parent_types),
        "type": type_,
        "name": name,
        "parent": parent["urn"] if parent else None,
        "custom": custom,
        "provider": None,
        "inputs": inputs or {},
        "propertyDependencies": {},
        "dependencies": [],
        "options": options(**opts),
    }


def plan(
    *resources: dict[str, Any],
    config: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
    policy: dict[str, Any] | None = None,
    stack: str = STACK,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "formatVersion": 1,
        "project": PROJECT,
        "stack": stack,
        "config": config or {"mlops:environment": stack},
        "resources": sorted(copy.deepcopy(list(resources)), key=lambda r: r["urn"]),
        "outputs": outputs or {},
    }
    if policy is not None:
        doc["policy"] = policy
    return doc


def platform() -> dict[str, Any]:
    return resource(PLATFORM_TYPE, "mlops-prod", custom=False)


def sse(parent: dict[str, Any], key_id: Any, name: str = "mlops-prod-raw-sse") -> dict[str, Any]:
    return resource(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        name,
        {
            "bucket": "mlops-prod-raw-123456789012",
            "rules": [
                {
                    "applyServerSideEncryptionByDefault": {
                        "kmsMasterKeyId": key_id,
                        "sseAlgorithm": "aws:kms",
                    },
                    "bucketKeyEnabled": True,
                }
            ],
        },
        parent=parent,
    )


def bucket(parent: dict[str, Any] | None, name: str = "mlops-prod-raw", **opts: Any) -> dict:
    return resource(
        "aws:s3/bucket:Bucket",
        name,
        {
            "bucket": f"{name}-123456789012",
            "forceDestroy": False,
            "tags": {"Name": name, "Environment": "prod", "ManagedBy": "pulumi"},
        },
        parent=parent,
        **opts,
    )


def violation(policy: str, res: dict[str, Any] | None, message: str) -> dict[str, Any]:
    return {
        "policyName": policy,
        "enforcementLevel": "mandatory",
        "urn": res["urn"] if res else None,
        "message": message,
        "remediation": "fix it",
    }
