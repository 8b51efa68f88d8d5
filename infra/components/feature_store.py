"""Feature groups for the customer and item features (`mlops:features:FeatureStore`).

The schema is read from `ml_code.features.definitions.feature_group_schema`, the same contract
training and the endpoint use, so a changed feature shows in a plan as a changed
`featureDefinitions` input (AWS replaces the group) instead of drifting silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components import iam_documents
from infra.components.platform_refs import PlatformRefs
from infra.components.tagging import tags_for
from infra.pipelines import permissions
from ml_code.features.definitions import EVENT_TIME_COLUMN, feature_group_schema

GROUPS = ("customer", "item")
RECORD_IDENTIFIERS = {"customer": "customer_id", "item": "item_id"}
OFFLINE_STORE_PREFIX = "feature-store"
GLUE_CATALOG = "AwsDataCatalog"
FEATURE_GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,63}$")


@dataclass
class FeatureStoreArgs:
    """Where features are kept and who may write them.

    Default: both groups keep an online store encrypted with the platform key and an offline
    store under `s3://<curated>/feature-store/` encrypted with the curated bucket's key, catalogued
    as Glue tables in a database of this stack; the component creates the role SageMaker assumes
    to write the offline store, limited to that prefix, those keys and those tables. Pass
    `role_arn` to bring your own role instead (it then needs the same grants).
    """

    platform: PlatformRefs
    role_arn: pulumi.Input[str] | None = None
    tags: dict[str, str] = field(default_factory=dict)


class FeatureStore(pulumi.ComponentResource):
    groups: dict[str, aws.sagemaker.FeatureGroup]
    role: aws.iam.Role | None

    def __init__(
        self, name: str, args: FeatureStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:features:FeatureStore", name, None, opts)
        platform = args.platform
        self._args = args
        self._group_names = {group: _group_name(platform.name_prefix, group) for group in GROUPS}
        self.glue_database_name = _glue_database_name(platform.name_prefix)
        self.offline_store_uri = platform.s3_uri("curated", f"{OFFLINE_STORE_PREFIX}/")

        self.glue_database = aws.glue.CatalogDatabase(
            f"{name}-glue-database",
            name=self.glue_database_name,
            description=f"{platform.name_prefix} feature store offline tables",
            tags=tags_for(f"{name}-glue-database", platform.tags, args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.role, role_policy = self._role(name)
        self.role_arn: pulumi.Input[str] = (
            args.role_arn
            if args.role_arn is not None
            else permissions.role_arn(platform, _role_name(platform.name_prefix))
        )
        depends_on: list[pulumi.Resource] = [self.glue_database]
        if role_policy is not None:
            depends_on.append(role_policy)
        self.groups = {group: self._feature_group(name, group, depends_on) for group in GROUPS}

        self.customer_group_name = self._group_names["customer"]
        self.item_group_name = self._group_names["item"]
        self.customer_group_arn = _group_arn(platform, self.customer_group_name)
        self.item_group_arn = _group_arn(platform, self.item_group_name)
        self.register_outputs(
            {
                "customer_group_name": self.customer_group_name,
                "item_group_name": self.item_group_name,
                "customer_group_arn": self.customer_group_arn,
                "item_group_arn": self.item_group_arn,
                "role_arn": self.role_arn,
                "offline_store_uri": self.offline_store_uri,
                "glue_database_name": self.glue_database_name,
            }
        )

    def _feature_group(
        self, name: str, group: str, depends_on: list[pulumi.Resource]
    ) -> aws.sagemaker.FeatureGroup:
        platform = self._args.platform
        child = f"{name}-{group}-features"
        return aws.sagemaker.FeatureGroup(
            child,
            feature_group_name=self._group_names[group],
            description=f"{group.capitalize()} features of {platform.name_prefix}",
            record_identifier_feature_name=RECORD_IDENTIFIERS[group],
            event_time_feature_name=EVENT_TIME_COLUMN,
            feature_definitions=[
                {"feature_name": f["FeatureName"], "feature_type": f["FeatureType"]}
                for f in feature_group_schema(group)
            ],
            role_arn=self.role_arn,
            online_store_config={
                "enable_online_store": True,
                # The key ARN, not the alias: the online store encrypts through KMS grants,
                # and CreateGrant takes a key id or key ARN only.
                "security_config": {"kms_key_id": platform.kms_key_arn},
            },
            offline_store_config={
                "s3_storage_config": {
                    "s3_uri": self.offline_store_uri,
                    "kms_key_id": platform.bucket_key_arns["curated"],
                },
                "disable_glue_table_creation": False,
                "data_catalog_config": {
                    "catalog": GLUE_CATALOG,
                    "database": self.glue_database_name,
                    "table_name": _table_name(group),
                },
            },
            tags=tags_for(child, platform.tags, self._args.tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )

    def _role(self, name: str) -> tuple[aws.iam.Role | None, aws.iam.RolePolicy | None]:
        if self._args.role_arn is not None:
            return None, None
        platform = self._args.platform
        role = aws.iam.Role(
            f"{name}-role",
            name=_role_name(platform.name_prefix),
            description="Lets SageMaker Feature Store write this stack's offline store",
            assume_role_policy=iam_documents.service_trust(
                "sagemaker.amazonaws.com", account_id=platform.account_id
            ),
            tags=tags_for(f"{name}-role", platform.tags, self._args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        policy = aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=role.id,
            policy=iam_documents.document(*self._role_statements()),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return role, policy

    def _role_statements(self) -> list[dict[str, Any]]:
        platform = self._args.platform
        bucket_arn = platform.bucket_arns["curated"]
        objects = pulumi.Output.concat(bucket_arn, f"/{OFFLINE_STORE_PREFIX}/*")
        keys = pulumi.Output.all(platform.bucket_key_arns["curated"], platform.kms_key_arn).apply(
            lambda arns: sorted(set(arns))
        )
        database = self.glue_database_name
        glue = [
            platform.arn("glue", "catalog"),
            platform.arn("glue", f"database/{database}"),
            *(platform.arn("glue", f"table/{database}/{_table_name(g)}") for g in GROUPS),
        ]
        return [
            iam_documents.allow(
                "OfflineStoreObjects",
                ["s3:PutObject", "s3:GetObject", "s3:PutObjectAcl"],
                [objects],
            ),
            # Feature Store checks the bucket's ownership before its first write.
            iam_documents.allow("OfflineStoreBucketAcl", ["s3:GetBucketAcl"], [bucket_arn]),
            iam_documents.allow(
                "FeatureStoreKeys",
                ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                keys,
            ),
            iam_documents.allow(
                "OfflineStoreGlueTables",
                ["glue:GetDatabase", "glue:GetTable", "glue:CreateTable", "glue:UpdateTable"],
                glue,
            ),
        ]


def _group_name(prefix: str, group: str) -> str:
    name = f"{prefix}-{group}-features"
    if not FEATURE_GROUP_NAME.match(name):
        raise ValueError(
            f"FeatureStore: feature group name '{name}' (from name_prefix '{prefix}') is not a "
            "valid SageMaker FeatureGroup name: at most 64 letters, digits and single or repeated "
            "hyphens, starting and ending with a letter or digit. Shorten the project name or "
            "environment."
        )
    return name


def _group_arn(platform: PlatformRefs, group_name: str) -> pulumi.Output[str]:
    # SageMaker lower-cases resource names inside ARNs.
    return platform.arn("sagemaker", f"feature-group/{group_name.lower()}")


def _role_name(prefix: str) -> str:
    return f"{prefix}-feature-store"


def _glue_database_name(prefix: str) -> str:
    """Athena reads Glue names in lower case with underscores only."""
    return f"{prefix}_feature_store".replace("-", "_").lower()


def _table_name(group: str) -> str:
    return f"{group}_features"
