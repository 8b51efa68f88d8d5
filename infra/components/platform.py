"""The shared half of the platform (`mlops:platform:MlPlatform`): keys, data lake, alarm topic.

Several teams' models share one platform; each model's own half is a `ModelWorkload`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.components import iam_documents, kms
from infra.components.data_lake import DataLake, DataLakeArgs
from infra.components.feature_store import FeatureStore, FeatureStoreArgs
from infra.components.platform_refs import PlatformRefs
from infra.components.tagging import tags_for
from infra.settings import PlatformSettings


@dataclass
class MlPlatformArgs:
    settings: PlatformSettings
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str] = "aws"
    alert_webhook_url: pulumi.Input[str] | None = None
    """An HTTPS endpoint subscribed to the alarm topic (a secret; skipped when empty)."""
    tags: dict[str, str] = field(default_factory=dict)


class MlPlatform(pulumi.ComponentResource):
    refs: PlatformRefs

    def __init__(self, name: str, args: MlPlatformArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:platform:MlPlatform", name, None, opts)
        settings = args.settings
        tags = {**settings.tags, **args.tags}
        protect = settings.protect
        self.key = kms.customer_managed_key(
            f"{name}-key",
            description=f"{settings.name_prefix} platform key",
            account_id=args.account_id,
            tags=tags,
            service_principals=[
                pulumi.Output.concat("logs.", settings.region, ".amazonaws.com"),
                "cloudwatch.amazonaws.com",
                "events.amazonaws.com",
                "sagemaker.amazonaws.com",
            ],
            opts=pulumi.ResourceOptions(parent=self, protect=protect, retain_on_delete=protect),
        )
        self.data_lake = DataLake(
            f"{name}-lake",
            DataLakeArgs(
                name_prefix=settings.name_prefix,
                account_id=args.account_id,
                region=settings.region,
                partition=args.partition,
                kms_key=None if settings.kms_key_per_bucket else self.key,
                kms_key_name=None if settings.kms_key_per_bucket else f"{name}-key",
                key_per_bucket=settings.kms_key_per_bucket,
                raw_cold_storage_days=settings.raw_data_cold_storage_days,
                capture_retention_days=settings.capture_retention_days,
                report_retention_days=settings.report_retention_days,
                noncurrent_version_retention_days=settings.noncurrent_version_retention_days,
                abort_incomplete_upload_days=settings.abort_incomplete_upload_days,
                access_log_retention_days=settings.access_log_retention_days,
                protect=protect,
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.alarm_topic = self._alarm_topic(name, args, tags)
        self.refs = PlatformRefs(
            name_prefix=settings.name_prefix,
            environment=settings.environment,
            account_id=args.account_id,
            region=settings.region,
            partition=args.partition,
            kms_key_arn=self.key.arn,
            kms_key_alias_arn=kms.alias_arn(
                f"{name}-key",
                partition=args.partition,
                region=settings.region,
                account_id=args.account_id,
            ),
            bucket_names=self.data_lake.bucket_names,
            bucket_arns=self.data_lake.bucket_arns,
            bucket_key_arns=self.data_lake.key_arns,
            bucket_key_alias_arns=self.data_lake.key_alias_arns,
            alarm_topic_arn=self.alarm_topic_arn,
            log_retention_days=settings.log_retention_days,
            subnet_ids=settings.subnet_ids,
            security_group_ids=settings.security_group_ids,
            tags=tags,
        )
        self.feature_store = FeatureStore(
            f"{name}-features",
            FeatureStoreArgs(platform=self.refs),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {
                "kms_key_arn": self.key.arn,
                "feature_groups": [
                    self.feature_store.customer_group_name,
                    self.feature_store.item_group_name,
                ],
                "bucket_names": self.data_lake.bucket_names,
                "alarm_topic_arn": self.alarm_topic_arn,
            }
        )

    def _alarm_topic(self, name: str, args: MlPlatformArgs, tags: dict[str, str]) -> aws.sns.Topic:
        """The topic people subscribe to; its ARN is built from its name so alarms naming it are
        known at preview."""
        settings = args.settings
        topic_name = f"{settings.name_prefix}-alarms"
        topic = aws.sns.Topic(
            f"{name}-alarms",
            name=topic_name,
            kms_master_key_id=self.key.arn,
            tags=tags_for(f"{name}-alarms", tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        topic_arn = pulumi.Output.concat(
            "arn:", args.partition, ":sns:", settings.region, ":", args.account_id, ":", topic_name
        )
        self.alarm_topic_arn = topic_arn
        aws.sns.TopicPolicy(
            f"{name}-alarms-policy",
            arn=topic.arn,
            policy=iam_documents.document(
                {
                    "Sid": "AlarmsAndRulesOfThisAccountPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}},
                },
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        for i, email in enumerate(settings.notification_emails):
            aws.sns.TopicSubscription(
                f"{name}-alarms-email-{i}",
                topic=topic.arn,
                protocol="email",
                endpoint=email,
                opts=pulumi.ResourceOptions(parent=self),
            )
        if args.alert_webhook_url is not None:
            aws.sns.TopicSubscription(
                f"{name}-alarms-webhook",
                topic=topic.arn,
                protocol="https",
                endpoint=args.alert_webhook_url,
                opts=pulumi.ResourceOptions(parent=self),
            )
        return topic
