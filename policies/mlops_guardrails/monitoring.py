"""Monitoring guardrails: the alarms that close the loop (endpoint health, drift and quality
that start retraining) and what they notify."""

from __future__ import annotations

import re

from pulumi_policy import (
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    StackValidationArgs,
)

from mlops_guardrails import serving
from mlops_guardrails.framework import (
    MANDATORY,
    check_each,
    dig,
    has,
    known_str,
    known_strings,
    of_type,
    refers_to,
    resource_policy,
    stack_policy,
)

ERROR_METRICS = [
    "Invocation5XXErrors",
    "Invocation4XXErrors",
    "ModelError",
    "InvocationModelErrors",
]
LATENCY_METRICS = ["ModelLatency", "OverheadLatency"]
DRIFT_PATTERN = r"(?i)drift"
QUALITY_PATTERN = r"(?i)(quality|accuracy|precision|recall|f1|auc|rmse|mae)"
TOPIC = "aws:sns/topic:Topic"


def alarms_for(resources: list[PolicyResource], target: serving.Target) -> list[PolicyResource]:
    return [a for a in of_type(resources, serving.ALARM) if target.referenced_by(a)]


def watches(alarm: PolicyResource, metrics: list[str]) -> bool:
    return bool(set(known_strings(alarm.props)) & set(metrics))


def _check_endpoint_alarms(args: StackValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    error_metrics = list(config.get("errorMetrics", ERROR_METRICS))
    latency_metrics = list(config.get("latencyMetrics", LATENCY_METRICS))

    def check(endpoint: serving.Target) -> None:
        alarms = alarms_for(args.resources, endpoint)
        if not any(watches(a, error_metrics) for a in alarms):
            report(f"Endpoint '{endpoint.label}' has no error alarm.", endpoint.resource.urn)
        if not any(watches(a, latency_metrics) for a in alarms):
            report(f"Endpoint '{endpoint.label}' has no latency alarm.", endpoint.resource.urn)

    check_each(serving.endpoints(args.resources), check)


def retraining_rules(
    resources: list[PolicyResource], alarm: PolicyResource
) -> list[PolicyResource]:
    """EventBridge rules that match this alarm's state changes and have a target."""
    name = known_str(alarm.props, "name")
    return [
        rule
        for rule in of_type(resources, serving.EVENT_RULE)
        if refers_to(rule, alarm, name) and serving.rule_targets(resources, rule)
    ]


def _check_model_alarms(args: StackValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    kinds = {
        "drift": re.compile(str(config.get("driftPattern", DRIFT_PATTERN))),
        "quality": re.compile(str(config.get("qualityPattern", QUALITY_PATTERN))),
    }

    def check(model: serving.Target) -> None:
        alarms = alarms_for(args.resources, model)
        for kind, pattern in kinds.items():
            matching = [
                a
                for a in alarms
                if any(pattern.search(dig(a.props, key) or "") for key in ("metricName", "name"))
            ]
            wired = [a for a in matching if retraining_rules(args.resources, a)]
            if not matching:
                report(f"Model '{model.label}' has no {kind} alarm.", model.resource.urn)
            elif not wired:
                report(
                    f"Model '{model.label}': no {kind} alarm is matched by an EventBridge rule "
                    "that starts retraining.",
                    model.resource.urn,
                )

    check_each(serving.models(args.resources), check)


def _check_alarm_actions(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if dig(args.props, "actionsEnabled") is False:
        report("actionsEnabled is false: the alarm never notifies anyone.")
    elif not dig(args.props, "alarmActions"):
        report("No alarmActions: the alarm changes state silently.")


def _check_topic_kms(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not has(args.props, "kmsMasterKeyId"):
        report("The topic's messages are not encrypted with kmsMasterKeyId.")


POLICIES = [
    stack_policy(
        "monitoring-endpoint-alarms",
        "Every SageMaker endpoint must have an error alarm and a latency alarm.",
        _check_endpoint_alarms,
        remediation="Add MetricAlarms in AWS/SageMaker on Invocation5XXErrors and ModelLatency "
        "with dimension EndpointName set to the endpoint's name (or its template's "
        "EndpointName tag).",
        config={
            "errorMetrics": {
                "type": "array",
                "items": {"type": "string"},
                "default": ERROR_METRICS,
            },
            "latencyMetrics": {
                "type": "array",
                "items": {"type": "string"},
                "default": LATENCY_METRICS,
            },
        },
    ),
    stack_policy(
        "monitoring-model-drift-quality-alarms",
        "Every model must have drift and quality alarms wired to a retraining rule.",
        _check_model_alarms,
        remediation="Alarm on the drift and quality metrics the monitoring jobs publish for the "
        "model, and match those alarms' state changes with an EventBridge rule whose target "
        "starts the retraining pipeline.",
        config={
            "driftPattern": {"type": "string", "default": DRIFT_PATTERN},
            "qualityPattern": {"type": "string", "default": QUALITY_PATTERN},
        },
    ),
    resource_policy(
        "monitoring-alarm-has-action",
        "Every CloudWatch alarm must have an alarm action.",
        [serving.ALARM],
        _check_alarm_actions,
        level=MANDATORY,
        remediation="Set alarmActions to the platform's alarm topic ARN (and keep actionsEnabled).",
    ),
    resource_policy(
        "monitoring-topic-encrypted",
        "SNS topics carrying alarms must be encrypted with a KMS key.",
        [TOPIC],
        _check_topic_kms,
        remediation="Set kmsMasterKeyId on the topic to the platform key (CloudWatch must be "
        "allowed to use it in the key policy).",
    ),
]
