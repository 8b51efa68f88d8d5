"""One model's registry: a model package group and who may read it (`mlops:registry:ModelRegistry`).

Approval is the gate between training and serving. In dev and staging the pipeline's evaluation
step approves a version that beats the champion (`automatic`); in prod a person approves it in
the registry (`manual`). The mode is recorded on the group as a tag so reviewers and policies
see it where approvals happen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from infra.components import iam_documents
from infra.components.platform_refs import PlatformRefs
from infra.components.tagging import tags_for

ApprovalMode = Literal["automatic", "manual"]
READ_ACTIONS = [
    "sagemaker:DescribeModelPackageGroup",
    "sagemaker:DescribeModelPackage",
    "sagemaker:ListModelPackages",
]
APPROVAL_CHANGE_ACTIONS = ["sagemaker:UpdateModelPackage", "sagemaker:DeleteModelPackage"]


def group_name_for(name_prefix: str, model_name: str) -> str:
    return f"{name_prefix}-{model_name}"


def default_approval_mode(environment: str) -> ApprovalMode:
    return "manual" if environment == "prod" else "automatic"


@dataclass
class ModelRegistryArgs:
    """Default: approval mode follows the environment (prod `manual`, others `automatic`);
    only this account may read the group; no other account may change a package's approval;
    the group is neither protected nor retained (pass `protect` in prod).

    `consumer_account_ids` lets listed accounts describe and list packages (a serving account
    pulling approved models), never approve them. Automatic approval in prod is refused unless
    `allow_automatic_approval_in_prod` says so.
    """

    platform: PlatformRefs
    model_name: str
    approval_mode: ApprovalMode | None = None
    consumer_account_ids: Sequence[str] = ()
    description: str | None = None
    protect: bool = False
    """Protect and retain the group: deleting it deletes every version and its approval history."""
    allow_automatic_approval_in_prod: bool = False
    tags: dict[str, str] = field(default_factory=dict)


class ModelRegistry(pulumi.ComponentResource):
    group: aws.sagemaker.ModelPackageGroup
    policy: aws.sagemaker.ModelPackageGroupPolicy

    def __init__(
        self, name: str, args: ModelRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:registry:ModelRegistry", name, None, opts)
        platform = args.platform
        self.approval_mode: ApprovalMode = args.approval_mode or default_approval_mode(
            platform.environment
        )
        _check(name, args, self.approval_mode)
        self.group_name = group_name_for(platform.name_prefix, args.model_name)
        self.group_arn = platform.arn("sagemaker", f"model-package-group/{self.group_name}")
        self.package_arns = platform.arn("sagemaker", f"model-package/{self.group_name}/*")
        self.group = aws.sagemaker.ModelPackageGroup(
            f"{name}-group",
            model_package_group_name=self.group_name,
            # Changing the description replaces the group, so it never carries the approval mode.
            model_package_group_description=args.description
            or f"Approved versions of {args.model_name} are deployed by its endpoint.",
            tags=tags_for(
                f"{name}-group",
                platform.tags,
                args.tags,
                {"ApprovalMode": self.approval_mode, "Model": args.model_name},
            ),
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, retain_on_delete=args.protect
            ),
        )
        self.policy = aws.sagemaker.ModelPackageGroupPolicy(
            f"{name}-policy",
            model_package_group_name=self.group.model_package_group_name,
            resource_policy=iam_documents.document(*self._policy_statements(args)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {
                "group_name": self.group_name,
                "group_arn": self.group_arn,
                "approval_mode": self.approval_mode,
            }
        )

    def _policy_statements(self, args: ModelRegistryArgs) -> list[dict[str, Any]]:
        platform = args.platform
        readers = [platform.account_id, *sorted(args.consumer_account_ids)]
        return [
            iam_documents.allow(
                "ReadersDescribeAndListPackages",
                READ_ACTIONS,
                [self.group_arn, self.package_arns],
                Principal={
                    "AWS": [
                        pulumi.Output.concat("arn:", platform.partition, ":iam::", account, ":root")
                        for account in readers
                    ]
                },
            ),
            iam_documents.deny(
                "DenyApprovalChangesFromOtherAccounts",
                APPROVAL_CHANGE_ACTIONS,
                [self.package_arns],
                Principal="*",
                Condition={"StringNotEquals": {"aws:PrincipalAccount": platform.account_id}},
            ),
        ]


def _check(name: str, args: ModelRegistryArgs, mode: ApprovalMode) -> None:
    if mode not in ("automatic", "manual"):
        raise ValueError(
            f"ModelRegistry '{name}': approval_mode is '{mode}'; use 'automatic' or 'manual'."
        )
    if (
        args.platform.environment == "prod"
        and mode == "automatic"
        and not args.allow_automatic_approval_in_prod
    ):
        raise ValueError(
            f"ModelRegistry '{name}': approval_mode is 'automatic' in prod, so no person would "
            "review a model before it serves traffic. Set approvalMode to 'manual' for prod, or "
            "pass allow_automatic_approval_in_prod=True to accept that."
        )
    for account in args.consumer_account_ids:
        if not (len(account) == 12 and account.isdigit()):
            raise ValueError(
                f"ModelRegistry '{name}': consumer account id '{account}' is not a 12-digit AWS "
                "account id."
            )
