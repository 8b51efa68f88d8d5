"""Hand-made plan documents in the shape `infra.plan.document` writes, for provisioning tests.

They hold the resource types landing next (roles, pipelines, alarms, rules, functions) before
the real stacks declare them, with unknowns where a preview has them.
"""

from __future__ import annotations

import json
from typing import Any

STACK = "local"
ACCOUNT = "123456789012"
REGION = "us-east-1"
UNKNOWN = {"$unknown": True}


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::mlops::{type_}::{name}"


def resource(
    type_: str,
    name: str,
    inputs: dict[str, Any],
    property_dependencies: dict[str, list[str]] | None = None,
    custom: bool = True,
) -> dict[str, Any]:
    deps = property_dependencies or {}
    return {
        "urn": urn(type_, name),
        "type": type_,
        "name": name,
        "parent": None,
        "custom": custom,
        "inputs": inputs,
        "propertyDependencies": {key: deps.get(key, []) for key in inputs} | deps,
        "dependencies": sorted({u for urns in deps.values() for u in urns}),
        "options": {},
    }


def plan(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "formatVersion": 1,
        "project": "mlops",
        "stack": STACK,
        "config": {"aws:region": REGION},
        "resources": sorted(resources, key=lambda r: r["urn"]),
        "outputs": {},
    }


KEY = urn("aws:kms/key:Key", "key")
BUCKET = urn("aws:s3/bucket:Bucket", "raw")
ROLE = urn("aws:iam/role:Role", "pipeline-role")
RULE = urn("aws:cloudwatch/eventRule:EventRule", "drift-rule")
FUNCTION = urn("aws:lambda/function:Function", "retrain")
BUCKET_NAME = f"mlops-local-raw-{ACCOUNT}"
FUNCTION_NAME = "mlops-local-retrain"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION_NAME}"
PIPELINE_DEFINITION = json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": []})
DRIFT_PATTERN = json.dumps(
    {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": ["mlops-local-drift"], "state": {"value": ["ALARM"]}},
    }
)


