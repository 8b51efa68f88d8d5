"""The deploy handler as a plain function against moto.

moto 5.2.5 does not implement SageMaker's UpdateEndpoint (infra.local.moto_extensions adds it,
as the embedded cloud does), and it stores neither
`EnableNetworkIsolation` on models nor any `DeploymentConfig`. So the `moto_update_endpoint`
fixture teaches moto the missing operation (switch the endpoint to the new config, record the
request), and `requests` records every SageMaker request as botocore validated it against the
real API model. The handler itself runs unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.local import moto_extensions
from ml_code.handlers import deploy

REGION = "us-east-1"
GROUP = "mlops-dev-recsys"
ENDPOINT = "mlops-dev-recsys"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = "arn:aws:iam::123456789012:role/mlops-dev-recsys-endpoint"
KEY = "arn:aws:kms:us-east-1:123456789012:key/capture"
ROLLBACK_ALARMS = ["mlops-dev-recsys-errors", "mlops-dev-recsys-latency"]
RESOURCE_ID = f"endpoint/{ENDPOINT}/variant/AllTraffic"

TEMPLATE: dict[str, Any] = {
    "ModelPackageGroupName": GROUP,
    "EndpointName": ENDPOINT,
    "ExecutionRoleArn": ROLE,
    "EnableNetworkIsolation": True,
    "ProductionVariant": {
        "VariantName": "AllTraffic",
        "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1,
        "InitialVariantWeight": 1.0,
    },
    "KmsKeyId": KEY,
    "DataCaptureConfig": {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": f"s3://mlops-dev-capture-123456789012/capture/{ENDPOINT}",
        "KmsKeyId": KEY,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": ["text/csv"],
            "JsonContentTypes": ["application/json"],
        },
    },
    "DeploymentConfig": {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 300,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
            },
            "TerminationWaitInSeconds": 600,
            "MaximumExecutionTimeoutInSeconds": 3600,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in ROLLBACK_ALARMS]},
    },
    "AutoScaling": {
        "MinCapacity": 1,
        "MaxCapacity": 2,
        "PolicyName": f"{ENDPOINT}-invocations-per-instance",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 200.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
            "ScaleInCooldown": 300,
            "ScaleOutCooldown": 60,
        },
    },
    "Tags": [{"Key": "Name", "Value": ENDPOINT}, {"Key": "Environment", "Value": "dev"}],
}


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv(deploy.TEMPLATE_ENV, json.dumps(TEMPLATE))
    moto_extensions.install()
    with mock_aws():
        yield


@pytest.fixture
def requests(aws) -> list[tuple[str, dict[str, Any]]]:
    """Every SageMaker request the handler's clients send, as (operation, parameters)."""
    sent: list[tuple[str, dict[str, Any]]] = []
    boto3.setup_default_session(region_name=REGION)

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        sent.append((model.name, dict(params)))

    boto3.DEFAULT_SESSION.events.register("before-parameter-build.sagemaker", record)
    yield sent
    boto3.DEFAULT_SESSION = None


def _sent(requests: list[tuple[str, dict[str, Any]]], operation: str) -> list[dict[str, Any]]:
    return [params for name, params in requests if name == operation]


def _package(status: str = "Approved", group: str = GROUP) -> str:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    groups = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
    if group not in {g["ModelPackageGroupName"] for g in groups}:
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
    version = (
        len(sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"])
        + 1
    )
    return sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [
                {
                    "Image": IMAGE,
                    "ModelDataUrl": f"s3://mlops-dev-artifacts-123456789012/models/recsys/v{version}/"
                    "model.tar.gz",
                }
            ],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]


def _event(package_arn: str, status: str = "Approved", group: str = GROUP) -> dict[str, Any]:
    return {
        "source": "aws.sagemaker",
        "detail-type": deploy.APPROVAL_DETAIL_TYPE,
        "detail": {
            "ModelPackageGroupName": group,
            "ModelPackageArn": package_arn,
            "ModelApprovalStatus": status,
        },
    }


def _live_config() -> str:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    return sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]


def test_first_approval_creates_the_endpoint_from_the_approved_package(requests):
    result = deploy.handler(_event(_package()), None)

    assert result["action"] == "created" and result["version"] == 1
    assert _live_config() == f"{ENDPOINT}-v1"
    (model,) = _sent(requests, "CreateModel")
    assert model["ExecutionRoleArn"] == ROLE
    assert model["EnableNetworkIsolation"] is True
    assert model["PrimaryContainer"]["Image"] == IMAGE
    assert model["PrimaryContainer"]["ModelDataUrl"].endswith("/v1/model.tar.gz")
    assert model["PrimaryContainer"]["Environment"] == {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    }


def test_the_endpoint_config_captures_input_and_output_with_the_capture_key(requests):
    deploy.handler(_event(_package()), None)

    sagemaker = boto3.client("sagemaker", region_name=REGION)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=f"{ENDPOINT}-v1")
    assert config["DataCaptureConfig"]["EnableCapture"] is True
    assert config["DataCaptureConfig"]["KmsKeyId"] == KEY
    assert {o["CaptureMode"] for o in config["DataCaptureConfig"]["CaptureOptions"]} == {
        "Input",
        "Output",
    }
    (sent,) = _sent(requests, "CreateEndpointConfig")
    assert sent["KmsKeyId"] == KEY, "the endpoint's volumes are encrypted with the platform key"
    assert sent["ProductionVariants"][0]["ModelName"] == f"{ENDPOINT}-v1"


