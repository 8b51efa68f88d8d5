"""Deploy an approved model version to its endpoint, blue/green, with rollback on its alarms.

Pulumi cannot own the SageMaker Model, EndpointConfig and Endpoint (there is no artifact until a
version is approved), so this handler does, from the endpoint configuration template the
`InferenceEndpoint` component writes. Two events reach it:

* ``SageMaker Model Package State Change`` for this group, ``Approved``: create a Model and an
  EndpointConfig named after the package version, then create the endpoint, or update it with
  the template's ``DeploymentConfig`` (blue/green traffic shifting, auto-rollback on alarms).
* ``SageMaker Endpoint State Change`` to ``IN_SERVICE``: apply the template's autoscaling, which
  Application Auto Scaling refuses while the endpoint is being created or updated. After a
  deploy the handler applies it at once when the endpoint is already in service.

EventBridge delivers at least once and retries, so every step is idempotent: names derive from
the package version, existing models and configs are reused, and an approval of the version
already live changes nothing. Events for other groups, other statuses or other endpoints are
ignored with a log line. Each call returns a small dict saying what it did.

Configuration: ``ENDPOINT_TEMPLATE`` (the template as JSON) or ``ENDPOINT_TEMPLATE_PARAMETER``
(the SSM parameter holding it). Clients come from ``boto3.client``, so ``AWS_ENDPOINT_URL``
points them at an emulator.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.exceptions import ClientError

APPROVAL_DETAIL_TYPE = "SageMaker Model Package State Change"
ENDPOINT_DETAIL_TYPE = "SageMaker Endpoint State Change"
TEMPLATE_ENV = "ENDPOINT_TEMPLATE"
TEMPLATE_PARAMETER_ENV = "ENDPOINT_TEMPLATE_PARAMETER"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
DEFAULT_PROGRAM = "inference.py"
ISOLATED_SUBMIT_DIRECTORY = "/opt/ml/model/code"
"""Under network isolation the container cannot fetch code from S3: it ships in model.tar.gz."""
BUSY_STATUSES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})

LOG = logging.getLogger(__name__)
LOG.setLevel(logging.INFO)


class EndpointBusyError(RuntimeError):
    """The endpoint is mid-change; raising makes Lambda retry the event later."""


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    template = load_template()
    detail_type = event.get("detail-type")
    detail = event.get("detail") or {}
    if detail_type == APPROVAL_DETAIL_TYPE:
        return _on_package_state(template, detail)
    if detail_type == ENDPOINT_DETAIL_TYPE:
        return _on_endpoint_state(template, detail)
    return _ignored(f"event type {detail_type!r} is not handled")


def load_template() -> dict[str, Any]:
    raw = os.environ.get(TEMPLATE_ENV)
    if raw is None:
        parameter = os.environ.get(TEMPLATE_PARAMETER_ENV)
        if not parameter:
            raise RuntimeError(
                f"Set {TEMPLATE_ENV} (the endpoint template as JSON) or {TEMPLATE_PARAMETER_ENV} "
                "(the SSM parameter holding it); the InferenceEndpoint component sets the latter."
            )
        raw = boto3.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"]
    return json.loads(raw)


def _ignored(reason: str) -> dict[str, Any]:
    LOG.info("ignored: %s", reason)
    return {"action": "ignored", "reason": reason}


def _on_package_state(template: Mapping[str, Any], detail: Mapping[str, Any]) -> dict[str, Any]:
    group = template["ModelPackageGroupName"]
    received = detail.get("ModelPackageGroupName")
    if received != group:
        return _ignored(f"model package group {received!r} is not {group!r}")
    if detail.get("ModelApprovalStatus") != "Approved":
        return _ignored(f"approval status is {detail.get('ModelApprovalStatus')!r}, not 'Approved'")
    sagemaker = boto3.client("sagemaker")
    package = sagemaker.describe_model_package(ModelPackageName=detail["ModelPackageArn"])
    if package.get("ModelApprovalStatus") != "Approved":
        return _ignored(f"{package['ModelPackageArn']} is no longer approved")
    return deploy(sagemaker, template, package)


def deploy(
    sagemaker: Any, template: Mapping[str, Any], package: Mapping[str, Any]
) -> dict[str, Any]:
    """Serve `package` on the template's endpoint; a no-op when that version is already live."""
    endpoint_name = template["EndpointName"]
    version = int(package["ModelPackageVersion"])
    resource_name = f"{endpoint_name}-v{version}"
    result = {
        "endpoint": endpoint_name,
        "endpoint_config": resource_name,
        "model_package_arn": package["ModelPackageArn"],
        "version": version,
    }
    endpoint = _describe(sagemaker.describe_endpoint, EndpointName=endpoint_name)
    if endpoint is not None and endpoint["EndpointConfigName"] == resource_name:
        LOG.info("version %s is already live on %s; nothing to do", version, endpoint_name)
        return {"action": "none", "reason": "version already live", **result}
    if endpoint is not None and endpoint["EndpointStatus"] in BUSY_STATUSES:
        raise EndpointBusyError(
            f"{endpoint_name} is {endpoint['EndpointStatus']}; retry deploying version {version} "
            "when it is in service."
        )
    _ensure_model(sagemaker, template, package, resource_name)
    _ensure_endpoint_config(sagemaker, template, resource_name)
    tags = list(template.get("Tags", []))
    if endpoint is None:
        sagemaker.create_endpoint(
            EndpointName=endpoint_name, EndpointConfigName=resource_name, Tags=tags
        )
        action = "created"
    else:
        _update_endpoint(sagemaker, template, endpoint, resource_name)
        action = "updated"
    LOG.info("%s %s with %s", action, endpoint_name, resource_name)
    status = sagemaker.describe_endpoint(EndpointName=endpoint_name)["EndpointStatus"]
    scaling = apply_scaling(template) if status == "InService" else "deferred until InService"
    return {"action": action, "scaling": scaling, **result}


