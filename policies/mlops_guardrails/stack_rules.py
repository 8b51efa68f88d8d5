"""Stack-level guardrails that close the loop: what is served is monitored on a schedule, and
what is trained can be retrained without a person starting it."""

from __future__ import annotations

from pulumi_policy import PolicyResource, ReportViolation, StackValidationArgs

from mlops_guardrails import serving
from mlops_guardrails.framework import check_each, dig, of_type, stack_policy


def has_schedule(resources: list[PolicyResource], trigger: PolicyResource) -> bool:
    """A scheduler Schedule, or an EventTarget whose rule runs on a schedule expression."""
    if trigger.resource_type == serving.SCHEDULE:
        return True
    return any(
        dig(rule.props, "scheduleExpression")
        for rule in of_type(resources, serving.EVENT_RULE)
        if trigger in serving.rule_targets(resources, rule)
    )


def _check_monitoring_schedule(args: StackValidationArgs, report: ReportViolation) -> None:
    monitors = of_type(args.resources, serving.MONITORING_SCHEDULE)

    def check(endpoint: serving.Target) -> None:
        if any(endpoint.referenced_by(m) for m in monitors):
            return
        scheduled = [
            t for t in serving.triggers(args.resources, endpoint) if has_schedule(args.resources, t)
        ]
        if not scheduled:
            report(
                f"Endpoint '{endpoint.label}' has no monitoring schedule.", endpoint.resource.urn
            )

    check_each(serving.endpoints(args.resources), check)


def _check_pipeline_trigger(args: StackValidationArgs, report: ReportViolation) -> None:
    def check(pipeline: serving.Target) -> None:
        if not serving.triggers(args.resources, pipeline):
            report(
                f"Training pipeline '{pipeline.label}' has no EventBridge or scheduler trigger.",
                pipeline.resource.urn,
            )

    check_each(serving.pipelines(args.resources), check)


POLICIES = [
    stack_policy(
        "stack-endpoint-monitoring-schedule",
        "Every SageMaker endpoint must have a monitoring schedule.",
        _check_monitoring_schedule,
        remediation="Add a SageMaker MonitoringSchedule for the endpoint, or a scheduler "
        "Schedule / scheduled EventBridge rule whose target runs the monitoring job for it "
        "(mlops:monitoringSchedule).",
    ),
    stack_policy(
        "stack-training-pipeline-trigger",
        "Every training pipeline must have a trigger (schedule or retraining rule).",
        _check_pipeline_trigger,
        remediation="Add an EventBridge target or scheduler Schedule that starts the pipeline, "
        "directly or through the retraining Lambda (mlops:retrainSchedule).",
    ),
]
