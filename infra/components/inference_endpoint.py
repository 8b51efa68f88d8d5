"""How one model gets served (`mlops:serving:InferenceEndpoint`).

An environment with no approved model must deploy cleanly, and there is no model artifact to
name until one is approved, so Pulumi does not own the SageMaker Model, EndpointConfig or
Endpoint. It owns everything around them: the execution role the endpoint runs as, an
endpoint configuration template (an SSM parameter), and the approval rule that runs the deploy
handler (`ml_code.handlers.deploy`). The handler turns an approved model package plus the
template into a Model, an EndpointConfig and a blue/green endpoint update that rolls back on
the endpoint's alarms, and applies the autoscaling the template describes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from infra.components import iam_documents, model_alarms
from infra.components.handler_function import HandlerFunction, HandlerFunctionArgs
from infra.components.platform_refs import PlatformRefs
from infra.components.tagging import tags_for
from infra.pipelines import permissions
from ml_code.serving.payloads import CSV, JSON

DeploymentStrategy = Literal["canary", "linear", "all-at-once"]
DEPLOY_HANDLER = "ml_code.handlers.deploy.handler"
APPROVAL_DETAIL_TYPE = "SageMaker Model Package State Change"
ENDPOINT_DETAIL_TYPE = "SageMaker Endpoint State Change"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SCALING_METRIC = "SageMakerVariantInvocationsPerInstance"
SKLEARN_REPOSITORY = "sagemaker-scikit-learn"
SKLEARN_IMAGE_ACCOUNTS = {
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-west-2": "246618743249",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-central-1": "492215442770",
    "ap-northeast-1": "354813040037",
    "ap-southeast-2": "783357654285",
}
"""The AWS accounts publishing the SageMaker scikit-learn images (from the SageMaker SDK)."""
PROD_MIN_INSTANCES = 2


def endpoint_name_for(name_prefix: str, model_name: str) -> str:
    return f"{name_prefix}-{model_name}"


@dataclass
class InferenceEndpointArgs:
    """Sizes and rollout default to the values declared in Pulumi.yaml.

    Default: one ml.m5.large (at least two in prod, across zones), scaling to two at 200
    invocations per instance per minute; every request and response captured to the capture
    bucket with its key; canary rollout of 10% of capacity, baked 5 minutes, rolled back when
    the errors or latency alarm (`model_alarms.rollback_alarm_names`) trips; model in network
    isolation, inside `platform.subnet_ids` when set.
    """

    platform: PlatformRefs
    model_name: str
    model_package_group_name: str
    instance_type: str = "ml.m5.large"
    min_instances: int = 1
    max_instances: int = 2
    target_invocations_per_instance: int = 200
    capture_sampling_percent: int = 100
    deployment_strategy: DeploymentStrategy = "canary"
    canary_percent: int = 10
    linear_step_percent: int = 25
    wait_interval_seconds: int = 300
    termination_wait_seconds: int = 600
    maximum_execution_timeout_seconds: int = 3600
    variant_name: str = "AllTraffic"
    rollback_alarm_names: Sequence[str] | None = None
    """Default: the errors and latency alarms `ModelAlarms` creates for this model."""
    artifact_prefix: str | None = None
    """Where approved artifacts live in the artifacts bucket. Default: `models/<model_name>/`."""
    image_account_id: str | None = None
    """Account of the sklearn image repository. Default: looked up for the platform region."""
    scale_in_cooldown_seconds: int = 300
    scale_out_cooldown_seconds: int = 60
    tags: dict[str, str] = field(default_factory=dict)


class InferenceEndpoint(pulumi.ComponentResource):
    execution_role: aws.iam.Role
    template_parameter: aws.ssm.Parameter
    deploy: HandlerFunction
    approval_rule: aws.cloudwatch.EventRule
    in_service_rule: aws.cloudwatch.EventRule

    def __init__(
        self, name: str, args: InferenceEndpointArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:serving:InferenceEndpoint", name, None, opts)
        _check(name, args)
        self.args = args
        platform = args.platform
        self.endpoint_name = endpoint_name_for(platform.name_prefix, args.model_name)
        self.endpoint_arn = platform.arn("sagemaker", f"endpoint/{self.endpoint_name}")
        self.variant_name = args.variant_name
        self.rollback_alarm_names = list(
            args.rollback_alarm_names
            or model_alarms.rollback_alarm_names(platform.name_prefix, args.model_name)
        )
        self.artifact_prefix = args.artifact_prefix or f"models/{args.model_name}/"
        self.capture_prefix = f"capture/{self.endpoint_name}"
        self.execution_role_name = f"{self.endpoint_name}-endpoint"
        self.execution_role_arn = permissions.role_arn(platform, self.execution_role_name)
        self.execution_role = self._execution_role(name)
        self.template_parameter_name = (
            f"/{platform.name_prefix}/{args.model_name}/endpoint-template"
        )
        self.template = self._template()
        self.template_parameter = aws.ssm.Parameter(
            f"{name}-template",
            name=self.template_parameter_name,
            type="String",
            insecure_value=self.template,
            description=f"Endpoint configuration template for {self.endpoint_name}, read by the "
            "deploy handler on every approval.",
            tags=tags_for(f"{name}-template", platform.tags, args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.approval_rule_name = f"{self.endpoint_name}-approved"
        self.approval_rule_arn = platform.arn("events", f"rule/{self.approval_rule_name}")
        self.in_service_rule_name = f"{self.endpoint_name}-in-service"
        self.in_service_rule_arn = platform.arn("events", f"rule/{self.in_service_rule_name}")
        self.deploy = self._deploy_function(name)
        self.deploy_function_name = self.deploy.function_name
        self.approval_rule = self._rule(
            name,
            "approved",
            self.approval_rule_name,
            self.approval_rule_arn,
            "Deploys a newly approved version of the model to its endpoint.",
            {
                "source": ["aws.sagemaker"],
                "detail-type": [APPROVAL_DETAIL_TYPE],
                "detail": {
                    "ModelPackageGroupName": [args.model_package_group_name],
                    "ModelApprovalStatus": ["Approved"],
                },
            },
        )
        self.in_service_rule = self._rule(
            name,
            "in-service",
            self.in_service_rule_name,
            self.in_service_rule_arn,
            "Applies autoscaling once the endpoint is in service (scaling cannot be registered "
            "while it is being created or updated).",
            {
                "source": ["aws.sagemaker"],
                "detail-type": [ENDPOINT_DETAIL_TYPE],
                "detail": {
                    "EndpointName": [self.endpoint_name],
                    "EndpointStatus": ["IN_SERVICE"],
                },
            },
        )
        self.register_outputs(
            {
                "endpoint_name": self.endpoint_name,
                "endpoint_arn": self.endpoint_arn,
                "execution_role_arn": self.execution_role_arn,
                "deploy_function_name": self.deploy_function_name,
                "approval_rule_arn": self.approval_rule_arn,
                "template_parameter_name": self.template_parameter_name,
            }
        )

    def _execution_role(self, name: str) -> aws.iam.Role:
        """What SageMaker needs to run the model: its artifacts, its capture prefix, its image."""
        platform = self.args.platform
        role = aws.iam.Role(
            f"{name}-execution-role",
            name=self.execution_role_name,
            assume_role_policy=iam_documents.service_trust(
                "sagemaker.amazonaws.com", account_id=platform.account_id
            ),
            tags=tags_for(f"{name}-execution-role", platform.tags, self.args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.iam.RolePolicy(
            f"{name}-execution-policy",
            role=role.id,
            policy=iam_documents.document(*self._execution_statements()),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return role

    def _execution_statements(self) -> list[dict[str, Any]]:
        args = self.args
        platform = args.platform
        artifacts = platform.bucket_arns["artifacts"]
        capture = platform.bucket_arns["capture"]
        repository = pulumi.Output.concat(
            "arn:",
            platform.partition,
            ":ecr:",
            platform.region,
            ":",
            self._image_account(),
            ":repository/",
            SKLEARN_REPOSITORY,
        )
        endpoint_logs = platform.arn(
            "logs", f"log-group:/aws/sagemaker/Endpoints/{self.endpoint_name}:*"
        )
        statements = [
            iam_documents.allow(
                "ReadModelArtifacts",
                ["s3:GetObject"],
                [pulumi.Output.concat(artifacts, "/", self.artifact_prefix, "*")],
            ),
            iam_documents.allow(
                "ListModelArtifacts",
                ["s3:ListBucket"],
                [artifacts],
                Condition={"StringLike": {"s3:prefix": [f"{self.artifact_prefix}*"]}},
            ),
            iam_documents.allow(
                "DecryptModelArtifacts",
                ["kms:Decrypt", "kms:DescribeKey"],
                [platform.bucket_key_arns["artifacts"]],
            ),
            iam_documents.allow(
                "WriteCapturedTraffic",
                ["s3:PutObject"],
                [pulumi.Output.concat(capture, "/", self.capture_prefix, "/*")],
            ),
            iam_documents.allow(
                "EncryptCapturedTraffic",
                ["kms:GenerateDataKey", "kms:Encrypt", "kms:DescribeKey"],
                [platform.bucket_key_arns["capture"]],
            ),
            iam_documents.allow(
                "PullServingImage",
                [
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                [repository],
            ),
            iam_documents.allow("EcrLogin", ["ecr:GetAuthorizationToken"], ["*"]),
            iam_documents.allow(
                "WriteEndpointLogs",
                ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                [endpoint_logs],
            ),
        ]
        if platform.subnet_ids:
            statements += self._vpc_statements()
        return statements

    def _vpc_statements(self) -> list[dict[str, Any]]:
        """SageMaker attaches the model's network interfaces in our subnets as this role."""
        return permissions.vpc_access(self.args.platform, "ManageModelNetworkInterfaces")

    def _image_account(self) -> str:
        args = self.args
        if args.image_account_id:
            return args.image_account_id
        return SKLEARN_IMAGE_ACCOUNTS[str(args.platform.region)]

    def _template(self) -> pulumi.Output[str]:
        """The endpoint as SageMaker's API spells it, less the model the approval names."""
        args = self.args
        platform = args.platform
        template: dict[str, Any] = {
            "ModelPackageGroupName": args.model_package_group_name,
            "EndpointName": self.endpoint_name,
            "ExecutionRoleArn": self.execution_role_arn,
            "EnableNetworkIsolation": True,
            "ProductionVariant": {
                "VariantName": args.variant_name,
                "InstanceType": args.instance_type,
                "InitialInstanceCount": args.min_instances,
                "InitialVariantWeight": 1.0,
            },
            "KmsKeyId": platform.kms_key_alias_arn,
            "DataCaptureConfig": {
                "EnableCapture": True,
                "InitialSamplingPercentage": args.capture_sampling_percent,
                "DestinationS3Uri": platform.s3_uri("capture", self.capture_prefix),
                "KmsKeyId": platform.bucket_key_alias_arns["capture"],
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                "CaptureContentTypeHeader": {"CsvContentTypes": [CSV], "JsonContentTypes": [JSON]},
            },
            "DeploymentConfig": {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": self._traffic_routing(),
                    "TerminationWaitInSeconds": args.termination_wait_seconds,
                    "MaximumExecutionTimeoutInSeconds": args.maximum_execution_timeout_seconds,
                },
                "AutoRollbackConfiguration": {
                    "Alarms": [{"AlarmName": alarm} for alarm in self.rollback_alarm_names]
                },
            },
            "AutoScaling": {
                "MinCapacity": args.min_instances,
                "MaxCapacity": args.max_instances,
                "PolicyName": f"{self.endpoint_name}-invocations-per-instance",
                "TargetTrackingScalingPolicyConfiguration": {
                    "TargetValue": float(args.target_invocations_per_instance),
                    "PredefinedMetricSpecification": {"PredefinedMetricType": SCALING_METRIC},
                    "ScaleInCooldown": args.scale_in_cooldown_seconds,
                    "ScaleOutCooldown": args.scale_out_cooldown_seconds,
                },
            },
            "Tags": [
                {"Key": k, "Value": v}
                for k, v in tags_for(self.endpoint_name, platform.tags, args.tags).items()
            ],
        }
        if platform.subnet_ids:
            template["VpcConfig"] = {
                "Subnets": list(platform.subnet_ids),
                "SecurityGroupIds": list(platform.security_group_ids),
            }
        return pulumi.Output.json_dumps(template)

    def _traffic_routing(self) -> dict[str, Any]:
        args = self.args
        if args.deployment_strategy == "all-at-once":
            return {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": args.wait_interval_seconds}
        if args.deployment_strategy == "canary":
            return {
                "Type": "CANARY",
                "WaitIntervalInSeconds": args.wait_interval_seconds,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": args.canary_percent},
            }
        return {
            "Type": "LINEAR",
            "WaitIntervalInSeconds": args.wait_interval_seconds,
            "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": args.linear_step_percent},
        }

    def _deploy_function(self, name: str) -> HandlerFunction:
        return HandlerFunction(
            f"{name}-deploy",
            HandlerFunctionArgs(
                platform=self.args.platform,
                handler=DEPLOY_HANDLER,
                policy_statements=self._deploy_statements(),
                environment={"ENDPOINT_TEMPLATE_PARAMETER": self.template_parameter_name},
                timeout=120,
                memory_size=256,
                tags=self.args.tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _deploy_statements(self) -> list[dict[str, Any]]:
        """The deploy handler may touch this endpoint's SageMaker resources and nothing else."""
        args = self.args
        platform = args.platform
        endpoint = self.endpoint_name
        models = platform.arn("sagemaker", f"model/{endpoint}-*")
        configs = platform.arn("sagemaker", f"endpoint-config/{endpoint}-*")
        packages = platform.arn("sagemaker", f"model-package/{args.model_package_group_name}/*")
        parameter = platform.arn("ssm", f"parameter{self.template_parameter_name}")
        scaling_alarms = platform.arn(
            "cloudwatch", f"alarm:TargetTracking-endpoint/{endpoint}/variant/*"
        )
        scaling_role = platform.arn(
            "iam",
            "role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
            "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
            regional=False,
        )
        keys = [platform.kms_key_arn, platform.bucket_key_arns["capture"]]
        return [
            iam_documents.allow("ReadTemplate", ["ssm:GetParameter"], [parameter]),
            iam_documents.allow(
                "ReadApprovedPackages", ["sagemaker:DescribeModelPackage"], [packages]
            ),
            iam_documents.allow(
                "ManageOwnModelsAndConfigs",
                [
                    "sagemaker:CreateModel",
                    "sagemaker:DescribeModel",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:AddTags",
                ],
                [models, configs],
            ),
            iam_documents.allow(
                "DeployOwnEndpoint",
                [
                    "sagemaker:CreateEndpoint",
                    "sagemaker:UpdateEndpoint",
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:AddTags",
                ],
                [self.endpoint_arn],
            ),
            iam_documents.allow(
                "PassExecutionRoleToSageMaker",
                ["iam:PassRole"],
                [self.execution_role_arn],
                Condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
            iam_documents.allow(
                "LetSageMakerUseKeysForThisEndpoint",
                ["kms:CreateGrant", "kms:DescribeKey"],
                keys,
                Condition={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            ),
            # Application Auto Scaling has no resource-level permissions for registering a
            # target that does not exist yet; its calls are confined by the service-linked role
            # and the target-tracking alarm names below.
            iam_documents.allow(
                "ScaleOwnVariant",
                [
                    "application-autoscaling:RegisterScalableTarget",
                    "application-autoscaling:DeregisterScalableTarget",
                    "application-autoscaling:DescribeScalableTargets",
                    "application-autoscaling:PutScalingPolicy",
                    "application-autoscaling:DeleteScalingPolicy",
                    "application-autoscaling:DescribeScalingPolicies",
                ],
                ["*"],
            ),
            iam_documents.allow(
                "ManageTargetTrackingAlarms",
                [
                    "cloudwatch:PutMetricAlarm",
                    "cloudwatch:DescribeAlarms",
                    "cloudwatch:DeleteAlarms",
                ],
                [scaling_alarms],
            ),
            iam_documents.allow(
                "CreateScalingServiceLinkedRole",
                ["iam:CreateServiceLinkedRole"],
                [scaling_role],
                Condition={
                    "StringLike": {
                        "iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"
                    }
                },
            ),
        ]

    def _rule(
        self,
        name: str,
        role: str,
        rule_name: str,
        rule_arn: pulumi.Output[str],
        description: str,
        pattern: dict[str, Any],
    ) -> aws.cloudwatch.EventRule:
        platform = self.args.platform
        rule = aws.cloudwatch.EventRule(
            f"{name}-{role}-rule",
            name=rule_name,
            description=description,
            event_pattern=pulumi.Output.json_dumps(pattern),
            tags=tags_for(f"{name}-{role}-rule", platform.tags, self.args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.cloudwatch.EventTarget(
            f"{name}-{role}-target",
            rule=rule.name,
            arn=self.deploy.function.arn,
            retry_policy={"maximum_retry_attempts": 4, "maximum_event_age_in_seconds": 3600},
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.lambda_.Permission(
            f"{name}-{role}-invoke",
            action="lambda:InvokeFunction",
            function=self.deploy.function.name,
            principal="events.amazonaws.com",
            source_arn=rule_arn,
            source_account=platform.account_id,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[rule]),
        )
        return rule


def _check(name: str, args: InferenceEndpointArgs) -> None:
    platform = args.platform
    if platform.environment == "prod" and args.min_instances < PROD_MIN_INSTANCES:
        raise ValueError(
            f"InferenceEndpoint '{name}': min_instances is {args.min_instances} in prod; prod "
            f"endpoints keep at least {PROD_MIN_INSTANCES} instances across availability zones. "
            f"Set minInstances to {PROD_MIN_INSTANCES} or more."
        )
    if args.max_instances < args.min_instances:
        raise ValueError(
            f"InferenceEndpoint '{name}': max_instances ({args.max_instances}) is below "
            f"min_instances ({args.min_instances}); raise max_instances."
        )
    if not 1 <= args.capture_sampling_percent <= 100:
        raise ValueError(
            f"InferenceEndpoint '{name}': capture_sampling_percent is "
            f"{args.capture_sampling_percent}; choose 1 to 100 (monitoring needs traffic)."
        )
    if args.deployment_strategy not in ("canary", "linear", "all-at-once"):
        raise ValueError(
            f"InferenceEndpoint '{name}': deployment_strategy is '{args.deployment_strategy}'; "
            "use 'canary', 'linear' or 'all-at-once'."
        )
    if not args.image_account_id and str(platform.region) not in SKLEARN_IMAGE_ACCOUNTS:
        raise ValueError(
            f"InferenceEndpoint '{name}': no known scikit-learn image account for region "
            f"'{platform.region}'; pass image_account_id (see the SageMaker SDK's "
            "image_uri_config/sklearn.json)."
        )
    if not args.rollback_alarm_names and args.rollback_alarm_names is not None:
        raise ValueError(
            f"InferenceEndpoint '{name}': rollback_alarm_names is empty, so a bad deployment "
            "would never roll back; pass the errors and latency alarm names or leave it unset."
        )