def _describe(call: Any, **kwargs: Any) -> dict[str, Any] | None:
    try:
        return call(**kwargs)
    except ClientError as error:
        if "Could not find" in error.response["Error"].get("Message", ""):
            return None
        raise


def _ensure_model(
    sagemaker: Any, template: Mapping[str, Any], package: Mapping[str, Any], model_name: str
) -> None:
    if _describe(sagemaker.describe_model, ModelName=model_name) is not None:
        return
    container = package["InferenceSpecification"]["Containers"][0]
    environment = dict(container.get("Environment") or {})
    environment.setdefault("SAGEMAKER_PROGRAM", DEFAULT_PROGRAM)
    environment.setdefault("SAGEMAKER_SUBMIT_DIRECTORY", ISOLATED_SUBMIT_DIRECTORY)
    isolated = bool(template.get("EnableNetworkIsolation", True))
    if isolated and environment["SAGEMAKER_SUBMIT_DIRECTORY"].startswith("s3://"):
        raise ValueError(
            f"{package['ModelPackageArn']}: SAGEMAKER_SUBMIT_DIRECTORY is "
            f"{environment['SAGEMAKER_SUBMIT_DIRECTORY']}, which a network-isolated model "
            f"cannot download; package the code in model.tar.gz under code/ and set it to "
            f"{ISOLATED_SUBMIT_DIRECTORY}."
        )
    request: dict[str, Any] = {
        "ModelName": model_name,
        "ExecutionRoleArn": template["ExecutionRoleArn"],
        "PrimaryContainer": {
            "Image": container["Image"],
            "ModelDataUrl": container["ModelDataUrl"],
            "Environment": environment,
        },
        "EnableNetworkIsolation": isolated,
        "Tags": [
            *template.get("Tags", []),
            {"Key": "ModelPackageArn", "Value": package["ModelPackageArn"]},
        ],
    }
    if template.get("VpcConfig"):
        request["VpcConfig"] = template["VpcConfig"]
    sagemaker.create_model(**request)


def _ensure_endpoint_config(sagemaker: Any, template: Mapping[str, Any], config_name: str) -> None:
    if _describe(sagemaker.describe_endpoint_config, EndpointConfigName=config_name) is not None:
        return
    sagemaker.create_endpoint_config(
        EndpointConfigName=config_name,
        ProductionVariants=[{**template["ProductionVariant"], "ModelName": config_name}],
        DataCaptureConfig=template["DataCaptureConfig"],
        KmsKeyId=template["KmsKeyId"],
        Tags=list(template.get("Tags", [])),
    )


def _update_endpoint(
    sagemaker: Any, template: Mapping[str, Any], endpoint: Mapping[str, Any], config_name: str
) -> None:
    """Blue/green update. A change of instance type is refused while the variant is an
    autoscaling target, so scaling is removed first and re-applied once in service; a change of
    model alone keeps the current instance count the autoscaler chose."""
    live = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variant = template["ProductionVariant"]
    live_types = {v.get("InstanceType") for v in live["ProductionVariants"]}
    same_fleet = live_types == {variant["InstanceType"]}
    if not same_fleet:
        remove_scaling(template)
    sagemaker.update_endpoint(
        EndpointName=template["EndpointName"],
        EndpointConfigName=config_name,
        DeploymentConfig=template["DeploymentConfig"],
        RetainAllVariantProperties=same_fleet,
    )


def _on_endpoint_state(template: Mapping[str, Any], detail: Mapping[str, Any]) -> dict[str, Any]:
    endpoint_name = template["EndpointName"]
    if detail.get("EndpointName") != endpoint_name:
        return _ignored(f"endpoint {detail.get('EndpointName')!r} is not {endpoint_name!r}")
    if detail.get("EndpointStatus") != "IN_SERVICE":
        return _ignored(f"endpoint status is {detail.get('EndpointStatus')!r}, not IN_SERVICE")
    return {"action": "scaled", "endpoint": endpoint_name, "scaling": apply_scaling(template)}


def _resource_id(template: Mapping[str, Any]) -> str:
    variant = template["ProductionVariant"]["VariantName"]
    return f"endpoint/{template['EndpointName']}/variant/{variant}"


def apply_scaling(template: Mapping[str, Any]) -> str:
    """Register the variant as a scalable target and track invocations per instance (upserts)."""
    scaling = template["AutoScaling"]
    client = boto3.client("application-autoscaling")
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": _resource_id(template),
        "ScalableDimension": SCALABLE_DIMENSION,
    }
    client.register_scalable_target(
        **target, MinCapacity=scaling["MinCapacity"], MaxCapacity=scaling["MaxCapacity"]
    )
    client.put_scaling_policy(
        **target,
        PolicyName=scaling["PolicyName"],
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration=scaling[
            "TargetTrackingScalingPolicyConfiguration"
        ],
    )
    return "applied"


def remove_scaling(template: Mapping[str, Any]) -> None:
    client = boto3.client("application-autoscaling")
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": _resource_id(template),
        "ScalableDimension": SCALABLE_DIMENSION,
    }
    policies = client.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=target["ResourceId"]
    )["ScalingPolicies"]
    for policy in policies:
        client.delete_scaling_policy(**target, PolicyName=policy["PolicyName"])
    registered = client.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[target["ResourceId"]]
    )["ScalableTargets"]
    if registered:
        client.deregister_scalable_target(**target)
