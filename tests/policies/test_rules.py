"""IAM, SageMaker, monitoring, tagging, cost and stack rules: one passing stack, then one
broken field per condition, each failing exactly its rule."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from infra.plan.engine import Resource
from tests.policies.helpers import UNKNOWN, doc, found, levels, res, run, tagged

ENV = "prod"
KEY = "arn:aws:kms:us-east-1:123456789012:alias/mlops"
TRAIN = {
    "ResourceConfig": {"InstanceCount": 2, "InstanceType": "ml.m5.xlarge", "VolumeKmsKeyId": KEY},
    "OutputDataConfig": {"KmsKeyId": KEY},
    "EnableNetworkIsolation": True,
    "EnableInterContainerTrafficEncryption": True,
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
}
PROCESS = {
    "ProcessingResources": {
        "ClusterConfig": {
            "InstanceCount": 1,
            "InstanceType": {"Get": "Parameters.Type"},
            "VolumeKmsKeyId": KEY,
        }
    },
    "ProcessingOutputConfig": {"Outputs": [{"OutputName": "o"}], "KmsKeyId": KEY},
    "NetworkConfig": {"EnableNetworkIsolation": True},
}


def definition(train: dict[str, Any], process: dict[str, Any]) -> str:
    return json.dumps(
        {
            "Parameters": [{"Name": "Type", "DefaultValue": "ml.m5.large"}],
            "Steps": [
                {"Name": "features", "Type": "Processing", "Arguments": process},
                {
                    "Name": "gate",
                    "Type": "Condition",
                    "Arguments": {
                        "IfSteps": [{"Name": "train", "Type": "Training", "Arguments": train}]
                    },
                },
            ],
        }
    )


def stack() -> dict[str, Resource]:
    t = tagged(ENV)
    r: dict[str, Resource] = {}
    r["role"] = res(
        "aws:iam/role:Role",
        "role",
        {
            "assumeRolePolicy": doc(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sagemaker.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ),
            "inlinePolicies": [
                {
                    "name": "pass",
                    "policy": doc(
                        {
                            "Effect": "Allow",
                            "Action": "iam:PassRole",
                            "Resource": "arn:aws:iam::1:role/x",
                        }
                    ),
                }
            ],
            "tags": t,
        },
    )
    r["role-policy"] = res(
        "aws:iam/rolePolicy:RolePolicy",
        "role-policy",
        {
            "role": "role",
            "policy": doc({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}),
        },
    )
    r["attach"] = res(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "attach",
        {"role": "role", "policyArn": "arn:aws:iam::aws:policy/CloudWatchReadOnlyAccess"},
    )
    r["pipeline"] = res(
        "aws:sagemaker/pipeline:Pipeline",
        "pipeline",
        {
            "pipelineName": "mlops-prod-recommender-training",
            "pipelineDefinition": definition(TRAIN, PROCESS),
            "tags": t,
        },
    )
    r["group"] = res(
        "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
        "group",
        {"modelPackageGroupName": "mlops-prod-recommender", "tags": t},
    )
    r["group-policy"] = res(
        "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy",
        "group-policy",
        {"modelPackageGroupName": "mlops-prod-recommender", "resourcePolicy": doc()},
    )
    r["model"] = res(
        "aws:sagemaker/model:Model",
        "model",
        {"name": "mlops-prod-recommender", "enableNetworkIsolation": True, "tags": t},
    )
    r["config"] = res(
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "config",
        {
            "name": "mlops-prod-recommender-template",
            "kmsKeyArn": KEY,
            "productionVariants": [
                {"variantName": "live", "instanceType": "ml.c5.xlarge", "initialInstanceCount": 2.0}
            ],
            "dataCaptureConfig": {
                "enableCapture": True,
                "kmsKeyId": UNKNOWN,
                "initialSamplingPercentage": 20.0,
                "destinationS3Uri": "s3://capture",
            },
            "tags": tagged(ENV, EndpointName="mlops-prod-recommender"),
        },
    )
    r["scaling"] = res(
        "aws:appautoscaling/target:Target",
        "scaling",
        {
            "serviceNamespace": "sagemaker",
            "minCapacity": 2.0,
            "maxCapacity": 6.0,
            "resourceId": "endpoint/mlops-prod-recommender/variant/live",
            "tags": t,
        },
    )
    r["feature-group"] = res(
        "aws:sagemaker/featureGroup:FeatureGroup",
        "feature-group",
        {
            "onlineStoreConfig": {"enableOnlineStore": True, "securityConfig": {"kmsKeyId": KEY}},
            "offlineStoreConfig": {"s3StorageConfig": {"kmsKeyId": KEY, "s3Uri": "s3://x"}},
            "tags": t,
        },
    )
    r["topic"] = res("aws:sns/topic:Topic", "topic", {"kmsMasterKeyId": KEY, "tags": t})
    for name, metric in [("errors", "Invocation5XXErrors"), ("latency", "ModelLatency")]:
        r[name] = res(
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            name,
            {
                "name": f"mlops-prod-recommender-{name}",
                "metricName": metric,
                "namespace": "AWS/SageMaker",
                "dimensions": {"EndpointName": "mlops-prod-recommender"},
                "alarmActions": [UNKNOWN],
                "tags": t,
            },
            {"alarmActions": [r["topic"].urn]},
        )
    for name, metric in [("drift", "feature_drift"), ("quality", "accuracy")]:
        r[name] = res(
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            name,
            {
                "name": f"mlops-prod-recommender-{name}",
                "metricName": metric,
                "namespace": "mlops/monitoring",
                "dimensions": {"Model": "mlops-prod-recommender"},
                "alarmActions": [UNKNOWN],
                "tags": t,
            },
        )
    r["retrain-rule"] = res(
        "aws:cloudwatch/eventRule:EventRule",
        "retrain-rule",
        {
            "name": "mlops-prod-retrain",
            "tags": t,
            "eventPattern": json.dumps(
                {
                    "detail": {
                        "alarmName": [
                            "mlops-prod-recommender-drift",
                            "mlops-prod-recommender-quality",
                        ]
                    }
                }
            ),
        },
    )
    r["retrain-fn"] = res(
        "aws:lambda/function:Function",
        "retrain-fn",
        {
            "name": "mlops-prod-retrain",
            "environment": {"variables": {"PIPELINE": "mlops-prod-recommender-training"}},
            "tags": t,
        },
    )
    r["retrain-target"] = res(
        "aws:cloudwatch/eventTarget:EventTarget",
        "retrain-target",
        {"rule": "mlops-prod-retrain", "arn": UNKNOWN},
        {"arn": [r["retrain-fn"].urn]},
    )
    r["monitor"] = res(
        "aws:scheduler/schedule:Schedule",
        "monitor",
        {
            "scheduleExpression": "rate(1 hour)",
            "target": {
                "arn": "arn:lambda",
                "input": json.dumps({"endpoint": "mlops-prod-recommender"}),
            },
        },
    )
    r["logs"] = res(
        "aws:cloudwatch/logGroup:LogGroup", "logs", {"retentionInDays": 90.0, "tags": t}
    )
    return r


def test_the_ml_stack_passes_every_rule() -> None:
    assert [
        (v.policy_name, v.message) for v in run(list(stack().values()), env=ENV).violations
    ] == []


def _set(name: str, path: str, value: Any) -> Callable[[dict[str, Resource]], None]:
    def breaks(r: dict[str, Resource]) -> None:
        target: Any = r[name].inputs
        *head, last = path.split(".")
        for step in head:
            target = target[int(step)] if step.isdigit() else target[step]
        if value is None:
            del target[int(last) if last.isdigit() else last]
        else:
            target[int(last) if last.isdigit() else last] = value

    return breaks


def _pipeline(
    train: dict[str, Any], process: dict[str, Any]
) -> Callable[[dict[str, Resource]], None]:
    return _set(
        "pipeline", "pipelineDefinition", definition({**TRAIN, **train}, {**PROCESS, **process})
    )


def _drop(name: str) -> Callable[[dict[str, Resource]], None]:
    return lambda r: r.pop(name)


CASES: dict[str, tuple[str, Callable[[dict[str, Resource]], None]]] = {
    "inline-star-star": (
        "iam-no-wildcard-admin",
        _set(
            "role",
            "inlinePolicies.0.policy",
            doc({"Effect": "Allow", "Action": "*", "Resource": "*"}),
        ),
    ),
    "role-policy-star-star": (
        "iam-no-wildcard-admin",
        _set(
            "role-policy", "policy", doc({"Effect": "Allow", "Action": ["*:*"], "Resource": ["*"]})
        ),
    ),
    "full-access-attached": (
        "iam-no-aws-managed-admin-policies",
        _set("attach", "policyArn", "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"),
    ),
    "admin-in-managed-arns": (
        "iam-no-aws-managed-admin-policies",
        _set("role", "managedPolicyArns", ["arn:aws:iam::aws:policy/AdministratorAccess"]),
    ),
    "trust-unexpected-service": (
        "iam-trust-expected-services",
        _set(
            "role",
            "assumeRolePolicy",
            doc(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ec2.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ),
        ),
    ),
    "trust-account": (
        "iam-trust-expected-services",
        _set(
            "role",
            "assumeRolePolicy",
            doc({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}),
        ),
    ),
    "pass-role-star": (
        "iam-no-wildcard-pass-role",
        _set(
            "role",
            "inlinePolicies.0.policy",
            doc({"Effect": "Allow", "Action": "iam:Pass*", "Resource": "*"}),
        ),
    ),
    "training-volume-no-kms": (
        "sagemaker-job-volume-kms",
        _pipeline({"ResourceConfig": {**TRAIN["ResourceConfig"], "VolumeKmsKeyId": ""}}, {}),
    ),
    "processing-volume-no-kms": (
        "sagemaker-job-volume-kms",
        _pipeline(
            {},
            {
                "ProcessingResources": {
                    "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large"}
                }
            },
        ),
    ),
    "training-output-no-kms": ("sagemaker-job-output-kms", _pipeline({"OutputDataConfig": {}}, {})),
    "processing-output-no-kms": (
        "sagemaker-job-output-kms",
        _pipeline({}, {"ProcessingOutputConfig": {"Outputs": [{"OutputName": "o"}]}}),
    ),
    "training-open-network": (
        "sagemaker-job-network-isolation",
        _pipeline({"EnableNetworkIsolation": False}, {}),
    ),
    "processing-open-network": (
        "sagemaker-job-network-isolation",
        _pipeline({}, {"NetworkConfig": {}}),
    ),
    "multi-instance-plain-traffic": (
        "sagemaker-job-inter-container-encryption",
        _pipeline({"EnableInterContainerTrafficEncryption": False}, {}),
    ),
    "no-max-runtime": ("sagemaker-training-max-runtime", _pipeline({"StoppingCondition": {}}, {})),
    "max-runtime-too-long": (
        "sagemaker-training-max-runtime",
        _pipeline({"StoppingCondition": {"MaxRuntimeInSeconds": 10**6}}, {}),
    ),
    "job-type-not-allowed": (
        "sagemaker-instance-type-allowlist",
        _pipeline(
            {"ResourceConfig": {**TRAIN["ResourceConfig"], "InstanceType": "ml.p4d.24xlarge"}}, {}
        ),
    ),
    "endpoint-type-not-allowed": (
        "sagemaker-instance-type-allowlist",
        _set("config", "productionVariants.0.instanceType", "ml.m5.24xlarge"),
    ),
    "no-data-capture": (
        "sagemaker-endpoint-data-capture",
        _set("config", "dataCaptureConfig", None),
    ),
    "capture-disabled": (
        "sagemaker-endpoint-data-capture",
        _set("config", "dataCaptureConfig.enableCapture", False),
    ),
    "capture-no-kms": (
        "sagemaker-endpoint-data-capture",
        _set("config", "dataCaptureConfig.kmsKeyId", None),
    ),
    "endpoint-no-kms": ("sagemaker-endpoint-kms", _set("config", "kmsKeyArn", None)),
    "one-prod-instance": (
        "sagemaker-prod-endpoint-min-instances",
        _set("config", "productionVariants.0.initialInstanceCount", 1.0),
    ),
    "scaling-min-one": (
        "sagemaker-prod-endpoint-min-instances",
        _set("scaling", "minCapacity", 1.0),
    ),
    "online-store-no-kms": (
        "sagemaker-feature-group-encrypted",
        _set("feature-group", "onlineStoreConfig.securityConfig", None),
    ),
    "offline-store-no-kms": (
        "sagemaker-feature-group-encrypted",
        _set("feature-group", "offlineStoreConfig.s3StorageConfig.kmsKeyId", None),
    ),
    "model-open-network": (
        "sagemaker-model-network-isolation",
        _set("model", "enableNetworkIsolation", False),
    ),
    "group-without-policy": ("sagemaker-model-package-group-policy", _drop("group-policy")),
    "no-error-alarm": ("monitoring-endpoint-alarms", _drop("errors")),
    "no-latency-alarm": ("monitoring-endpoint-alarms", _drop("latency")),
    "no-drift-alarm": ("monitoring-model-drift-quality-alarms", _drop("drift")),
    "quality-alarm-not-wired": (
        "monitoring-model-drift-quality-alarms",
        _set(
            "retrain-rule",
            "eventPattern",
            json.dumps({"detail": {"alarmName": ["mlops-prod-recommender-drift"]}}),
        ),
    ),
    "alarm-without-action": ("monitoring-alarm-has-action", _set("drift", "alarmActions", [])),
    "alarm-actions-disabled": (
        "monitoring-alarm-has-action",
        _set("drift", "actionsEnabled", False),
    ),
    "topic-unencrypted": ("monitoring-topic-encrypted", _set("topic", "kmsMasterKeyId", None)),
    "missing-owner-tag": ("tagging-required-tags", _set("logs", "tags.Owner", None)),
    "missing-name-tag": ("tagging-required-tags", _set("topic", "tags.Name", None)),
    "wrong-environment-tag": (
        "tagging-environment-matches",
        _set("logs", "tags.Environment", "dev"),
    ),
    "sampling-above-prod-bound": (
        "cost-capture-sampling-bounds",
        _set("config", "dataCaptureConfig.initialSamplingPercentage", 100.0),
    ),
    "no-log-retention": ("cost-log-retention", _set("logs", "retentionInDays", None)),
    "no-monitoring-schedule": ("stack-endpoint-monitoring-schedule", _drop("monitor")),
    "pipeline-without-trigger": (
        "stack-training-pipeline-trigger",
        _set("retrain-fn", "environment", {"variables": {}}),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_field_fails_exactly_its_rule(case: str) -> None:
    policy, breaks = CASES[case]
    resources = stack()
    breaks(resources)
    report = run(list(resources.values()), env=ENV)
    # An Allow of '*' also allows iam:PassRole on '*': both rules fire, by design.
    also = {"iam-no-wildcard-pass-role"} if policy == "iam-no-wildcard-admin" else set()
    assert {v.policy_name for v in report.violations} == {policy, *also}, [
        v.message for v in report.violations
    ]
    assert levels(report, policy) == {"mandatory"}


def test_dev_endpoint_size_and_count_are_bounded_in_dev_only() -> None:
    config = res(
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "c",
        {
            "kmsKeyArn": KEY,
            "tags": tagged(),
            "productionVariants": [{"instanceType": "ml.m5.4xlarge", "initialInstanceCount": 3.0}],
        },
    )
    assert len(found(run([config], env="dev"), "cost-dev-endpoint-size")) == 2
    config.inputs["productionVariants"] = [
        {"instanceType": "ml.m5.xlarge", "initialInstanceCount": 1.0}
    ]
    assert found(run([config], env="dev"), "cost-dev-endpoint-size") == []


def test_data_capture_is_not_required_in_dev_but_advisory_rules_still_report() -> None:
    resources = stack()
    _set("config", "dataCaptureConfig", None)(resources)
    for r in resources.values():
        if "tags" in r.inputs:
            r.inputs["tags"]["Environment"] = "dev"
    r = run([resources["config"]], env="dev")
    assert found(r, "sagemaker-endpoint-data-capture") == []
    assert levels(r, "monitoring-endpoint-alarms") == {"advisory"}
