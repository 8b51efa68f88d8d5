"""The platform's buckets: raw, curated, artifacts, capture, reports, and their access logs."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.components import kms
from infra.components.secure_bucket import LifecycleArgs, SecureBucket, SecureBucketArgs

DATA_BUCKETS = ("raw", "curated", "artifacts", "capture", "reports")
ACCESS_LOGS = "access-logs"


@dataclass
class DataLakeArgs:
    """Where data lives and for how long. Days default to the values declared in Pulumi.yaml.

    Default: one platform key encrypts every bucket (`key_per_bucket` gives each its own);
    raw data moves to GLACIER_IR after 30 days; capture expires after 30 days and reports
    after 90; non-current versions expire after 90 days; stalled uploads abort after 7.
    """

    name_prefix: str
    account_id: pulumi.Input[str]
    region: pulumi.Input[str]
    partition: pulumi.Input[str] = "aws"
    kms_key: aws.kms.Key | None = None
    kms_key_name: str | None = None
    """The logical name `kms_key` was created with by `customer_managed_key` (for its alias)."""
    key_per_bucket: bool = False
    raw_cold_storage_days: int = 30
    capture_retention_days: int = 30
    report_retention_days: int = 90
    noncurrent_version_retention_days: int = 90
    abort_incomplete_upload_days: int = 7
    access_log_retention_days: int = 365
    protect: bool = False
    tags: dict[str, str] = field(default_factory=dict)


class DataLake(pulumi.ComponentResource):
    buckets: dict[str, SecureBucket]
    keys: dict[str, aws.kms.Key]

    def __init__(self, name: str, args: DataLakeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:data:DataLake", name, None, opts)
        if args.kms_key is not None and args.key_per_bucket:
            raise ValueError(
                f"DataLake '{name}': kms_key and key_per_bucket=True were both given; pass the "
                "platform key, or ask for one key per bucket, not both."
            )
        if args.kms_key is not None and args.kms_key_name is None:
            raise ValueError(
                f"DataLake '{name}': kms_key was given without kms_key_name; pass the "
                "logical name the key was created with (its alias is alias/<name>)."
            )
        self.args = args
        self.access_logs = self._access_log_bucket(name)
        self.keys = self._keys(name)
        self.key_alias_arns = {
            role: kms.alias_arn(
                self._key_name(name, role),
                partition=args.partition,
                region=args.region,
                account_id=args.account_id,
            )
            for role in DATA_BUCKETS
        }
        self.buckets = {
            role: SecureBucket(
                f"{name}-{role}",
                SecureBucketArgs(
                    bucket_name=self._physical_name(role),
                    partition=args.partition,
                    kms_key=self.keys[role],
                    kms_key_alias_arn=self.key_alias_arns[role],
                    log_bucket=self.access_logs.bucket,
                    log_prefix=f"{role}/",
                    lifecycle=self._lifecycle(role),
                    protect=args.protect,
                    tags={**args.tags, "DataClass": role},
                    send_events_to_eventbridge=role == "reports",
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for role in DATA_BUCKETS
        }
        self.bucket_names = {role: b.bucket_name for role, b in self.buckets.items()}
        self.bucket_arns = {role: b.arn for role, b in self.buckets.items()}
        self.key_arns = {role: key.arn for role, key in self.keys.items()}
        self.register_outputs(
            {
                "bucket_names": self.bucket_names,
                "bucket_arns": self.bucket_arns,
                "key_arns": self.key_arns,
                "access_log_bucket": self.access_logs.bucket_name,
            }
        )

    def _physical_name(self, role: str) -> pulumi.Output[str]:
        return pulumi.Output.concat(self.args.name_prefix, "-", role, "-", self.args.account_id)

    def _keys(self, name: str) -> dict[str, aws.kms.Key]:
        args = self.args

        def new_key(key_name: str, description: str) -> aws.kms.Key:
            return kms.customer_managed_key(
                key_name,
                description=description,
                account_id=args.account_id,
                tags=args.tags,
                opts=pulumi.ResourceOptions(
                    parent=self, protect=args.protect, retain_on_delete=args.protect
                ),
            )

        if args.key_per_bucket:
            return {
                role: new_key(self._key_name(name, role), f"{args.name_prefix} {role} bucket")
                for role in DATA_BUCKETS
            }
        if args.kms_key is not None:
            return dict.fromkeys(DATA_BUCKETS, args.kms_key)
        key = new_key(self._key_name(name, "raw"), f"{args.name_prefix} data lake")
        return dict.fromkeys(DATA_BUCKETS, key)

    def _key_name(self, name: str, role: str) -> str:
        """The logical name of the key encrypting `role`'s bucket; its alias is alias/<name>."""
        args = self.args
        if args.key_per_bucket:
            return f"{name}-{role}-key"
        return args.kms_key_name or f"{name}-key"

    def _lifecycle(self, role: str) -> LifecycleArgs:
        args = self.args
        lifecycle = LifecycleArgs(
            noncurrent_version_expiration_days=args.noncurrent_version_retention_days,
            abort_incomplete_upload_days=args.abort_incomplete_upload_days,
        )
        if role == "raw":
            lifecycle.transition_days = args.raw_cold_storage_days
        elif role == "capture":
            lifecycle.expiration_days = args.capture_retention_days
        elif role == "reports":
            lifecycle.expiration_days = args.report_retention_days
        return lifecycle

    def _access_log_bucket(self, name: str) -> SecureBucket:
        """S3 delivers server access logs only to SSE-S3 buckets, so this one cannot use KMS."""
        args = self.args
        log_name = self._physical_name(ACCESS_LOGS)
        objects = pulumi.Output.concat("arn:", args.partition, ":s3:::", log_name, "/*")
        delivery = {
            "Sid": "S3ServerAccessLogDelivery",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": ["s3:PutObject"],
            "Resource": [objects],
            "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}},
        }
        return SecureBucket(
            f"{name}-{ACCESS_LOGS}",
            SecureBucketArgs(
                bucket_name=log_name,
                partition=args.partition,
                lifecycle=LifecycleArgs(
                    noncurrent_version_expiration_days=args.noncurrent_version_retention_days,
                    abort_incomplete_upload_days=args.abort_incomplete_upload_days,
                    expiration_days=args.access_log_retention_days,
                ),
                protect=args.protect,
                tags={**args.tags, "DataClass": ACCESS_LOGS},
                extra_policy_statements=[delivery],
                allow_s3_managed_encryption=True,
                disable_access_logging=True,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
