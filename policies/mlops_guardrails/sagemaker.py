"""SageMaker guardrails: jobs started by pipelines, endpoints, feature store and registry.

Endpoint rules apply to every `EndpointConfiguration` in the stack, whether an `Endpoint`
resource uses it or an approval Lambda creates the endpoint from it as a template.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pulumi_policy import (
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    StackValidationArgs,
)

from mlops_guardrails import pipelines
from mlops_guardrails.framework import (
    MANDATORY,
    as_list,
    check_each,
    dig,
    environment,
    has,
    known_str,
    of_type,
    parse_json,
    refers_to,
    resource_policy,
    stack_policy,
)

PIPELINE = "aws:sagemaker/pipeline:Pipeline"
MODEL = "aws:sagemaker/model:Model"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
SCALING_TARGET = "aws:appautoscaling/target:Target"
FEATURE_GROUP = "aws:sagemaker/featureGroup:FeatureGroup"
PACKAGE_GROUP = "aws:sagemaker/modelPackageGroup:ModelPackageGroup"
PACKAGE_GROUP_POLICY = "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy"

DEV_TYPES = [
    "ml.t3.medium",
    "ml.t3.large",
    "ml.m5.large",
    "ml.m5.xlarge",
    "ml.c5.large",
    "ml.c5.xlarge",
]
STAGING_TYPES = [*DEV_TYPES, "ml.m5.2xlarge", "ml.c5.2xlarge"]
PROD_TYPES = [*STAGING_TYPES, "ml.m5.4xlarge", "ml.c5.4xlarge", "ml.g4dn.xlarge", "ml.g5.xlarge"]
DEFAULT_ALLOWED_TYPES = {"dev": DEV_TYPES, "staging": STAGING_TYPES, "prod": PROD_TYPES}
# Instance types with local NVMe storage reject VolumeKmsKeyId: their volumes are always encrypted.
DEFAULT_INSTANCE_STORAGE = r"^ml\.(?:[a-z]+\d+[a-z]*d[a-z]*|g5|p4de?|p5)\."

Job = pipelines.Job


def pipeline_jobs(args: ResourceValidationArgs) -> list[Job]:
    return pipelines.jobs(parse_json(args.props["pipelineDefinition"]))


def job_check(rule: Callable[[ResourceValidationArgs, Job], str | None]) -> Callable[..., None]:
    def check(args: ResourceValidationArgs, report: ReportViolation) -> None:
        for job in pipeline_jobs(args):
            problem = rule(args, job)
            if problem:
                report(f"{job.kind} step '{job.step}': {problem}")

    return check


def _is_set(value: Any) -> bool:
    return value not in (None, "", [], {})


def _volume_kms(args: ResourceValidationArgs, job: Job) -> str | None:
    pattern = str(args.get_config().get("instanceStorageTypePattern", DEFAULT_INSTANCE_STORAGE))
    if isinstance(job.instance_type, str) and re.match(pattern, job.instance_type):
        return None
    return None if _is_set(job.volume_kms_key) else "the ML storage volume has no VolumeKmsKeyId."


def _output_kms(args: ResourceValidationArgs, job: Job) -> str | None:
    if not job.has_outputs or _is_set(job.output_kms_key):
        return None
    return "outputs are written to S3 without a KmsKeyId."


def _isolation(args: ResourceValidationArgs, job: Job) -> str | None:
    if job.network_isolation is True or _is_set(job.vpc_config):
        return None
    return "neither EnableNetworkIsolation nor a VpcConfig confines the job's network."


def _inter_container(args: ResourceValidationArgs, job: Job) -> str | None:
    count = job.instance_count
    multi = count == pipelines.RUNTIME or (isinstance(count, (int, float)) and count > 1)
    if not multi or job.inter_container_encryption is True:
        return None
    return f"{count} instances exchange traffic without EnableInterContainerTrafficEncryption."


def _max_runtime(args: ResourceValidationArgs, job: Job) -> str | None:
    if job.kind != "Training":
        return None
    limit = float(args.get_config().get("maxRuntimeSeconds", 86400))
    runtime = job.max_runtime_seconds
    if not isinstance(runtime, (int, float)):
        return "StoppingCondition.MaxRuntimeInSeconds is not set to a number."
    if runtime > limit:
        return f"MaxRuntimeInSeconds {runtime:g} exceeds the limit of {limit:g}."
    return None


def allowed_types(args: ResourceValidationArgs) -> list[str]:
    table = args.get_config().get("allowedInstanceTypes", DEFAULT_ALLOWED_TYPES)
    return list(table.get(environment(args), []))


def _check_instance_types(args: ResourceValidationArgs, report: ReportViolation) -> None:
    allowed = allowed_types(args)
    env = environment(args)
    if args.resource_type == PIPELINE:
        used = [(f"{j.kind} step '{j.step}'", j.instance_type) for j in pipeline_jobs(args)]
    else:
        used = [
            (f"productionVariants[{i}]", variant["instanceType"])
            for i, variant in enumerate(as_list(dig(args.props, "productionVariants")))
            if has(variant, "instanceType")
        ]
    for where, instance_type in used:
        if instance_type not in allowed:
            report(f"{where}: instance type {instance_type!r} is not allowed in {env}.")


def _check_data_capture(args: ResourceValidationArgs, report: ReportViolation) -> None:
    required_in = args.get_config().get("requiredIn", ["staging", "prod"])
    if environment(args) not in required_in:
        return
    capture = dig(args.props, "dataCaptureConfig")
    if not capture:
        report(f"No dataCaptureConfig: requests are not captured in {environment(args)}.")
        return
    if has(capture, "enableCapture") and capture["enableCapture"] is False:
        report("dataCaptureConfig.enableCapture is false.")
    if not has(capture, "kmsKeyId"):
        report("Captured requests are stored without dataCaptureConfig.kmsKeyId.")


def _check_endpoint_kms(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not has(args.props, "kmsKeyArn"):
        report("No kmsKeyArn: the endpoint's ML storage volumes use an AWS-owned key.")


def variant_counts(props: Any) -> list[tuple[str, Any]]:
    return [
        (str(dig(v, "variantName") or f"productionVariants[{i}]"), dig(v, "initialInstanceCount"))
        for i, v in enumerate(as_list(dig(props, "productionVariants")))
        if dig(v, "serverlessConfig") is None
    ]


def is_sagemaker_scaling(props: Any) -> bool:
    return dig(props, "serviceNamespace") == "sagemaker"


def _check_min_instances(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if environment(args) not in args.get_config().get("requiredIn", ["prod"]):
        return
    minimum = float(args.get_config().get("minInstances", 2))
    if args.resource_type == ENDPOINT_CONFIG:
        for variant, count in variant_counts(args.props):
            if not isinstance(count, (int, float)) or count < minimum:
                report(
                    f"Variant {variant} starts {count} instance(s); at least {minimum:g} needed."
                )
    elif is_sagemaker_scaling(args.props):
        capacity = args.props["minCapacity"]
        if capacity < minimum:
            report(
                f"Autoscaling minCapacity {capacity:g} lets the endpoint fall below {minimum:g}."
            )


def _check_safe_deployment(args: ResourceValidationArgs, report: ReportViolation) -> None:
    config = dig(args.props, "deploymentConfig")
    if not dig(config, "blueGreenUpdatePolicy"):
        report("No deploymentConfig.blueGreenUpdatePolicy: updates replace instances in place.")
    alarms = dig(config, "autoRollbackConfiguration", "alarms")
    if not alarms:
        report(
            "No deploymentConfig.autoRollbackConfiguration.alarms: a bad update never rolls back."
        )


def _check_feature_group(args: ResourceValidationArgs, report: ReportViolation) -> None:
    online = dig(args.props, "onlineStoreConfig")
    if online and dig(online, "enableOnlineStore") is not False:
        if not dig(online, "securityConfig") or not has(online["securityConfig"], "kmsKeyId"):
            report("The online store has no securityConfig.kmsKeyId.")
    offline = dig(args.props, "offlineStoreConfig")
    if offline:
        storage = dig(offline, "s3StorageConfig")
        if not storage or not has(storage, "kmsKeyId"):
            report("The offline store has no s3StorageConfig.kmsKeyId.")


def _check_model_isolation(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if dig(args.props, "enableNetworkIsolation") is True or dig(args.props, "vpcConfig"):
        return
    report("The model container runs with neither enableNetworkIsolation nor a vpcConfig.")


def group_name(group: PolicyResource) -> str | None:
    return known_str(group.props, "modelPackageGroupName")


def _check_group_policy(args: StackValidationArgs, report: ReportViolation) -> None:
    policies = of_type(args.resources, PACKAGE_GROUP_POLICY)

    def check(group: PolicyResource) -> None:
        name = group_name(group)
        if not any(
            refers_to(p, group) or known_str(p.props, "modelPackageGroupName") == name
            for p in policies
        ):
            report(f"Model package group '{name}' has no ModelPackageGroupPolicy.", group.urn)

    check_each(of_type(args.resources, PACKAGE_GROUP), check)


JOB_REMEDIATION = "Build the step with the sagemaker SDK passing "


POLICIES = [
    resource_policy(
        "sagemaker-job-volume-kms",
        "Training and processing jobs must encrypt their ML storage volumes with a KMS key.",
        [PIPELINE],
        job_check(_volume_kms),
        level=MANDATORY,
        remediation=JOB_REMEDIATION + "volume_kms_key=<platform key ARN> (ResourceConfig."
        "VolumeKmsKeyId / ClusterConfig.VolumeKmsKeyId). Use the key's alias ARN so the value is "
        "known at preview.",
        config={
            "instanceStorageTypePattern": {"type": "string", "default": DEFAULT_INSTANCE_STORAGE}
        },
    ),
    resource_policy(
        "sagemaker-job-output-kms",
        "Training and processing jobs must encrypt their S3 outputs with a KMS key.",
        [PIPELINE],
        job_check(_output_kms),
        level=MANDATORY,
        remediation=JOB_REMEDIATION + "output_kms_key=<platform key ARN> "
        "(OutputDataConfig.KmsKeyId / ProcessingOutputConfig.KmsKeyId).",
    ),
    resource_policy(
        "sagemaker-job-network-isolation",
        "Training and processing jobs must run network-isolated or inside the platform VPC.",
        [PIPELINE],
        job_check(_isolation),
        level=MANDATORY,
        remediation=JOB_REMEDIATION + "enable_network_isolation=True, or subnets and "
        "security_group_ids (mlops:subnetIds / mlops:securityGroupIds).",
    ),
    resource_policy(
        "sagemaker-job-inter-container-encryption",
        "Jobs on more than one instance must encrypt inter-container traffic.",
        [PIPELINE],
        job_check(_inter_container),
        level=MANDATORY,
        remediation=JOB_REMEDIATION + "encrypt_inter_container_traffic=True whenever "
        "instance_count > 1.",
    ),
    resource_policy(
        "sagemaker-training-max-runtime",
        "Training jobs must set StoppingCondition.MaxRuntimeInSeconds within the limit.",
        [PIPELINE],
        job_check(_max_runtime),
        remediation=JOB_REMEDIATION + "max_run=<seconds> to the estimator.",
        config={"maxRuntimeSeconds": {"type": "number", "minimum": 1, "default": 86400}},
    ),
    resource_policy(
        "sagemaker-instance-type-allowlist",
        "SageMaker jobs and endpoints must use an instance type allowed in their environment.",
        [PIPELINE, ENDPOINT_CONFIG],
        _check_instance_types,
        remediation="Pick a type from the policy's allowedInstanceTypes for this environment, "
        "or extend that list in policies/config.<env>.json.",
        config={
            "allowedInstanceTypes": {
                "type": "object",
                "properties": {
                    env: {"type": "array", "items": {"type": "string"}}
                    for env in DEFAULT_ALLOWED_TYPES
                },
                "default": DEFAULT_ALLOWED_TYPES,
            }
        },
    ),
    resource_policy(
        "sagemaker-endpoint-data-capture",
        "SageMaker endpoints must capture request data, encrypted, in staging and prod.",
        [ENDPOINT_CONFIG],
        _check_data_capture,
        remediation="Set dataCaptureConfig with enableCapture true, destinationS3Uri in the "
        "capture bucket, kmsKeyId and initialSamplingPercentage (mlops:captureSamplingPercent).",
        config={
            "requiredIn": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["staging", "prod"],
            }
        },
    ),
    resource_policy(
        "sagemaker-endpoint-kms",
        "SageMaker endpoint configurations must encrypt instance storage with a KMS key.",
        [ENDPOINT_CONFIG],
        _check_endpoint_kms,
        level=MANDATORY,
        remediation="Set kmsKeyArn on the endpoint configuration to the platform key.",
    ),
    resource_policy(
        "sagemaker-prod-endpoint-min-instances",
        "Prod endpoints must keep at least two instances (variants and autoscaling minimum).",
        [ENDPOINT_CONFIG, SCALING_TARGET],
        _check_min_instances,
        remediation="Set the model's minInstances to 2 or more in stacks/Pulumi.prod.yaml; it "
        "drives initialInstanceCount and the autoscaling target's minCapacity.",
        config={
            "minInstances": {"type": "number", "minimum": 1, "default": 2},
            "requiredIn": {"type": "array", "items": {"type": "string"}, "default": ["prod"]},
        },
    ),
    resource_policy(
        "sagemaker-endpoint-safe-deployment",
        "SageMaker endpoints must update blue/green and roll back on alarms.",
        [ENDPOINT],
        _check_safe_deployment,
        remediation="Set deploymentConfig.blueGreenUpdatePolicy (mlops:deploymentStrategy) and "
        "autoRollbackConfiguration.alarms with the endpoint's error and latency alarms.",
    ),
    resource_policy(
        "sagemaker-feature-group-encrypted",
        "Feature groups must encrypt their online and offline stores with a KMS key.",
        [FEATURE_GROUP],
        _check_feature_group,
        level=MANDATORY,
        remediation="Set onlineStoreConfig.securityConfig.kmsKeyId and "
        "offlineStoreConfig.s3StorageConfig.kmsKeyId to the platform key.",
    ),
    resource_policy(
        "sagemaker-model-network-isolation",
        "SageMaker models must run network-isolated or inside the platform VPC.",
        [MODEL],
        _check_model_isolation,
        remediation="Set enableNetworkIsolation=True on the model, or a vpcConfig.",
    ),
    stack_policy(
        "sagemaker-model-package-group-policy",
        "Model package groups must have a resource policy.",
        _check_group_policy,
        remediation="Add a ModelPackageGroupPolicy for the group naming the accounts and roles "
        "that may describe or deploy its versions.",
    ),
]
