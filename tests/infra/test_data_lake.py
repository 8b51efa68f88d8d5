"""DataLake under mocks: one test per security property a user relies on."""

from __future__ import annotations

import pytest

from infra.components.data_lake import DATA_BUCKETS, DataLake, DataLakeArgs
from infra.components.secure_bucket import SecureBucket, SecureBucketArgs
from infra.plan.engine import Capture, Resource
from tests.infra.resolved import linked, policy_of, resolved, resolved_stack

BUCKET = "aws:s3/bucket:Bucket"


@pytest.fixture(scope="module")
def stacks() -> dict[str, Capture]:
    return {env: resolved_stack(env) for env in ("dev", "staging", "prod")}


def _buckets(capture: Capture) -> list[Resource]:
    return capture.by_type(BUCKET)


def _data_buckets(capture: Capture) -> list[Resource]:
    return [b for b in _buckets(capture) if b.inputs["tags"]["DataClass"] != "access-logs"]


def _by_urn(capture: Capture, urn: str) -> Resource:
    return next(r for r in capture.resources if r.urn == urn)


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_data_bucket_is_encrypted_with_a_customer_managed_kms_key(stacks, env):
    capture = stacks[env]
    for bucket in _data_buckets(capture):
        sse = linked(
            capture,
            "aws:s3/bucketServerSideEncryptionConfiguration:"
            "BucketServerSideEncryptionConfiguration",
            bucket,
        )
        rule = sse.inputs["rules"][0]
        assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
        assert rule["bucketKeyEnabled"] is True
        key_urns = sse.property_dependencies["rules"]
        assert [_by_urn(capture, u).type for u in key_urns] == ["aws:kms/key:Key"]
        assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"].startswith(
            "arn:aws:kms:"
        )


def test_access_log_bucket_uses_s3_managed_keys_because_log_delivery_requires_it(stacks):
    capture = stacks["dev"]
    (logs,) = [b for b in _buckets(capture) if b.inputs["tags"]["DataClass"] == "access-logs"]
    sse = linked(
        capture,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        logs,
    )
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "AES256"
    }
    delivery = [s for s in policy_of(capture, logs)["Statement"] if s["Effect"] == "Allow"]
    assert delivery == [
        {
            "Sid": "S3ServerAccessLogDelivery",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": ["s3:PutObject"],
            "Resource": [f"arn:aws:s3:::{logs.inputs['bucket']}/*"],
            "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
        }
    ]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_kms_key_rotates_and_waits_thirty_days_before_deletion(stacks, env):
    keys = stacks[env].by_type("aws:kms/key:Key")
    assert keys
    for key in keys:
        assert key.inputs["enableKeyRotation"] is True
        assert key.inputs["deletionWindowInDays"] == 30.0


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_bucket_is_versioned(stacks, env):
    capture = stacks[env]
    for bucket in _buckets(capture):
        versioning = linked(capture, "aws:s3/bucketVersioning:BucketVersioning", bucket)
        assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_bucket_blocks_all_four_kinds_of_public_access(stacks, env):
    capture = stacks[env]
    for bucket in _buckets(capture):
        block = linked(capture, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket)
        for flag in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        ):
            assert block.inputs[flag] is True, (bucket.name, flag)


def test_every_bucket_enforces_bucket_owner_object_ownership(stacks):
    capture = stacks["dev"]
    for bucket in _buckets(capture):
        ownership = linked(
            capture, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", bucket
        )
        assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_bucket_policy_denies_requests_without_tls(stacks, env):
    capture = stacks[env]
    for bucket in _buckets(capture):
        arn = f"arn:aws:s3:::{bucket.inputs['bucket']}"
        (deny,) = [
            s
            for s in policy_of(capture, bucket)["Statement"]
            if s["Sid"] == "DenyInsecureTransport"
        ]
        assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
        assert deny["Action"] == ["s3:*"]
        assert deny["Resource"] == [arn, f"{arn}/*"]
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_bucket_policy_denies_uploads_naming_another_algorithm_or_key(stacks):
    capture = stacks["prod"]
    for bucket in _data_buckets(capture):
        statements = {s["Sid"]: s for s in policy_of(capture, bucket)["Statement"]}
        sse = linked(
            capture,
            "aws:s3/bucketServerSideEncryptionConfiguration:"
            "BucketServerSideEncryptionConfiguration",
            bucket,
        )
        key_arn = sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"]
        algorithm = statements["DenyOtherEncryptionAlgorithms"]["Condition"]
        assert algorithm["StringNotEquals"] == {"s3:x-amz-server-side-encryption": "aws:kms"}
        assert algorithm["Null"] == {"s3:x-amz-server-side-encryption": "false"}
        key = statements["DenyOtherKmsKeys"]["Condition"]
        (key_name,) = [
            k.name for k in capture.by_type("aws:kms/key:Key") if key_arn.endswith(f":{k.name}")
        ]
        alias = f"arn:aws:kms:us-east-1:123456789012:alias/{key_name}"
        assert key["StringNotEquals"] == {
            "s3:x-amz-server-side-encryption-aws-kms-key-id": [key_arn, alias]
        }


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_data_bucket_logs_access_to_the_access_log_bucket(stacks, env):
    capture = stacks[env]
    (logs,) = [b for b in _buckets(capture) if b.inputs["tags"]["DataClass"] == "access-logs"]
    for bucket in _data_buckets(capture):
        logging = linked(capture, "aws:s3/bucketLogging:BucketLogging", bucket)
        assert logging.inputs["targetBucket"] == logs.inputs["bucket"]
        assert logging.inputs["targetPrefix"] == f"{bucket.inputs['tags']['DataClass']}/"


