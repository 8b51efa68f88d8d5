"""What the stack serves and trains, and what points at it: shared by monitoring and stack rules.

An endpoint is an `Endpoint` resource, or an `EndpointConfiguration` no `Endpoint` uses (the
template an approval Lambda deploys). Its names are what alarms and schedules carry as
`EndpointName`: the endpoint's `name`, or for a template its `EndpointName` tag, else its name.
"""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_policy import PolicyResource

from mlops_guardrails.framework import known_str, of_type, refers_to, tags_of

ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
MODEL = "aws:sagemaker/model:Model"
PACKAGE_GROUP = "aws:sagemaker/modelPackageGroup:ModelPackageGroup"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
SCHEDULE = "aws:scheduler/schedule:Schedule"
MONITORING_SCHEDULE = "aws:sagemaker/monitoringSchedule:MonitoringSchedule"
FUNCTION = "aws:lambda/function:Function"


@dataclass(frozen=True)
class Target:
    """Something the stack must watch or trigger, with the names other resources know it by."""

    resource: PolicyResource
    names: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.names[0] if self.names else self.resource.name

    def referenced_by(self, other: PolicyResource) -> bool:
        return refers_to(other, self.resource, *self.names)


def _names(*candidates: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for c in candidates if c))


def endpoints(resources: list[PolicyResource]) -> list[Target]:
    deployed = of_type(resources, ENDPOINT)
    found = [Target(e, _names(known_str(e.props, "name"))) for e in deployed]
    for config in of_type(resources, ENDPOINT_CONFIG):
        if any(refers_to(e, config, known_str(config.props, "name")) for e in deployed):
            continue
        tag = tags_of(config.props).get("EndpointName")
        found.append(
            Target(
                config,
                _names(tag if isinstance(tag, str) else None, known_str(config.props, "name")),
            )
        )
    return found


def models(resources: list[PolicyResource]) -> list[Target]:
    groups = [
        Target(g, _names(known_str(g.props, "modelPackageGroupName")))
        for g in of_type(resources, PACKAGE_GROUP)
    ]
    plain = [Target(m, _names(known_str(m.props, "name"))) for m in of_type(resources, MODEL)]
    return groups + plain


def pipelines(resources: list[PolicyResource]) -> list[Target]:
    return [
        Target(p, _names(known_str(p.props, "pipelineName"))) for p in of_type(resources, PIPELINE)
    ]


def rule_targets(resources: list[PolicyResource], rule: PolicyResource) -> list[PolicyResource]:
    name = known_str(rule.props, "name")
    return [
        t
        for t in of_type(resources, EVENT_TARGET)
        if refers_to(t, rule) or (name is not None and known_str(t.props, "rule") == name)
    ]


def triggers(resources: list[PolicyResource], target: Target) -> list[PolicyResource]:
    """EventBridge targets and schedules that start `target`, directly or through a Lambda
    whose configuration names it."""
    starters = [target]
    for function in of_type(resources, FUNCTION):
        if target.referenced_by(function):
            starters.append(Target(function, _names(known_str(function.props, "name"))))
    found = []
    for candidate in of_type(resources, EVENT_TARGET, SCHEDULE):
        if any(s.referenced_by(candidate) for s in starters):
            found.append(candidate)
    return found
