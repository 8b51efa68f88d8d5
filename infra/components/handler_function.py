"""A Lambda running one of the kit's handlers, with its own narrow role and log group."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components import iam_documents
from infra.components.platform_refs import PlatformRefs
from infra.components.tagging import tags_for

HANDLERS_DIR = Path(__file__).resolve().parents[2] / "ml_code" / "handlers"
RUNTIME = "python3.11"


@dataclass
class HandlerFunctionArgs:
    """Default: a fresh role that may write only its own logs plus `policy_statements`.

    Pass `role_arn` to bring your own role instead (then `policy_statements` must be empty:
    the component does not edit roles it does not own).
    """

    platform: PlatformRefs
    handler: str
    policy_statements: list[dict[str, Any]] = field(default_factory=list)
    environment: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    timeout: int = 60
    memory_size: int = 256
    role_arn: pulumi.Input[str] | None = None
    tags: dict[str, str] = field(default_factory=dict)


SHARED_MODULES = ("__init__.py", "monitoring/__init__.py", "monitoring/metrics.py")
"""Modules handlers import besides their own package; each needs nothing but boto3."""


def handler_code() -> pulumi.AssetArchive:
    """The handlers package and the few boto3-only modules they share with the jobs."""
    package = HANDLERS_DIR.parent
    assets: dict[str, pulumi.Asset | pulumi.Archive] = {
        f"ml_code/{module}": pulumi.FileAsset(str(package / module)) for module in SHARED_MODULES
    }
    for source in sorted(HANDLERS_DIR.glob("*.py")):
        assets[f"ml_code/handlers/{source.name}"] = pulumi.FileAsset(str(source))
    return pulumi.AssetArchive(assets)


class HandlerFunction(pulumi.ComponentResource):
    function: aws.lambda_.Function
    role: aws.iam.Role | None

    def __init__(
        self, name: str, args: HandlerFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:functions:HandlerFunction", name, None, opts)
        if args.role_arn is not None and args.policy_statements:
            raise ValueError(
                f"HandlerFunction '{name}': role_arn was given together with policy_statements; "
                "grant those permissions on your own role, or drop role_arn to get a new one."
            )
        platform = args.platform
        self.function_name = (
            f"{platform.name_prefix}-{name.removeprefix(platform.name_prefix + '-')}"
        )
        if len(self.function_name) > 61:
            raise ValueError(
                f"HandlerFunction '{name}': function name '{self.function_name}' is longer than "
                "61 characters (its role adds '-fn' within IAM's 64); use a shorter model name."
            )
        log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=log_group_name,
            retention_in_days=platform.log_retention_days,
            kms_key_id=platform.kms_key_arn,
            tags=tags_for(f"{name}-logs", platform.tags, args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.role = None
        role_arn = args.role_arn
        if role_arn is None:
            self.role = self._role(name, args, log_group_name)
            role_arn = self.role.arn
        self.function = aws.lambda_.Function(
            name,
            name=self.function_name,
            runtime=RUNTIME,
            handler=args.handler,
            role=role_arn,
            code=handler_code(),
            timeout=args.timeout,
            memory_size=args.memory_size,
            kms_key_arn=platform.kms_key_arn,
            environment={"variables": args.environment} if args.environment else None,
            logging_config={"log_format": "JSON", "log_group": log_group_name},
            tracing_config={"mode": "Active"},
            tags=tags_for(name, platform.tags, args.tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group]),
        )
        self.function_arn = platform.arn("lambda", f"function:{self.function_name}")
        self.register_outputs(
            {"function_name": self.function_name, "function_arn": self.function_arn}
        )

    def _role(self, name: str, args: HandlerFunctionArgs, log_group_name: str) -> aws.iam.Role:
        platform = args.platform
        role_name = f"{self.function_name}-fn"
        role = aws.iam.Role(
            f"{name}-role",
            name=role_name,
            assume_role_policy=iam_documents.service_trust(
                "lambda.amazonaws.com", account_id=platform.account_id
            ),
            tags=tags_for(f"{name}-role", platform.tags, args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        log_stream = platform.arn("logs", f"log-group:{log_group_name}:*")
        statements = [
            iam_documents.allow(
                "WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [log_stream]
            ),
            iam_documents.allow(
                "Tracing", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]
            ),
            *args.policy_statements,
        ]
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=iam_documents.document(*statements),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return role
