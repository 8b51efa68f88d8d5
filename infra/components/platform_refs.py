"""What every per-model component needs to know about the shared platform.

`MlPlatform` builds one of these; a team's own Pulumi project builds one from the platform
stack's outputs (`StackReference`), so components never care which of the two made it.
Every value is known at preview time (names and ARNs built from names), so pipeline
definitions and IAM documents that embed them show in full in an offline plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

DATA_CLASSES = ("raw", "curated", "artifacts", "capture", "reports")


@dataclass(frozen=True)
class PlatformRefs:
    name_prefix: str
    """`<project>-<environment>`: the prefix of every physical name."""
    environment: str
    account_id: pulumi.Input[str]
    region: pulumi.Input[str]
    partition: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    """The platform key (SageMaker volumes and outputs, SNS, logs, feature store)."""
    kms_key_alias_arn: pulumi.Input[str]
    """The platform key's alias ARN: known at preview, accepted wherever SageMaker takes a key."""
    bucket_names: Mapping[str, pulumi.Input[str]]
    """By data class: raw, curated, artifacts, capture, reports."""
    bucket_arns: Mapping[str, pulumi.Input[str]]
    bucket_key_arns: Mapping[str, pulumi.Input[str]]
    """The key encrypting each bucket (the platform key unless keys are per bucket)."""
    bucket_key_alias_arns: Mapping[str, pulumi.Input[str]]
    """Alias ARNs of those keys: known at preview, for SageMaker request documents."""
    alarm_topic_arn: pulumi.Input[str]
    log_retention_days: int = 30
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)

    def arn(self, service: str, resource: str, *, regional: bool = True) -> pulumi.Output[str]:
        """`arn:<partition>:<service>:<region>:<account>:<resource>` (IAM: no region)."""
        region = self.region if regional else ""
        return pulumi.Output.concat(
            "arn:", self.partition, ":", service, ":", region, ":", self.account_id, ":", resource
        )

    def s3_uri(self, data_class: str, key: str) -> pulumi.Output[str]:
        return pulumi.Output.concat("s3://", self.bucket_names[data_class], "/", key)

    def to_stack_output(self) -> dict[str, Any]:
        """What the platform stack exports as `platform` for teams' projects."""
        return {
            "namePrefix": self.name_prefix,
            "environment": self.environment,
            "accountId": self.account_id,
            "region": self.region,
            "partition": self.partition,
            "kmsKeyArn": self.kms_key_arn,
            "kmsKeyAliasArn": self.kms_key_alias_arn,
            "bucketNames": dict(self.bucket_names),
            "bucketArns": dict(self.bucket_arns),
            "bucketKeyArns": dict(self.bucket_key_arns),
            "bucketKeyAliasArns": dict(self.bucket_key_alias_arns),
            "alarmTopicArn": self.alarm_topic_arn,
            "logRetentionDays": self.log_retention_days,
            "subnetIds": list(self.subnet_ids),
            "securityGroupIds": list(self.security_group_ids),
            "tags": dict(self.tags),
        }

    @classmethod
    def from_stack_reference(
        cls,
        reference: pulumi.StackReference,
        *,
        name_prefix: str,
        environment: str,
        region: str,
        partition: str = "aws",
        log_retention_days: int = 30,
        tags: Mapping[str, str] | None = None,
    ) -> PlatformRefs:
        """The platform as another project reads it. Names, environment and region are plain
        strings (the team's own config) because they shape names and image lookups, which
        cannot wait for an output."""
        exported = reference.require_output("platform")

        def get(*path: str) -> pulumi.Output[Any]:
            def walk(value: Any) -> Any:
                for key in path:
                    value = value[key]
                return value

            return exported.apply(walk)

        return cls(
            name_prefix=name_prefix,
            environment=environment,
            account_id=get("accountId"),
            region=region,
            partition=partition,
            kms_key_arn=get("kmsKeyArn"),
            kms_key_alias_arn=get("kmsKeyAliasArn"),
            bucket_names={c: get("bucketNames", c) for c in DATA_CLASSES},
            bucket_arns={c: get("bucketArns", c) for c in DATA_CLASSES},
            bucket_key_arns={c: get("bucketKeyArns", c) for c in DATA_CLASSES},
            bucket_key_alias_arns={c: get("bucketKeyAliasArns", c) for c in DATA_CLASSES},
            alarm_topic_arn=get("alarmTopicArn"),
            log_retention_days=log_retention_days,
            tags=dict(tags or {}),
        )