def _rule(capture: Capture, data_class: str) -> dict:
    (bucket,) = [b for b in _buckets(capture) if b.inputs["tags"]["DataClass"] == data_class]
    lifecycle = linked(
        capture, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", bucket
    )
    (rule,) = lifecycle.inputs["rules"]
    return rule


def test_lifecycle_rules_follow_the_stack_config_for_each_kind_of_data(stacks):
    dev, prod = stacks["dev"], stacks["prod"]
    assert _rule(dev, "capture")["expiration"] == {"days": 14.0}
    assert _rule(prod, "capture")["expiration"] == {"days": 90.0}
    assert _rule(prod, "reports")["expiration"] == {"days": 400.0}
    assert _rule(dev, "raw")["transitions"] == [{"days": 30.0, "storageClass": "GLACIER_IR"}]
    assert "expiration" not in _rule(dev, "raw"), "raw data must never expire"
    assert "expiration" not in _rule(dev, "artifacts"), "model artifacts must never expire"
    for data_class in (*DATA_BUCKETS, "access-logs"):
        rule = _rule(dev, data_class)
        assert rule["status"] == "Enabled"
        assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": 14.0}
        assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7.0}


def test_prod_buckets_and_keys_are_protected_and_retained_on_delete(stacks):
    prod = stacks["prod"]
    for res in _buckets(prod) + prod.by_type("aws:kms/key:Key"):
        assert res.options["protect"] and res.options["retainOnDelete"], res.name
    for res in _buckets(stacks["dev"]):
        assert not res.options["protect"], "dev stays easy to tear down"


def _bucket_keys(capture: Capture) -> set[str]:
    sse_type = (
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    return {
        linked(capture, sse_type, b).inputs["rules"][0]["applyServerSideEncryptionByDefault"][
            "kmsMasterKeyId"
        ]
        for b in _data_buckets(capture)
    }


def test_prod_gives_each_bucket_its_own_key_and_dev_shares_one_platform_key(stacks):
    assert len(_bucket_keys(stacks["prod"])) == len(DATA_BUCKETS)
    (dev_key,) = _bucket_keys(stacks["dev"])
    (platform_key,) = [k for k in stacks["dev"].by_type("aws:kms/key:Key")]
    assert dev_key == f"arn:aws:kms:us-east-1:123456789012:{platform_key.name}"


def test_physical_names_carry_project_and_environment_so_stacks_never_collide(stacks):
    names = {env: {b.inputs["bucket"] for b in _buckets(c)} for env, c in stacks.items()}
    assert names["dev"].isdisjoint(names["prod"]) and names["dev"].isdisjoint(names["staging"])
    assert "mlops-prod-raw-123456789012" in names["prod"]


def test_two_lakes_in_one_stack_do_not_collide_on_logical_names():
    def two() -> None:
        for prefix in ("mlops-dev", "other-dev"):
            DataLake(f"{prefix}-lake", DataLakeArgs(prefix, "123456789012", "us-east-1"))

    capture = resolved(two)
    urns = [r.urn for r in capture.resources]
    assert len(urns) == len(set(urns))


def test_passing_a_platform_key_and_asking_for_one_key_per_bucket_is_rejected():
    import pulumi_aws as aws

    def both() -> None:
        key = aws.kms.Key("k")
        DataLake(
            "lake", DataLakeArgs("mlops-dev", "1", "us-east-1", kms_key=key, key_per_bucket=True)
        )

    with pytest.raises(ValueError, match="kms_key and key_per_bucket=True were both given"):
        resolved(both)


def test_a_bucket_without_a_kms_key_needs_the_explicit_opt_out():
    def plain() -> None:
        SecureBucket("b", SecureBucketArgs(bucket_name="b", disable_access_logging=True))

    with pytest.raises(ValueError, match="allow_s3_managed_encryption=True"):
        resolved(plain)


def test_a_bucket_without_access_logging_needs_the_explicit_opt_out():
    import pulumi_aws as aws

    def unlogged() -> None:
        SecureBucket("b", SecureBucketArgs(bucket_name="b", kms_key=aws.kms.Key("k")))

    with pytest.raises(ValueError, match="disable_access_logging=True"):
        resolved(unlogged)


def test_every_taggable_resource_carries_name_and_platform_tags(stacks):
    for res in stacks["staging"].resources:
        if "tags" in res.inputs:
            tags = res.inputs["tags"]
            assert tags["Name"] == res.name
            assert tags["Environment"] == "staging" and tags["Project"] == "mlops"
            assert {"Owner", "CostCenter", "ManagedBy"} <= set(tags)