def platform_plan() -> dict[str, Any]:
    """One of each type the kit provisions, wired as the components wire them."""
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sagemaker.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    return plan(
        resource("mlops:platform:MlPlatform", "mlops-local", {}, custom=False),
        resource(
            "aws:kms/key:Key",
            "key",
            {
                "description": "platform key",
                "enableKeyRotation": True,
                "deletionWindowInDays": 30.0,
            },
        ),
        resource(
            "aws:kms/alias:Alias",
            "key-alias",
            {"name": "alias/mlops-local-key", "targetKeyId": UNKNOWN},
            {"targetKeyId": [KEY]},
        ),
        resource("aws:s3/bucket:Bucket", "raw", {"bucket": BUCKET_NAME, "tags": {"Name": "raw"}}),
        resource(
            "aws:s3/bucketVersioning:BucketVersioning",
            "raw-versioning",
            {"bucket": UNKNOWN, "versioningConfiguration": {"status": "Enabled"}},
            {"bucket": [BUCKET]},
        ),
        resource(
            "aws:s3/bucketServerSideEncryptionConfiguration:"
            "BucketServerSideEncryptionConfiguration",
            "raw-encryption",
            {
                "bucket": UNKNOWN,
                "rules": [
                    {
                        "applyServerSideEncryptionByDefault": {
                            "kmsMasterKeyId": UNKNOWN,
                            "sseAlgorithm": "aws:kms",
                        },
                        "bucketKeyEnabled": True,
                    }
                ],
            },
            {"bucket": [BUCKET], "rules": [KEY]},
        ),
        resource(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            "raw-pab",
            {
                "bucket": UNKNOWN,
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
            {"bucket": [BUCKET]},
        ),
        resource(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            "raw-lifecycle",
            {"bucket": UNKNOWN, "rules": []},
            {"bucket": [BUCKET]},
        ),
        resource(
            "aws:sns/topic:Topic",
            "alarms",
            {"name": "mlops-local-alarms", "kmsMasterKeyId": UNKNOWN},
            {"kmsMasterKeyId": [KEY]},
        ),
        resource(
            "aws:iam/role:Role",
            "pipeline-role",
            {"name": "mlops-local-pipeline", "assumeRolePolicy": trust},
        ),
        resource(
            "aws:iam/rolePolicy:RolePolicy",
            "pipeline-role-policy",
            {
                "name": "read-raw",
                "role": UNKNOWN,
                "policy": json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "s3:GetObject",
                                "Resource": f"arn:aws:s3:::{BUCKET_NAME}/*",
                            }
                        ],
                    }
                ),
            },
            {"role": [ROLE]},
        ),
        resource(
            "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
            "registry",
            {"modelPackageGroupName": "mlops-local-recommender"},
        ),
        resource(
            "aws:sagemaker/pipeline:Pipeline",
            "pipeline",
            {
                "pipelineName": "mlops-local-recommender-training",
                "pipelineDisplayName": "recommender-training",
                "pipelineDefinition": PIPELINE_DEFINITION,
                "roleArn": UNKNOWN,
            },
            {"roleArn": [ROLE]},
        ),
        resource(
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            "drift",
            {
                "name": "mlops-local-drift",
                "namespace": "MLOps/Model",
                "metricName": "FeatureDriftMaxPsi",
                "dimensions": {"Model": "recommender"},
                "statistic": "Maximum",
                "period": 86400.0,
                "evaluationPeriods": 1.0,
                "datapointsToAlarm": 1.0,
                "threshold": 0.2,
                "comparisonOperator": "GreaterThanThreshold",
                "treatMissingData": "notBreaching",
                "alarmActions": [f"arn:aws:sns:{REGION}:{ACCOUNT}:mlops-local-alarms"],
            },
        ),
        resource(
            "aws:lambda/function:Function",
            "retrain",
            {
                "name": FUNCTION_NAME,
                "handler": "tests.local.recording_handler.handler",
                "environment": {"variables": {"PIPELINE_NAME": "mlops-local-recommender"}},
            },
        ),
        resource(
            "aws:cloudwatch/eventRule:EventRule",
            "drift-rule",
            {"name": "mlops-local-drift-retrain", "eventPattern": DRIFT_PATTERN},
        ),
        resource(
            "aws:lambda/permission:Permission",
            "drift-permission",
            {
                "action": "lambda:InvokeFunction",
                "function": UNKNOWN,
                "principal": "events.amazonaws.com",
            },
            {"function": [FUNCTION]},
        ),
        resource(
            "aws:cloudwatch/eventTarget:EventTarget",
            "drift-target",
            {"rule": UNKNOWN, "arn": UNKNOWN},
            {"rule": [RULE], "arn": [FUNCTION]},
        ),
        resource(
            "aws:ssm/parameter:Parameter",
            "template",
            {"name": "/mlops-local/recommender/endpoint-template", "type": "String", "value": "{}"},
        ),
        resource(
            "aws:ssm/parameter:Parameter",
            "webhook",
            {
                "name": "/mlops-local/webhook",
                "type": "SecureString",
                "value": {"$secret": "sha256:00"},
            },
        ),
        resource(
            "aws:cloudwatch/logGroup:LogGroup",
            "retrain-logs",
            {"name": f"/aws/lambda/{FUNCTION_NAME}", "retentionInDays": 14.0, "kmsKeyId": UNKNOWN},
            {"kmsKeyId": [KEY]},
        ),
        resource(
            "aws:cloudwatch/dashboard:Dashboard",
            "dashboard",
            {"dashboardName": "mlops-local", "dashboardBody": "{}"},
        ),
        resource("aws:ec2/vpc:Vpc", "vpc", {"cidrBlock": "10.0.0.0/16"}),
    )
