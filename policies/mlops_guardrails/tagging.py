"""Tagging guardrails: cost allocation and ownership need the same tags on every resource."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs

from mlops_guardrails.framework import environment, has, resource_policy, tags_of

DEFAULT_REQUIRED = ["Project", "Environment", "Owner", "CostCenter", "ManagedBy"]
# Types whose pulumi-aws arguments take `tags` (tests check this against the installed provider).
# A resource of any other type is checked too when it sets `tags`.
TAGGABLE_TYPES = frozenset(
    {
        "aws:s3/bucket:Bucket",
        "aws:kms/key:Key",
        "aws:iam/role:Role",
        "aws:iam/policy:Policy",
        "aws:sagemaker/pipeline:Pipeline",
        "aws:sagemaker/model:Model",
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "aws:sagemaker/endpoint:Endpoint",
        "aws:sagemaker/featureGroup:FeatureGroup",
        "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
        "aws:sagemaker/monitoringSchedule:MonitoringSchedule",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:lambda/function:Function",
        "aws:sns/topic:Topic",
        "aws:sqs/queue:Queue",
        "aws:ssm/parameter:Parameter",
        "aws:appautoscaling/target:Target",
    }
)


def is_taggable(args: ResourceValidationArgs) -> bool:
    return args.resource_type in TAGGABLE_TYPES or (
        args.resource_type.startswith("aws:") and has(args.props, "tags")
    )


def _check_required(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not is_taggable(args):
        return
    config = args.get_config()
    required = list(config.get("requiredTags", DEFAULT_REQUIRED))
    if config.get("requireNameTag", True):
        required.append("Name")
    tags = tags_of(args.props)
    missing = [t for t in required if not tags.get(t)]
    if missing:
        report(f"Missing tags: {', '.join(missing)}.")


def _check_environment(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not is_taggable(args):
        return
    value = tags_of(args.props).get("Environment")
    if value is not None and value != environment(args):
        report(f"Environment tag is '{value}' in the {environment(args)} stack.")


POLICIES = [
    resource_policy(
        "tagging-required-tags",
        "Taggable resources must carry the required tags (pack config requiredTags) and Name.",
        [],
        _check_required,
        remediation="Build tags with infra.components.tagging.tags_for(name, platform_tags, "
        "own_tags); platform tags come from infra.settings.",
        config={
            "requiredTags": {
                "type": "array",
                "items": {"type": "string"},
                "default": DEFAULT_REQUIRED,
            },
            "requireNameTag": {"type": "boolean", "default": True},
        },
    ),
    resource_policy(
        "tagging-environment-matches",
        "The Environment tag must name the stack's environment.",
        [],
        _check_environment,
        remediation="Take the Environment tag from mlops:environment (infra.settings) rather than "
        "a literal.",
    ),
]
