"""An S3 bucket with the platform's guarantees built in (`mlops:storage:SecureBucket`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components import iam_documents
from infra.components.tagging import tags_for


@dataclass
class LifecycleArgs:
    """Default: non-current versions expire after 90 days, stalled uploads abort after 7."""

    noncurrent_version_expiration_days: int = 90
    abort_incomplete_upload_days: int = 7
    expiration_days: int | None = None
    transition_days: int | None = None
    transition_storage_class: str = "GLACIER_IR"


@dataclass
class SecureBucketArgs:
    """Secure defaults; the insecure choices are explicit `allow_*`/`disable_*` opt-outs.

    Default: SSE-KMS with `kms_key` and bucket keys, versioning on, all public access blocked,
    ACLs disabled, TLS-only, uploads naming another algorithm or key denied, access logged to
    `log_bucket`, data retained when the stack is destroyed.
    """

    bucket_name: pulumi.Input[str]
    partition: pulumi.Input[str] = "aws"
    kms_key: aws.kms.Key | None = None
    kms_key_alias_arn: pulumi.Input[str] | None = None
    """The key's alias ARN, also accepted in upload headers (SageMaker may name the alias)."""
    log_bucket: aws.s3.Bucket | None = None
    log_prefix: str = ""
    lifecycle: LifecycleArgs = field(default_factory=LifecycleArgs)
    protect: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    extra_policy_statements: list[dict[str, Any]] = field(default_factory=list)
    send_events_to_eventbridge: bool = False
    """Object-level events go to EventBridge, where rules can react to new objects."""
    allow_s3_managed_encryption: bool = False
    disable_access_logging: bool = False


class SecureBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket

    def __init__(
        self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:storage:SecureBucket", name, None, opts)
        _check(name, args)
        child = pulumi.ResourceOptions(parent=self)
        # Built from the physical name so policies naming this bucket are known at preview.
        self.arn = pulumi.Output.concat("arn:", args.partition, ":s3:::", args.bucket_name)
        self.bucket = aws.s3.Bucket(
            name,
            bucket=args.bucket_name,
            force_destroy=False,
            tags=tags_for(name, args.tags),
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, retain_on_delete=args.protect
            ),
        )
        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        self.ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=self.bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=self.bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[_encryption_rule(args.kms_key)],
            opts=child,
        )
        self.policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=self.bucket.id,
            policy=iam_documents.document(
                *_policy_statements(self.arn, args.kms_key, args.kms_key_alias_arn),
                *args.extra_policy_statements,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_access_block]),
        )
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.id,
            rules=[_lifecycle_rule(args.lifecycle)],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]),
        )
        if args.send_events_to_eventbridge:
            aws.s3.BucketNotification(
                f"{name}-notifications", bucket=self.bucket.id, eventbridge=True, opts=child
            )
        if args.log_bucket is not None:
            self.logging = aws.s3.BucketLogging(
                f"{name}-access-logging",
                bucket=self.bucket.id,
                target_bucket=args.log_bucket.id,
                target_prefix=args.log_prefix or f"{name}/",
                opts=child,
            )
        self.bucket_name = self.bucket.bucket
        self.register_outputs({"bucket_name": self.bucket_name, "arn": self.arn})


def _check(name: str, args: SecureBucketArgs) -> None:
    if args.kms_key is None and not args.allow_s3_managed_encryption:
        raise ValueError(
            f"SecureBucket '{name}': kms_key is None. Pass the customer-managed key to encrypt "
            "with, or set allow_s3_managed_encryption=True to accept SSE-S3 (only for buckets AWS "
            "cannot write with KMS, such as server access-log targets)."
        )
    if args.kms_key is not None and args.allow_s3_managed_encryption:
        raise ValueError(
            f"SecureBucket '{name}': both kms_key and allow_s3_managed_encryption were given; "
            "pass one of them."
        )
    if args.log_bucket is None and not args.disable_access_logging:
        raise ValueError(
            f"SecureBucket '{name}': log_bucket is None. Pass the access-log bucket, or set "
            "disable_access_logging=True (only for the access-log bucket itself)."
        )


def _encryption_rule(kms_key: aws.kms.Key | None) -> dict[str, Any]:
    if kms_key is None:
        return {"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}
    return {
        "apply_server_side_encryption_by_default": {
            "sse_algorithm": "aws:kms",
            "kms_master_key_id": kms_key.arn,
        },
        "bucket_key_enabled": True,
    }


def _policy_statements(
    bucket_arn: pulumi.Output[str],
    kms_key: aws.kms.Key | None,
    kms_key_alias_arn: pulumi.Input[str] | None = None,
) -> list[dict[str, Any]]:
    objects = pulumi.Output.concat(bucket_arn, "/*")
    statements = [
        iam_documents.deny(
            "DenyInsecureTransport",
            ["s3:*"],
            [bucket_arn, objects],
            Principal="*",
            Condition={"Bool": {"aws:SecureTransport": "false"}},
        )
    ]
    if kms_key is None:
        return statements
    # Uploads without headers get the default encryption; uploads naming another algorithm or
    # another key are refused. `Null: false` makes each check apply only when the header is sent.
    statements += [
        iam_documents.deny(
            "DenyOtherEncryptionAlgorithms",
            ["s3:PutObject"],
            [objects],
            Principal="*",
            Condition={
                "Null": {"s3:x-amz-server-side-encryption": "false"},
                "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
            },
        ),
        iam_documents.deny(
            "DenyOtherKmsKeys",
            ["s3:PutObject"],
            [objects],
            Principal="*",
            Condition={
                "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"},
                "StringNotEquals": {
                    "s3:x-amz-server-side-encryption-aws-kms-key-id": [
                        kms_key.arn,
                        kms_key_alias_arn,
                    ]
                    if kms_key_alias_arn is not None
                    else kms_key.arn
                },
            },
        ),
    ]
    return statements


def _lifecycle_rule(lifecycle: LifecycleArgs) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": "platform-retention",
        "status": "Enabled",
        "filter": {"prefix": ""},
        "noncurrent_version_expiration": {
            "noncurrent_days": lifecycle.noncurrent_version_expiration_days
        },
        "abort_incomplete_multipart_upload": {
            "days_after_initiation": lifecycle.abort_incomplete_upload_days
        },
    }
    if lifecycle.expiration_days is not None:
        rule["expiration"] = {"days": lifecycle.expiration_days}
    if lifecycle.transition_days is not None:
        rule["transitions"] = [
            {"days": lifecycle.transition_days, "storage_class": lifecycle.transition_storage_class}
        ]
    return rule