def test_first_deploy_registers_autoscaling_on_invocations_per_instance(requests):
    deploy.handler(_event(_package()), None)

    scaling = boto3.client("application-autoscaling", region_name=REGION)
    (target,) = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert target["ResourceId"] == RESOURCE_ID
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 2)
    (policy,) = scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert config["TargetValue"] == 200.0
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )


def test_second_approval_updates_the_endpoint_blue_green_with_rollback_alarms(requests):
    deploy.handler(_event(_package()), None)
    result = deploy.handler(_event(_package()), None)

    assert result["action"] == "updated" and result["version"] == 2
    assert _live_config() == f"{ENDPOINT}-v2"
    (update,) = _sent(requests, "UpdateEndpoint")
    assert update["EndpointConfigName"] == f"{ENDPOINT}-v2"
    assert update["DeploymentConfig"] == TEMPLATE["DeploymentConfig"]
    assert update["RetainAllVariantProperties"] is True, "keep the autoscaler's instance count"
    alarms = update["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert [a["AlarmName"] for a in alarms] == ROLLBACK_ALARMS


def test_the_same_approval_delivered_twice_deploys_once(requests):
    deploy.handler(_event(_package()), None)
    second = _event(_package())
    deploy.handler(second, None)
    repeat = deploy.handler(second, None)

    assert repeat["action"] == "none" and repeat["reason"] == "version already live"
    assert len(_sent(requests, "UpdateEndpoint")) == 1
    assert len(_sent(requests, "CreateModel")) == 2
    assert _live_config() == f"{ENDPOINT}-v2"


def test_a_rejected_package_changes_nothing(requests):
    arn = _package(status="Rejected")
    result = deploy.handler(_event(arn, status="Rejected"), None)

    assert result["action"] == "ignored"
    assert [name for name, _ in requests if not name.startswith(("Describe", "List"))] == [
        "CreateModelPackageGroup",
        "CreateModelPackage",
    ]


def test_an_approval_in_another_group_is_ignored(requests):
    arn = _package(group="mlops-dev-other")
    result = deploy.handler(_event(arn, group="mlops-dev-other"), None)

    assert result["action"] == "ignored" and "mlops-dev-other" in result["reason"]
    assert not _sent(requests, "CreateModel")


def test_a_stale_approval_of_a_package_rejected_since_is_ignored(requests):
    arn = _package(status="Rejected")
    result = deploy.handler(_event(arn, status="Approved"), None)

    assert result["action"] == "ignored" and "no longer approved" in result["reason"]
    assert not _sent(requests, "CreateEndpoint")


def test_a_change_of_instance_type_removes_scaling_before_the_update(requests, monkeypatch):
    deploy.handler(_event(_package()), None)
    bigger = json.loads(json.dumps(TEMPLATE))
    bigger["ProductionVariant"]["InstanceType"] = "ml.c5.xlarge"
    monkeypatch.setenv(deploy.TEMPLATE_ENV, json.dumps(bigger))
    deploy.handler(_event(_package()), None)

    (update,) = _sent(requests, "UpdateEndpoint")
    assert update["RetainAllVariantProperties"] is False
    scaling = boto3.client("application-autoscaling", region_name=REGION)
    (target,) = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert target["ResourceId"] == RESOURCE_ID, "scaling is re-applied once in service"


def test_endpoint_in_service_event_applies_scaling_only_for_this_endpoint(aws):
    other = deploy.handler(
        {
            "detail-type": deploy.ENDPOINT_DETAIL_TYPE,
            "detail": {"EndpointName": "someone-else", "EndpointStatus": "IN_SERVICE"},
        },
        None,
    )
    ours = deploy.handler(
        {
            "detail-type": deploy.ENDPOINT_DETAIL_TYPE,
            "detail": {"EndpointName": ENDPOINT, "EndpointStatus": "IN_SERVICE"},
        },
        None,
    )

    assert other["action"] == "ignored"
    assert ours == {"action": "scaled", "endpoint": ENDPOINT, "scaling": "applied"}


def test_code_fetched_from_s3_is_refused_under_network_isolation(aws):
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [
                {
                    "Image": IMAGE,
                    "ModelDataUrl": "s3://b/model.tar.gz",
                    "Environment": {"SAGEMAKER_SUBMIT_DIRECTORY": "s3://b/code.tar.gz"},
                }
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]

    with pytest.raises(ValueError, match="cannot download"):
        deploy.handler(_event(arn), None)


def test_the_template_is_read_from_the_ssm_parameter_the_component_names(aws, monkeypatch):
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/mlops-dev/recsys/endpoint-template", Value=json.dumps(TEMPLATE), Type="String"
    )
    monkeypatch.delenv(deploy.TEMPLATE_ENV)
    monkeypatch.setenv(deploy.TEMPLATE_PARAMETER_ENV, "/mlops-dev/recsys/endpoint-template")

    assert deploy.load_template() == TEMPLATE
