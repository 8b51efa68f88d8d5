"""S3 guardrails. With pulumi-aws v7 a bucket's settings are separate resources that name their
bucket through `bucket`, whose value (the bucket id) is unknown at preview, so these rules are
stack validations that pair each setting with its bucket by property dependency."""

from __future__ import annotations

from typing import Any

from pulumi_policy import PolicyResource, ReportViolation, StackValidationArgs

from mlops_guardrails.framework import (
    MANDATORY,
    as_list,
    check_each,
    depends_on,
    dig,
    has,
    of_type,
    parse_json,
    stack_policy,
    tags_of,
)

BUCKET = "aws:s3/bucket:Bucket"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
KMS_KEY = "aws:kms/key:Key"
ACCESS_LOGS_CLASS = "access-logs"
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)


def _settings(
    resources: list[PolicyResource], bucket: PolicyResource, type_: str
) -> list[PolicyResource]:
    return [r for r in of_type(resources, type_) if depends_on(r, bucket, "bucket")]


def is_access_log_target(resources: list[PolicyResource], bucket: PolicyResource) -> bool:
    """S3 server access logs can only be delivered to SSE-S3 buckets: the one exception allowed."""
    tagged = tags_of(bucket.props).get("DataClass") == ACCESS_LOGS_CLASS
    targeted = any(depends_on(r, bucket, "targetBucket") for r in of_type(resources, LOGGING))
    return tagged and targeted


def _check_kms(args: StackValidationArgs, report: ReportViolation) -> None:
    resources = args.resources
    keys = of_type(resources, KMS_KEY)

    def check(bucket: PolicyResource) -> None:
        configs = _settings(resources, bucket, ENCRYPTION)
        if not configs:
            report("No server-side encryption configuration names this bucket.", bucket.urn)
            return
        for config in configs:
            for rule in as_list(dig(config.props, "rules")):
                default = dig(rule, "applyServerSideEncryptionByDefault") or {}
                algorithm = dig(default, "sseAlgorithm")
                if algorithm not in KMS_ALGORITHMS:
                    if algorithm == "AES256" and is_access_log_target(resources, bucket):
                        continue
                    report(
                        f"Encryption is '{algorithm}', not SSE-KMS with a customer key.", bucket.urn
                    )
                elif not has(default, "kmsMasterKeyId"):
                    report(
                        "SSE-KMS without kmsMasterKeyId uses the AWS-managed aws/s3 key.",
                        bucket.urn,
                    )
                elif not any(depends_on(config, key, "rules") for key in keys):
                    key_id = default["kmsMasterKeyId"]
                    if not isinstance(key_id, str) or not key_id or key_id.startswith("alias/aws/"):
                        report(
                            f"kmsMasterKeyId '{key_id}' is not a customer-managed key.", bucket.urn
                        )

    check_each(of_type(resources, BUCKET), check)


def _check_versioning(args: StackValidationArgs, report: ReportViolation) -> None:
    def check(bucket: PolicyResource) -> None:
        settings = _settings(args.resources, bucket, VERSIONING)
        if not any(
            dig(v.props, "versioningConfiguration", "status") == "Enabled" for v in settings
        ):
            report("No BucketVersioning with status Enabled names this bucket.", bucket.urn)

    check_each(of_type(args.resources, BUCKET), check)


def _check_public_access(args: StackValidationArgs, report: ReportViolation) -> None:
    def check(bucket: PolicyResource) -> None:
        blocks = _settings(args.resources, bucket, PUBLIC_ACCESS_BLOCK)
        if not blocks:
            report("No BucketPublicAccessBlock names this bucket.", bucket.urn)
            return
        for block in blocks:
            off = [flag for flag in PUBLIC_ACCESS_FLAGS if dig(block.props, flag) is not True]
            if off:
                report(f"Public access settings not enabled: {', '.join(off)}.", bucket.urn)

    check_each(of_type(args.resources, BUCKET), check)


def denies_insecure_transport(document: Any) -> bool:
    for statement in as_list(dig(document, "Statement")):
        principal = statement.get("Principal")
        actions = as_list(statement.get("Action"))
        condition = statement.get("Condition") or {}
        secure = [
            (condition.get(op) or {}).get("aws:SecureTransport") for op in ("Bool", "BoolIfExists")
        ]
        if (
            statement.get("Effect") == "Deny"
            and principal in ("*", {"AWS": "*"})
            and any(a in ("s3:*", "*") for a in actions)
            and any(str(v).lower() == "false" for v in secure if v is not None)
        ):
            return True
    return False


