"""IAM and resource-policy documents as JSON, built from Pulumi outputs.

Documents are assembled with `Output.json_dumps` rather than the `getPolicyDocument` invoke, so
an offline plan shows the exact document the account will receive.
"""

from __future__ import annotations

from typing import Any

import pulumi


def document(*statements: dict[str, Any]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(sid: str, actions: list[str], resources: list[Any], **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def deny(sid: str, actions: list[str], resources: list[Any], **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Deny", "Action": actions, "Resource": resources, **extra}


def service_trust(
    *services: str, account_id: pulumi.Input[str] | None = None
) -> pulumi.Output[str]:
    """A trust policy naming only these service principals, confined to our account."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": sorted(services)},
        "Action": "sts:AssumeRole",
    }
    if account_id is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account_id}}
    return document(statement)
