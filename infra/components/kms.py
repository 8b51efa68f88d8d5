"""Customer-managed KMS keys with rotation and a key policy that names who may use them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from infra.components import iam_documents
from infra.components.tagging import tags_for

KEY_USE_ACTIONS = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
]


def alias_arn(
    name: str,
    *,
    partition: pulumi.Input[str],
    region: pulumi.Input[str],
    account_id: pulumi.Input[str],
) -> pulumi.Output[str]:
    """The ARN of the alias `customer_managed_key(name, ...)` creates: known at preview, and
    accepted wherever SageMaker takes a key for volumes, outputs or data capture."""
    return pulumi.Output.concat(
        "arn:", partition, ":kms:", region, ":", account_id, ":alias/", name
    )


def customer_managed_key(
    name: str,
    *,
    description: str,
    account_id: pulumi.Input[str],
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
    service_principals: Sequence[pulumi.Input[str]] = (),
) -> aws.kms.Key:
    """A symmetric key administered by the account; AWS services listed may use it for us only.

    IAM principals get use of the key through their own policies (the key policy delegates to
    the account), so each role's policy names exactly the keys it needs.
    """
    statements = [
        {
            "Sid": "AccountAdministersKey",
            "Effect": "Allow",
            "Principal": {"AWS": pulumi.Output.concat("arn:aws:iam::", account_id, ":root")},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if service_principals:
        statements.append(
            {
                "Sid": "ServicesUseKeyForThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": list(service_principals)},
                "Action": KEY_USE_ACTIONS,
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        )
    alias_name = f"alias/{name}"
    key = aws.kms.Key(
        name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=iam_documents.document(*statements),
        tags=tags_for(name, tags),
        opts=opts,
    )
    aws.kms.Alias(
        f"{name}-alias",
        name=alias_name,
        target_key_id=key.key_id,
        opts=pulumi.ResourceOptions(parent=opts.parent),
    )
    return key
