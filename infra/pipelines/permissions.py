"""IAM statements for pipelines and the jobs they start, each naming exact resources.

A pipeline runs as one role (assumed by SageMaker) that may only create, watch and stop the
jobs of its own steps and pass its jobs' roles to SageMaker; the jobs run as roles that may only
read and write their model's prefixes. Job names come from SageMaker Pipelines
(`pipelines-<execution id>-<step name>-<suffix>`, lower-cased in ARNs), so each step's jobs
match one pattern.

KMS keys are named by alias (`kms:ResourceAliases`) rather than key ARN: a key's ARN is only
known once it exists, an alias ARN is built from its name, so every document here is known at
preview and policy checks see it in full.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components import iam_documents
from infra.components.platform_refs import PlatformRefs
from infra.components.tagging import tags_for

SAGEMAKER = "sagemaker.amazonaws.com"
MAX_ROLE_NAME = 64
JOB_KINDS = {"processing": "ProcessingJob", "training": "TrainingJob"}


def role_arn(platform: PlatformRefs, role_name: str) -> pulumi.Output[str]:
    return platform.arn("iam", f"role/{role_name}", regional=False)


def pipeline_arn(platform: PlatformRefs, pipeline_name: str) -> pulumi.Output[str]:
    """SageMaker lower-cases resource names inside ARNs."""
    return platform.arn("sagemaker", f"pipeline/{pipeline_name.lower()}")


def check_role_name(component: str, role_name: str) -> None:
    if len(role_name) > MAX_ROLE_NAME:
        raise ValueError(
            f"{component}: role name '{role_name}' is {len(role_name)} characters, IAM allows "
            f"{MAX_ROLE_NAME}; shorten the project, environment or model name."
        )


def role_arns(
    platform: PlatformRefs, component: str, role_names: Mapping[str, str]
) -> dict[str, pulumi.Output[str]]:
    """The ARN of each named role (known at preview), after checking every name fits IAM."""
    for role_name in role_names.values():
        check_role_name(component, role_name)
    return {role: role_arn(platform, role_name) for role, role_name in role_names.items()}


def job_arns(platform: PlatformRefs, kind: str, steps: Sequence[str]) -> list[pulumi.Output[str]]:
    return [platform.arn("sagemaker", f"{kind}-job/pipelines-*-{s.lower()}-*") for s in steps]


def run_jobs(
    platform: PlatformRefs, processing_steps: Sequence[str], training_steps: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Create, describe, stop and tag exactly the jobs of these steps."""
    statements = []
    for kind, steps in (("processing", processing_steps), ("training", training_steps)):
        if not steps:
            continue
        job = JOB_KINDS[kind]
        statements.append(
            iam_documents.allow(
                f"Run{job}sOfItsSteps",
                [
                    f"sagemaker:Create{job}",
                    f"sagemaker:Describe{job}",
                    f"sagemaker:Stop{job}",
                    "sagemaker:AddTags",
                ],
                job_arns(platform, kind, steps),
            )
        )
    return statements


def pass_roles(role_arns: Sequence[pulumi.Input[str]]) -> dict[str, Any]:
    return iam_documents.allow(
        "PassJobRolesToSageMaker",
        ["iam:PassRole"],
        list(role_arns),
        Condition={"StringEquals": {"iam:PassedToService": SAGEMAKER}},
    )


def keys_aliased(
    sid: str,
    actions: list[str],
    platform: PlatformRefs,
    alias_arns: Sequence[pulumi.Input[str]],
    **conditions: Any,
) -> dict[str, Any]:
    """`actions` on exactly the keys behind these alias ARNs."""
    names = pulumi.Output.all(*alias_arns).apply(
        lambda arns: list(dict.fromkeys(arn.split(":", 5)[5] for arn in arns))
    )
    return iam_documents.allow(
        sid,
        actions,
        [platform.arn("kms", "key/*")],
        Condition={"ForAnyValue:StringEquals": {"kms:ResourceAliases": names}, **conditions},
    )


def volume_key(platform: PlatformRefs) -> dict[str, Any]:
    """SageMaker encrypts job volumes through a grant on the platform key."""
    return keys_aliased(
        "GrantVolumeEncryptionWithPlatformKey",
        ["kms:CreateGrant", "kms:DescribeKey"],
        platform,
        [platform.kms_key_alias_arn],
        Bool={"kms:GrantIsForAWSResource": "true"},
    )


