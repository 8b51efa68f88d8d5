"""Provisioning creates in the emulator what the plan declares, resolving preview unknowns."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.local.emulator import Emulator
from infra.local.provision import (
    COMPONENT_REASON,
    LAMBDA_REASON,
    SKIPPED_TYPES,
    UNMAPPED_REASON,
    ProvisionError,
    provision,
)
from infra.plan.runner import plan_stack
from tests.conftest import ROOT
from tests.local import plans


def test_bucket_is_versioned_and_encrypted_with_the_key_created_for_the_plans_key(
    cloud: Emulator,
) -> None:
    done = provision(plans.platform_plan(), cloud)
    s3, kms = cloud.client("s3"), cloud.client("kms")

    key = done.created[plans.KEY]
    encryption = s3.get_bucket_encryption(Bucket=plans.BUCKET_NAME)
    default = encryption["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert default["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key.arn,
    }
    assert kms.describe_key(KeyId=key.arn)["KeyMetadata"]["KeyId"] == key.id
    assert kms.get_key_rotation_status(KeyId=key.id)["KeyRotationEnabled"] is True
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert aliases["alias/mlops-local-key"] == key.id
    assert s3.get_bucket_versioning(Bucket=plans.BUCKET_NAME)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=plans.BUCKET_NAME)
    assert all(block["PublicAccessBlockConfiguration"].values())


def test_references_resolve_to_the_resources_they_depend_on(cloud: Emulator) -> None:
    done = provision(plans.platform_plan(), cloud)
    role = done.created[plans.ROLE]

    pipeline = cloud.client("sagemaker").describe_pipeline(
        PipelineName="mlops-local-recommender-training"
    )
    assert pipeline["RoleArn"] == role.arn
    assert json.loads(pipeline["PipelineDefinition"]) == json.loads(plans.PIPELINE_DEFINITION)
    inline = cloud.client("iam").get_role_policy(RoleName=role.name, PolicyName="read-raw")
    assert inline["PolicyDocument"]["Statement"][0]["Action"] == "s3:GetObject"
    targets = cloud.client("events").list_targets_by_rule(Rule="mlops-local-drift-retrain")
    assert [t["Arn"] for t in targets["Targets"]] == [plans.FUNCTION_ARN]
    topic = cloud.client("sns").get_topic_attributes(
        TopicArn=f"arn:aws:sns:{plans.REGION}:{plans.ACCOUNT}:mlops-local-alarms"
    )
    assert topic["Attributes"]["KmsMasterKeyId"] == done.created[plans.KEY].arn
    group = cloud.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/")
    assert group["logGroups"][0]["kmsKeyId"] == done.created[plans.KEY].arn
    assert group["logGroups"][0]["retentionInDays"] == 14


def test_alarms_start_with_insufficient_data_as_in_cloudwatch(cloud: Emulator) -> None:
    provision(plans.platform_plan(), cloud)

    alarm = cloud.client("cloudwatch").describe_alarms(AlarmNames=["mlops-local-drift"])
    assert alarm["MetricAlarms"][0]["StateValue"] == "INSUFFICIENT_DATA"
    assert alarm["MetricAlarms"][0]["Dimensions"] == [{"Name": "Model", "Value": "recommender"}]
    assert alarm["MetricAlarms"][0]["Period"] == 86400


def test_every_resource_is_either_created_or_skipped_with_its_reason(cloud: Emulator) -> None:
    plan = plans.platform_plan()
    done = provision(plan, cloud)

    assert set(done.created) | set(done.skipped) == {r["urn"] for r in plan["resources"]}
    assert not set(done.created) & set(done.skipped)
    reasons = {s.type: s.reason for s in done.skipped.values()}
    assert reasons["aws:lambda/function:Function"] == LAMBDA_REASON
    assert reasons["mlops:platform:MlPlatform"] == COMPONENT_REASON
    assert reasons["aws:ec2/vpc:Vpc"] == UNMAPPED_REASON
    for skipped_type in (
        "aws:cloudwatch/dashboard:Dashboard",
        "aws:lambda/permission:Permission",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    ):
        assert reasons[skipped_type] == SKIPPED_TYPES[skipped_type]
    assert done.skipped[plans.FUNCTION].arn == plans.FUNCTION_ARN


def test_secrets_are_never_sent_and_are_recorded(cloud: Emulator) -> None:
    done = provision(plans.platform_plan(), cloud)

    webhook = plans.urn("aws:ssm/parameter:Parameter", "webhook")
    assert done.withheld_secrets == [f"{webhook}: value"]
    assert "secret" in done.skipped[webhook].reason
    names = [p["Name"] for p in cloud.client("ssm").describe_parameters()["Parameters"]]
    assert names == ["/mlops-local/recommender/endpoint-template"]


def test_an_unknown_without_a_dependency_to_resolve_it_names_resource_and_property(
    cloud: Emulator,
) -> None:
    plan = plans.platform_plan()
    encryption = next(r for r in plan["resources"] if r["name"] == "raw-encryption")
    encryption["propertyDependencies"]["rules"] = []

    with pytest.raises(ProvisionError) as raised:
        provision(plan, cloud)

    message = str(raised.value)
    assert encryption["urn"] in message
    assert "rules[0].applyServerSideEncryptionByDefault.kmsMasterKeyId" in message


def test_a_plan_for_another_region_is_refused(cloud: Emulator) -> None:
    plan: dict[str, Any] = plans.platform_plan() | {"config": {"aws:region": "eu-west-1"}}
    with pytest.raises(ProvisionError, match="eu-west-1"):
        provision(plan, cloud)


def test_dev_stack_plan_provisions_every_bucket_encrypted_with_the_platform_key(
    cloud: Emulator,
) -> None:
    result = plan_stack(ROOT, "dev")
    assert result.ok, result.error
    plan = result.doc
    assert plan is not None

    done = provision(plan, cloud)

    keys = [c for c in done.created.values() if c.type == "aws:kms/key:Key"]
    assert len(keys) >= 1
    key_by_urn = {k.urn: k.arn for k in keys}
    s3 = cloud.client("s3")
    sse_type = (
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    by_urn = {r["urn"]: r for r in plan["resources"]}
    buckets = [r for r in plan["resources"] if r["type"] == "aws:s3/bucket:Bucket"]
    assert buckets
    for bucket in buckets:
        name = bucket["inputs"]["bucket"]
        assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
        sse = next(
            r
            for r in plan["resources"]
            if r["type"] == sse_type and r["propertyDependencies"]["bucket"] == [bucket["urn"]]
        )
        applied = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]
        default = applied["Rules"][0]["ApplyServerSideEncryptionByDefault"]
        planned = sse["inputs"]["rules"][0]["applyServerSideEncryptionByDefault"]
        assert default["SSEAlgorithm"] == planned["sseAlgorithm"]
        if planned["sseAlgorithm"] == "aws:kms":
            (key_urn,) = [
                u
                for u in sse["propertyDependencies"]["rules"]
                if by_urn[u]["type"] == "aws:kms/key:Key"
            ]
            assert default["KMSMasterKeyID"] == key_by_urn[key_urn]
    assert set(done.created) | set(done.skipped) == set(by_urn)
