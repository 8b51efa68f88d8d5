"""InferenceEndpoint under mocks: what the deploy handler will build, and who may do what."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.components.inference_endpoint import InferenceEndpoint, InferenceEndpointArgs
from infra.components.model_alarms import ModelAlarms, ModelAlarmsArgs
from infra.components.platform_refs import PlatformRefs
from infra.plan.engine import Capture, Resource
from tests.infra.platform import (
    ACCOUNT,
    ARTIFACTS_KEY,
    CAPTURE_KEY,
    alias_of,
    platform_refs,
)
from tests.infra.resolved import resolved

ENDPOINT = "mlops-dev-recsys"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def _endpoint(environment: str = "dev", platform: PlatformRefs | None = None, **args: Any):
    platform = platform or platform_refs(environment)
    group = f"{platform.name_prefix}-recsys"
    args.setdefault("min_instances", 2 if environment == "prod" else 1)
    args.setdefault("max_instances", max(args["min_instances"], 2))
    return InferenceEndpoint(
        "recsys-endpoint",
        InferenceEndpointArgs(
            platform=platform, model_name="recsys", model_package_group_name=group, **args
        ),
    )


def _capture(environment: str = "dev", **args: Any) -> Capture:
    return resolved(lambda: _endpoint(environment, **args), environment)


def _template(capture: Capture) -> dict[str, Any]:
    (parameter,) = capture.by_type("aws:ssm/parameter:Parameter")
    assert parameter.inputs["type"] == "String"
    return json.loads(parameter.inputs["insecureValue"])


def _named(capture: Capture, type_: str, name: str) -> Resource:
    (found,) = [r for r in capture.by_type(type_) if r.name == name]
    return found


def _statements(capture: Capture, policy_name: str) -> dict[str, dict[str, Any]]:
    policy = _named(capture, ROLE_POLICY, policy_name)
    return {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}


@pytest.fixture(scope="module")
def dev() -> Capture:
    return _capture()


def test_pulumi_creates_no_model_or_endpoint_so_a_fresh_environment_deploys_cleanly(dev):
    sagemaker = [r.type for r in dev.resources if r.type.startswith("aws:sagemaker/")]
    assert sagemaker == []


def test_names_the_loop_relies_on_are_plain_strings_known_at_preview():
    names: dict[str, Any] = {}

    def program() -> None:
        endpoint = _endpoint()
        names.update(
            endpoint=endpoint.endpoint_name,
            parameter=endpoint.template_parameter_name,
            function=endpoint.deploy_function_name,
        )

    resolved(program)
    assert names == {
        "endpoint": ENDPOINT,
        "parameter": "/mlops-dev/recsys/endpoint-template",
        "function": "mlops-dev-recsys-endpoint-deploy",
    }


def test_template_captures_input_and_output_to_the_capture_bucket_with_its_key(dev):
    capture = _template(dev)["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["DestinationS3Uri"] == f"s3://mlops-dev-capture-{ACCOUNT}/capture/{ENDPOINT}"
    assert capture["KmsKeyId"] == alias_of(CAPTURE_KEY), "an alias ARN is known at preview"
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]
    assert capture["CaptureContentTypeHeader"] == {
        "CsvContentTypes": ["text/csv"],
        "JsonContentTypes": ["application/json"],
    }


def test_capture_sampling_follows_the_stack_setting():
    assert (
        _template(_capture(capture_sampling_percent=20))["DataCaptureConfig"][
            "InitialSamplingPercentage"
        ]
        == 20
    )


def test_template_encrypts_endpoint_volumes_and_isolates_the_model_from_the_network(dev):
    template = _template(dev)
    assert template["KmsKeyId"] == f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/platform"
    assert template["EnableNetworkIsolation"] is True
    assert "VpcConfig" not in template


def test_template_places_the_model_in_the_platform_subnets_when_they_are_set():
    platform = platform_refs(subnet_ids=("subnet-a", "subnet-b"), security_group_ids=("sg-1",))
    capture = resolved(lambda: _endpoint(platform=platform))
    assert _template(capture)["VpcConfig"] == {
        "Subnets": ["subnet-a", "subnet-b"],
        "SecurityGroupIds": ["sg-1"],
    }
    network = _statements(capture, "recsys-endpoint-execution-policy")[
        "ManageModelNetworkInterfaces"
    ]
    assert "arn:aws:ec2:us-east-1:123456789012:subnet/subnet-a" in network["Resource"]


def test_prod_endpoint_keeps_two_instances_across_zones():
    template = _template(_capture("prod", min_instances=2, max_instances=4))
    assert template["ProductionVariant"]["InitialInstanceCount"] == 2
    assert template["AutoScaling"]["MinCapacity"] == 2
    assert template["AutoScaling"]["MaxCapacity"] == 4
    with pytest.raises(ValueError, match="min_instances is 1 in prod"):
        _capture("prod", min_instances=1)


def test_autoscaling_tracks_invocations_per_instance_at_the_configured_target():
    scaling = _template(_capture(target_invocations_per_instance=350))["AutoScaling"]
    tracking = scaling["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 350.0
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }


@pytest.mark.parametrize(
    ("strategy", "routing"),
    [
        (
            "canary",
            {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 300,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
            },
        ),
        (
            "linear",
            {
                "Type": "LINEAR",
                "WaitIntervalInSeconds": 300,
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
            },
        ),
        ("all-at-once", {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300}),
    ],
)
def test_blue_green_traffic_shifting_follows_the_deployment_strategy(strategy, routing):
    policy = _template(_capture(deployment_strategy=strategy))["DeploymentConfig"][
        "BlueGreenUpdatePolicy"
    ]
    assert policy["TrafficRoutingConfiguration"] == routing
    assert policy["TerminationWaitInSeconds"] == 600
    assert policy["MaximumExecutionTimeoutInSeconds"] == 3600


def test_errors_and_latency_alarms_are_the_ones_that_roll_a_deployment_back():
    def program() -> None:
        platform = platform_refs()
        endpoint = _endpoint(platform=platform)
        ModelAlarms(
            "recsys-alarms",
            ModelAlarmsArgs(
                platform=platform,
                model_name="recsys",
                endpoint_name=endpoint.endpoint_name,
                variant_name=endpoint.variant_name,
            ),
        )

    capture = resolved(program)
    alarms = {
        r.inputs["tags"]["AlarmKind"]: r.inputs["name"]
        for r in capture.by_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    }
    rollback = _template(capture)["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert [a["AlarmName"] for a in rollback] == [alarms["errors"], alarms["latency"]]


def test_approval_rule_matches_only_this_groups_approved_events_and_targets_deploy(dev):
    rule = _named(dev, "aws:cloudwatch/eventRule:EventRule", "recsys-endpoint-approved-rule")
    assert json.loads(rule.inputs["eventPattern"]) == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {
            "ModelPackageGroupName": ["mlops-dev-recsys"],
            "ModelApprovalStatus": ["Approved"],
        },
    }
    target = _named(
        dev, "aws:cloudwatch/eventTarget:EventTarget", "recsys-endpoint-approved-target"
    )
    function = _named(dev, "aws:lambda/function:Function", "recsys-endpoint-deploy")
    assert target.inputs["rule"] == rule.inputs["name"]
    assert target.property_dependencies["arn"] == [function.urn]
    assert function.inputs["handler"] == "ml_code.handlers.deploy.handler"
    assert function.inputs["environment"]["variables"] == {
        "ENDPOINT_TEMPLATE_PARAMETER": "/mlops-dev/recsys/endpoint-template"
    }


def test_lambda_permissions_are_scoped_to_the_rule_arns(dev):
    permissions = {p.name: p for p in dev.by_type("aws:lambda/permission:Permission")}
    assert set(permissions) == {
        "recsys-endpoint-approved-invoke",
        "recsys-endpoint-in-service-invoke",
    }
    approved = permissions["recsys-endpoint-approved-invoke"].inputs
    assert approved["principal"] == "events.amazonaws.com"
    assert approved["action"] == "lambda:InvokeFunction"
    assert approved["sourceArn"] == f"arn:aws:events:us-east-1:{ACCOUNT}:rule/{ENDPOINT}-approved"
    assert approved["sourceAccount"] == ACCOUNT
    assert approved["function"] == "mlops-dev-recsys-endpoint-deploy"


def test_in_service_rule_matches_only_this_endpoint_becoming_in_service(dev):
    rule = _named(dev, "aws:cloudwatch/eventRule:EventRule", "recsys-endpoint-in-service-rule")
    assert json.loads(rule.inputs["eventPattern"])["detail"] == {
        "EndpointName": [ENDPOINT],
        "EndpointStatus": ["IN_SERVICE"],
    }


def test_execution_role_reads_only_model_artifacts_and_writes_only_its_capture_prefix(dev):
    role = _named(dev, "aws:iam/role:Role", "recsys-endpoint-execution-role")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": ["sagemaker.amazonaws.com"]
    }
    statements = _statements(dev, "recsys-endpoint-execution-policy")
    artifacts = f"arn:aws:s3:::mlops-dev-artifacts-{ACCOUNT}"
    assert statements["ReadModelArtifacts"]["Resource"] == [f"{artifacts}/models/recsys/*"]
    assert statements["DecryptModelArtifacts"]["Resource"] == [ARTIFACTS_KEY]
    assert statements["WriteCapturedTraffic"]["Resource"] == [
        f"arn:aws:s3:::mlops-dev-capture-{ACCOUNT}/capture/{ENDPOINT}/*"
    ]
    assert statements["EncryptCapturedTraffic"]["Resource"] == [CAPTURE_KEY]
    assert statements["PullServingImage"]["Resource"] == [
        "arn:aws:ecr:us-east-1:683313688378:repository/sagemaker-scikit-learn"
    ]
    wildcard = [s for s in statements.values() if "*" in s["Resource"]]
    assert wildcard == [statements["EcrLogin"]]
    assert statements["EcrLogin"]["Action"] == ["ecr:GetAuthorizationToken"]


def test_deploy_role_touches_only_this_endpoints_sagemaker_resources(dev):
    statements = _statements(dev, "recsys-endpoint-deploy-policy")
    sagemaker = [r for s in statements.values() for r in s["Resource"] if ":sagemaker:" in r]
    prefix = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:"
    assert set(sagemaker) == {
        f"{prefix}model-package/mlops-dev-recsys/*",
        f"{prefix}model/{ENDPOINT}-*",
        f"{prefix}endpoint-config/{ENDPOINT}-*",
        f"{prefix}endpoint/{ENDPOINT}",
    }
    assert statements["ReadTemplate"]["Resource"] == [
        f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/mlops-dev/recsys/endpoint-template"
    ]
    pass_role = statements["PassExecutionRoleToSageMaker"]
    assert pass_role["Action"] == ["iam:PassRole"]
    assert pass_role["Resource"] == [f"arn:aws:iam::{ACCOUNT}:role/{ENDPOINT}-endpoint"]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    wildcard = {sid for sid, s in statements.items() if "*" in s["Resource"]}
    assert wildcard == {"ScaleOwnVariant", "Tracing"}
    assert all(
        a.startswith("application-autoscaling:") for a in statements["ScaleOwnVariant"]["Action"]
    )


def test_no_role_attaches_a_managed_policy(dev):
    assert not dev.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    for role in dev.by_type("aws:iam/role:Role"):
        assert not role.inputs.get("managedPolicyArns")


def test_every_taggable_resource_carries_name_and_platform_tags(dev):
    tagged = [r for r in dev.resources if "tags" in r.inputs]
    assert {r.type for r in tagged} >= {
        "aws:iam/role:Role",
        "aws:ssm/parameter:Parameter",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:lambda/function:Function",
        "aws:cloudwatch/logGroup:LogGroup",
    }
    for res in tagged:
        assert res.inputs["tags"]["Name"] == res.name
        assert res.inputs["tags"]["Environment"] == "dev"
    template_tags = {t["Key"]: t["Value"] for t in _template(dev)["Tags"]}
    assert template_tags["Name"] == ENDPOINT and template_tags["Environment"] == "dev"


def test_an_empty_rollback_alarm_list_is_rejected():
    with pytest.raises(ValueError, match="would never roll back"):
        _capture(rollback_alarm_names=[])