def read_objects(
    sid: str, bucket_arn: pulumi.Input[str], prefixes: Sequence[str]
) -> list[dict[str, Any]]:
    """Get objects under `prefixes` (a prefix without a trailing `/` is one object's key)."""
    objects = [pulumi.Output.concat(bucket_arn, "/", _pattern(p)) for p in prefixes]
    return [
        iam_documents.allow(f"Read{sid}", ["s3:GetObject"], objects),
        iam_documents.allow(
            f"List{sid}",
            ["s3:ListBucket"],
            [bucket_arn],
            Condition={"StringLike": {"s3:prefix": [_pattern(p) for p in prefixes]}},
        ),
    ]


def write_objects(
    sid: str, bucket_arn: pulumi.Input[str], prefixes: Sequence[str]
) -> dict[str, Any]:
    return iam_documents.allow(
        f"Write{sid}",
        ["s3:PutObject", "s3:AbortMultipartUpload"],
        [pulumi.Output.concat(bucket_arn, "/", _pattern(p)) for p in prefixes],
    )


def use_keys(
    platform: PlatformRefs,
    decrypt: Sequence[pulumi.Input[str]],
    encrypt: Sequence[pulumi.Input[str]],
) -> list[dict[str, Any]]:
    """Decrypt with the keys of the buckets read; encrypt with those of the buckets written.

    Both lists hold alias ARNs (`PlatformRefs.bucket_key_alias_arns`).
    """
    return [
        keys_aliased("DecryptInputs", ["kms:Decrypt", "kms:DescribeKey"], platform, decrypt),
        keys_aliased(
            "EncryptOutputs",
            ["kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"],
            platform,
            encrypt,
        ),
    ]


def job_logs(platform: PlatformRefs, kinds: Sequence[str]) -> dict[str, Any]:
    groups = [
        platform.arn("logs", f"log-group:/aws/sagemaker/{JOB_KINDS[kind]}s:*") for kind in kinds
    ]
    return iam_documents.allow(
        "WriteJobLogs",
        [
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "logs:DescribeLogStreams",
        ],
        groups,
    )


def pull_image(repository_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    """ECR's GetAuthorizationToken has no resource-level permission, hence its `*`."""
    return [
        iam_documents.allow(
            "PullJobImage",
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            [repository_arn],
        ),
        iam_documents.allow("EcrLogin", ["ecr:GetAuthorizationToken"], ["*"]),
    ]


def repository_arn(partition: str, image_uri: str) -> str:
    """`<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>` → the repository's ARN."""
    registry, _, path = image_uri.partition("/")
    account, _, rest = registry.partition(".dkr.ecr.")
    region = rest.split(".", 1)[0]
    repository = path.split("@", 1)[0].rsplit(":", 1)[0]
    if not (account.isdigit() and region and repository):
        raise ValueError(
            f"image '{image_uri}' is not an ECR image URI "
            "(<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>)"
        )
    return f"arn:{partition}:ecr:{region}:{account}:repository/{repository}"


def vpc_access(
    platform: PlatformRefs, sid: str = "ManageJobNetworkInterfaces"
) -> list[dict[str, Any]]:
    """SageMaker attaches network interfaces (of a job or a model) in the platform's subnets as
    the role running it.

    EC2's Describe* calls have no resource-level permissions, so they need `*`; creating and
    deleting interfaces is confined to the platform's subnets and security groups.
    """
    if not platform.subnet_ids:
        return []
    subnets = [platform.arn("ec2", f"subnet/{s}") for s in platform.subnet_ids]
    groups = [platform.arn("ec2", f"security-group/{g}") for g in platform.security_group_ids]
    return [
        iam_documents.allow(
            "DescribeNetwork",
            [
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeVpcs",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeDhcpOptions",
            ],
            ["*"],
        ),
        iam_documents.allow(
            sid,
            [
                "ec2:CreateNetworkInterface",
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ],
            [platform.arn("ec2", "network-interface/*"), *subnets, *groups],
        ),
    ]


def _pattern(prefix: str) -> str:
    return f"{prefix}*" if prefix.endswith("/") else prefix


def service_role(
    name: str,
    *,
    role_name: str,
    service: str,
    platform: PlatformRefs,
    statements: Sequence[dict[str, Any]],
    description: str,
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> aws.iam.Role:
    """A role only `service` may assume for this account, with one inline policy."""
    role = aws.iam.Role(
        name,
        name=role_name,
        description=description,
        assume_role_policy=iam_documents.service_trust(service, account_id=platform.account_id),
        tags=tags_for(name, platform.tags, tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    aws.iam.RolePolicy(
        f"{name}-policy",
        role=role.id,
        policy=iam_documents.document(*statements),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return role