def _check_tls(args: StackValidationArgs, report: ReportViolation) -> None:
    def check(bucket: PolicyResource) -> None:
        policies = _settings(args.resources, bucket, BUCKET_POLICY)
        if not policies:
            report("No BucketPolicy names this bucket.", bucket.urn)
            return
        if not any(denies_insecure_transport(parse_json(p.props["policy"])) for p in policies):
            report("The bucket policy does not deny requests without TLS.", bucket.urn)

    check_each(of_type(args.resources, BUCKET), check)


def _check_logging(args: StackValidationArgs, report: ReportViolation) -> None:
    def check(bucket: PolicyResource) -> None:
        if is_access_log_target(args.resources, bucket):
            return
        if not _settings(args.resources, bucket, LOGGING):
            report("No BucketLogging sends this bucket's server access logs anywhere.", bucket.urn)

    check_each(of_type(args.resources, BUCKET), check)


def _check_lifecycle(args: StackValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    classes = set(config.get("dataClasses", ["capture", "reports"]))
    max_days = float(config.get("maxExpirationDays", 730))

    def check(bucket: PolicyResource) -> None:
        data_class = tags_of(bucket.props).get("DataClass")
        if data_class not in classes:
            return
        days = [
            dig(rule, "expiration", "days")
            for lifecycle in _settings(args.resources, bucket, LIFECYCLE)
            for rule in as_list(dig(lifecycle.props, "rules"))
            if dig(rule, "status") == "Enabled"
        ]
        days = [d for d in days if isinstance(d, (int, float)) and d > 0]
        if not days:
            report(
                f"The {data_class} bucket has no enabled lifecycle rule expiring objects.",
                bucket.urn,
            )
        elif min(days) > max_days:
            report(
                f"Objects expire after {min(days):g} days; the limit is {max_days:g}.", bucket.urn
            )

    check_each(of_type(args.resources, BUCKET), check)


def _check_acls(args: StackValidationArgs, report: ReportViolation) -> None:
    def check(bucket: PolicyResource) -> None:
        controls = _settings(args.resources, bucket, OWNERSHIP)
        owners = [dig(c.props, "rule", "objectOwnership") for c in controls]
        if "BucketOwnerEnforced" not in owners:
            report("Object ownership is not BucketOwnerEnforced, so ACLs still apply.", bucket.urn)

    check_each(of_type(args.resources, BUCKET), check)


POLICIES = [
    stack_policy(
        "s3-bucket-kms-encryption",
        "S3 buckets must be encrypted with SSE-KMS under a customer-managed key (only the "
        "access-log bucket that BucketLogging targets may use SSE-S3).",
        _check_kms,
        level=MANDATORY,
        remediation="Give the bucket a BucketServerSideEncryptionConfiguration with sseAlgorithm "
        "'aws:kms' and kmsMasterKeyId set to an aws.kms.Key's ARN (SecureBucketArgs.kms_key).",
    ),
    stack_policy(
        "s3-bucket-versioning",
        "S3 buckets must have versioning enabled.",
        _check_versioning,
        level=MANDATORY,
        remediation="Add a BucketVersioning for the bucket with versioningConfiguration.status "
        "'Enabled' (SecureBucket does this).",
    ),
    stack_policy(
        "s3-bucket-public-access-block",
        "S3 buckets must block every form of public access.",
        _check_public_access,
        level=MANDATORY,
        remediation="Add a BucketPublicAccessBlock for the bucket with blockPublicAcls, "
        "blockPublicPolicy, ignorePublicAcls and restrictPublicBuckets all true.",
    ),
    stack_policy(
        "s3-bucket-tls-only",
        "S3 bucket policies must deny every request made without TLS.",
        _check_tls,
        level=MANDATORY,
        remediation="Add a BucketPolicy statement: Effect Deny, Principal '*', Action 's3:*', "
        "Condition {'Bool': {'aws:SecureTransport': 'false'}}.",
    ),
    stack_policy(
        "s3-bucket-access-logging",
        "S3 buckets must send server access logs to the access-log bucket.",
        _check_logging,
        remediation="Add a BucketLogging with bucket set to this bucket and targetBucket set to "
        "the platform's access-log bucket (SecureBucketArgs.log_bucket).",
    ),
    stack_policy(
        "s3-bucket-lifecycle-retention",
        "Capture and report buckets must expire objects through a lifecycle rule.",
        _check_lifecycle,
        remediation="Add a BucketLifecycleConfiguration rule with status 'Enabled' and "
        "expiration.days (mlops:captureRetentionDays / mlops:reportRetentionDays).",
        config={
            "dataClasses": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["capture", "reports"],
            },
            "maxExpirationDays": {"type": "number", "minimum": 1, "default": 730},
        },
    ),
    stack_policy(
        "s3-bucket-acls-disabled",
        "S3 buckets must disable ACLs (object ownership BucketOwnerEnforced).",
        _check_acls,
        remediation="Add a BucketOwnershipControls with rule.objectOwnership "
        "'BucketOwnerEnforced'.",
    ),
]
