"""Cost guardrails: bounded dev endpoints, bounded capture volume, logs that expire."""

from __future__ import annotations

import re

from pulumi_policy import ReportViolation, ResourceValidationArgs

from mlops_guardrails.framework import MANDATORY, as_list, dig, environment, resource_policy
from mlops_guardrails.sagemaker import ENDPOINT_CONFIG, SCALING_TARGET, is_sagemaker_scaling

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SIZES = ["nano", "micro", "small", "medium", "large", "xlarge"]
DEFAULT_SAMPLING = {
    "dev": {"min": 1, "max": 100},
    "staging": {"min": 1, "max": 100},
    "prod": {"min": 5, "max": 50},
}


def size_rank(instance_type: str) -> float | None:
    """ml.m5.2xlarge -> rank of xlarge + 1; None when the size cannot be read."""
    match = re.fullmatch(
        r"ml\.[a-z0-9-]+\.(\d*)(nano|micro|small|medium|large|xlarge)", instance_type
    )
    if not match:
        return None
    multiplier, size = match.groups()
    rank = float(SIZES.index(size))
    return rank + _log2(multiplier) if multiplier else rank


def _log2(multiplier: str) -> float:
    value, rank = int(multiplier), 0.0
    while value > 1:
        value //= 2
        rank += 1
    return rank


def _check_dev_size(args: ResourceValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    if environment(args) not in config.get("appliesTo", ["dev"]):
        return
    max_size = str(config.get("maxInstanceSize", "xlarge"))
    max_count = float(config.get("maxInstanceCount", 2))
    if args.resource_type == SCALING_TARGET:
        if is_sagemaker_scaling(args.props) and args.props["maxCapacity"] > max_count:
            report(f"Autoscaling maxCapacity {args.props['maxCapacity']:g} exceeds {max_count:g}.")
        return
    limit = size_rank(f"ml.x.{max_size}")
    for index, variant in enumerate(as_list(dig(args.props, "productionVariants"))):
        instance_type = dig(variant, "instanceType")
        count = dig(variant, "initialInstanceCount")
        rank = size_rank(instance_type) if isinstance(instance_type, str) else None
        if instance_type is not None and (rank is None or limit is None or rank > limit):
            report(f"productionVariants[{index}]: {instance_type} is larger than {max_size}.")
        if isinstance(count, (int, float)) and count > max_count:
            report(f"productionVariants[{index}]: {count:g} instances exceed {max_count:g}.")


def _check_sampling(args: ResourceValidationArgs, report: ReportViolation) -> None:
    capture = dig(args.props, "dataCaptureConfig")
    if not capture:
        return
    bounds = args.get_config().get("bounds", DEFAULT_SAMPLING).get(environment(args), {})
    low, high = float(bounds.get("min", 1)), float(bounds.get("max", 100))
    percent = capture["initialSamplingPercentage"]
    if not low <= percent <= high:
        report(f"initialSamplingPercentage {percent:g} is outside [{low:g}, {high:g}].")


def _check_log_retention(args: ResourceValidationArgs, report: ReportViolation) -> None:
    max_days = float(args.get_config().get("maxRetentionDays", 731))
    days = dig(args.props, "retentionInDays")
    if not days:
        report("retentionInDays is not set: logs are kept (and billed) forever.")
    elif days > max_days:
        report(f"retentionInDays {days:g} exceeds {max_days:g}.")


POLICIES = [
    resource_policy(
        "cost-dev-endpoint-size",
        "Dev endpoints must stay within the dev instance size and count bounds.",
        [ENDPOINT_CONFIG, SCALING_TARGET],
        _check_dev_size,
        level=MANDATORY,
        remediation="Use a smaller endpointInstanceType and maxInstances for the model in "
        "stacks/Pulumi.dev.yaml.",
        config={
            "maxInstanceSize": {
                "type": "string",
                "enum": [*SIZES, "2xlarge", "4xlarge"],
                "default": "xlarge",
            },
            "maxInstanceCount": {"type": "number", "minimum": 1, "default": 2},
            "appliesTo": {"type": "array", "items": {"type": "string"}, "default": ["dev"]},
        },
    ),
    resource_policy(
        "cost-capture-sampling-bounds",
        "Endpoint data capture must sample within the environment's bounds.",
        [ENDPOINT_CONFIG],
        _check_sampling,
        remediation="Set mlops:captureSamplingPercent within the bounds of this environment.",
        config={"bounds": {"type": "object", "default": DEFAULT_SAMPLING}},
    ),
    resource_policy(
        "cost-log-retention",
        "CloudWatch log groups must set a retention period.",
        [LOG_GROUP],
        _check_log_retention,
        remediation="Set retentionInDays on the log group (mlops:logRetentionDays).",
        config={"maxRetentionDays": {"type": "number", "minimum": 1, "default": 731}},
    ),
]
