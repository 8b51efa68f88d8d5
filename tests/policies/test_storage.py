"""S3 rules: the platform's bucket set passes; each broken setting fails its rule."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from infra.plan.engine import Resource
from tests.policies.helpers import UNKNOWN, doc, found, levels, res, run, tagged

KEY = res("aws:kms/key:Key", "key", {"tags": tagged()})
TLS = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": ["s3:*"],
    "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def bucket_set(role: str, *, kms: bool = True, log_target: str | None = "logs") -> list[Resource]:
    bucket = res(
        "aws:s3/bucket:Bucket", role, {"bucket": f"mlops-{role}", "tags": tagged(DataClass=role)}
    )
    on = {"bucket": [bucket.urn]}
    default = {"sseAlgorithm": "AES256"}
    sse_deps = dict(on)
    if kms:
        default = {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": UNKNOWN}
        sse_deps["rules"] = [KEY.urn]
    found_ = [
        bucket,
        res(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            f"{role}-pab",
            {
                "bucket": UNKNOWN,
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
            on,
        ),
        res(
            "aws:s3/bucketVersioning:BucketVersioning",
            f"{role}-versioning",
            {"bucket": UNKNOWN, "versioningConfiguration": {"status": "Enabled"}},
            on,
        ),
        res(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            f"{role}-sse",
            {"bucket": UNKNOWN, "rules": [{"applyServerSideEncryptionByDefault": default}]},
            sse_deps,
        ),
        res(
            "aws:s3/bucketPolicy:BucketPolicy",
            f"{role}-policy",
            {"bucket": UNKNOWN, "policy": doc(TLS)},
            on,
        ),
        res(
            "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
            f"{role}-ownership",
            {"bucket": UNKNOWN, "rule": {"objectOwnership": "BucketOwnerEnforced"}},
            on,
        ),
        res(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            f"{role}-lifecycle",
            {"bucket": UNKNOWN, "rules": [{"status": "Enabled", "expiration": {"days": 30.0}}]},
            on,
        ),
    ]
    if log_target:
        target = res("aws:s3/bucket:Bucket", log_target)
        found_.append(
            res(
                "aws:s3/bucketLogging:BucketLogging",
                f"{role}-logging",
                {"bucket": UNKNOWN, "targetBucket": UNKNOWN, "targetPrefix": f"{role}/"},
                {"bucket": [bucket.urn], "targetBucket": [target.urn]},
            )
        )
    return found_


def platform() -> list[Resource]:
    logs = bucket_set("access-logs", kms=False, log_target=None)
    logs[0].urn = logs[0].urn.replace("::access-logs", "::logs")
    for r in logs[1:]:
        r.property_dependencies["bucket"] = [logs[0].urn]
    return [KEY, *logs, *bucket_set("capture"), *bucket_set("reports"), *bucket_set("raw")]


def named(resources: list[Resource], name: str) -> Resource:
    return next(r for r in resources if r.name == name)


def test_platform_buckets_pass_every_storage_rule() -> None:
    report = run(platform())
    assert [v for v in report.violations if v.policy_name.startswith("s3-")] == []


def _drop(name: str) -> Callable[[list[Resource]], None]:
    return lambda rs: rs.remove(named(rs, name))


CASES = {
    "aes256-on-data-bucket": (
        "s3-bucket-kms-encryption",
        lambda rs: (
            named(rs, "raw-sse")
            .inputs["rules"][0]
            .update(applyServerSideEncryptionByDefault={"sseAlgorithm": "AES256"})
        ),
    ),
    "aws-managed-key": (
        "s3-bucket-kms-encryption",
        lambda rs: (
            named(rs, "raw-sse")
            .inputs["rules"][0]["applyServerSideEncryptionByDefault"]
            .pop("kmsMasterKeyId")
        ),
    ),
    "aws-alias-key": (
        "s3-bucket-kms-encryption",
        lambda rs: (
            named(rs, "raw-sse").property_dependencies.pop("rules"),
            named(rs, "raw-sse")
            .inputs["rules"][0]["applyServerSideEncryptionByDefault"]
            .update(kmsMasterKeyId="alias/aws/s3"),
        ),
    ),
    "no-encryption-config": ("s3-bucket-kms-encryption", _drop("raw-sse")),
    "access-log-tag-without-logging-target": (
        "s3-bucket-kms-encryption",
        lambda rs: [
            r.property_dependencies.update(targetBucket=[])
            for r in rs
            if r.type.endswith("BucketLogging")
        ],
    ),
    "versioning-suspended": (
        "s3-bucket-versioning",
        lambda rs: named(rs, "raw-versioning").inputs.update(
            versioningConfiguration={"status": "Suspended"}
        ),
    ),
    "no-versioning": ("s3-bucket-versioning", _drop("raw-versioning")),
    "public-policy-allowed": (
        "s3-bucket-public-access-block",
        lambda rs: named(rs, "raw-pab").inputs.update(blockPublicPolicy=False),
    ),
    "no-public-access-block": ("s3-bucket-public-access-block", _drop("raw-pab")),
    "policy-without-tls-deny": (
        "s3-bucket-tls-only",
        lambda rs: named(rs, "raw-policy").inputs.update(policy=doc({**TLS, "Effect": "Allow"})),
    ),
    "no-bucket-policy": ("s3-bucket-tls-only", _drop("raw-policy")),
    "no-access-logging": ("s3-bucket-access-logging", _drop("raw-logging")),
    "capture-without-expiration": (
        "s3-bucket-lifecycle-retention",
        lambda rs: named(rs, "capture-lifecycle").inputs.update(rules=[{"status": "Enabled"}]),
    ),
    "reports-expiration-disabled": (
        "s3-bucket-lifecycle-retention",
        lambda rs: named(rs, "reports-lifecycle").inputs["rules"][0].update(status="Disabled"),
    ),
    "capture-expires-too-late": (
        "s3-bucket-lifecycle-retention",
        lambda rs: (
            named(rs, "capture-lifecycle").inputs["rules"][0].update(expiration={"days": 4000.0})
        ),
    ),
    "acls-enabled": (
        "s3-bucket-acls-disabled",
        lambda rs: named(rs, "raw-ownership").inputs.update(
            rule={"objectOwnership": "ObjectWriter"}
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_setting_fails_its_rule(case: str) -> None:
    policy, breaks = CASES[case]
    resources = platform()
    breaks(resources)
    report = run(resources)
    assert found(report, policy), case
    others = {v.policy_name for v in report.violations if v.policy_name.startswith("s3-")} - {
        policy
    }
    # Logs sent nowhere also break access logging for every bucket: that rule is not the target.
    assert others <= ({"s3-bucket-access-logging"} if "logging" in case else set())


def test_unknown_bucket_policy_is_reported_as_preview_advisory_even_in_prod() -> None:
    resources = platform()
    named(resources, "raw-policy").inputs["policy"] = UNKNOWN
    report = run(resources, env="prod")
    [violation] = [v for v in report.violations if v.policy_name == "s3-bucket-tls-only"]
    assert violation.enforcement_level == "advisory"
    assert violation.message.startswith("can't run policy 's3-bucket-tls-only'")
    assert "string value at .policy can't be known during preview" in violation.message
    assert violation.urn == "urn:pulumi:test::mlops::pulumi:pulumi:Stack::mlops-test"


def test_unknown_policy_does_not_hide_other_buckets_violations() -> None:
    resources = platform()
    named(resources, "raw-policy").inputs["policy"] = UNKNOWN
    named(resources, "capture-policy").inputs["policy"] = doc()
    report = run(resources)
    assert (
        found(report, "s3-bucket-tls-only")[0]
        == "The bucket policy does not deny requests without TLS."
    )
    assert len(found(report, "s3-bucket-tls-only")) == 2


def test_storage_advisories_in_dev_become_mandatory_in_staging() -> None:
    resources = platform()
    resources.remove(named(resources, "raw-logging"))
    assert levels(run(resources, env="dev"), "s3-bucket-access-logging") == {"advisory"}
    for r in resources:
        if "tags" in r.inputs:
            r.inputs["tags"]["Environment"] = "staging"
    assert levels(run(resources, env="staging"), "s3-bucket-access-logging") == {"mandatory"}
