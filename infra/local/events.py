"""Route events to the emulator's EventBridge rules, as EventBridge would, at a simulated time.

moto stores rules and targets; it does not deliver to Lambda without Docker. The router reads
the rules and targets back through the API, matches each event with moto's own pattern matcher
(`moto.events.models.EventPattern`), and calls the local callable registered for each target's
ARN. Every target of every matching rule yields a `Delivery`, including the ones that could not
be delivered, so nothing is dropped silently. Also here: the AWS events the kit's handlers
listen to, built in the shape AWS sends them.
"""

from __future__ import annotations

import json
import re
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.events.models import EventPattern

from infra.settings import rate_parts

Target = Callable[[Any], Any]
SCHEDULED_EVENT = "Scheduled Event"
MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
ENDPOINT_STATE_CHANGE = "SageMaker Endpoint State Change"
PIPELINE_EXECUTION_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"


@dataclass(frozen=True)
class Delivery:
    """One target of one rule for one event: what it received and returned, or why not."""

    rule: str
    target_id: str
    target_arn: str
    payload: Any = None
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class EventRouter:
    events: Any
    """An EventBridge client bound to the emulator."""
    targets: Mapping[str, Target]
    """Target ARN -> callable, e.g. `handlers_from_plan(plan)`."""
    event_bus: str = "default"
    _anchors: dict[str, datetime] = field(default_factory=dict)
    _reported: set[str] = field(default_factory=set)

    def publish(self, event: Mapping[str, Any]) -> list[Delivery]:
        """Deliver `event` to the targets of every enabled rule whose pattern matches it."""
        deliveries = []
        for rule in self._rules():
            if rule.get("State") != "ENABLED" or not rule.get("EventPattern"):
                continue
            if EventPattern.load(rule["EventPattern"]).matches_event(dict(event)):
                deliveries += self._deliver(rule, event)
        return deliveries

    def fire_schedules(self, now: datetime) -> list[Delivery]:
        """Fire every scheduled rule whose next time has come by `now`.

        A `rate(N unit)` rule first fires one period after the router first sees it (as a new
        rule does in AWS), then once per period; a jump over several periods fires each one,
        with the event's time set to when it was due. Cron expressions are not fired: each
        such rule is reported once as an undelivered `Delivery`.
        """
        if now.tzinfo is None:
            raise ValueError(f"fire_schedules(now={now!r}): `now` must be timezone-aware (UTC)")
        deliveries = []
        for rule in self._rules():
            expression = rule.get("ScheduleExpression")
            if rule.get("State") != "ENABLED" or not expression:
                continue
            period = schedule_period(expression)
            if period is None:
                if rule["Arn"] not in self._reported:
                    self._reported.add(rule["Arn"])
                    deliveries.append(
                        Delivery(
                            rule["Name"],
                            "",
                            "",
                            error=f"schedule '{expression}' is not fired locally (rate() only)",
                        )
                    )
                continue
            anchor = self._anchors.setdefault(rule["Arn"], now)
            while anchor + period <= now:
                anchor += period
                self._anchors[rule["Arn"]] = anchor
                deliveries += self._deliver(rule, scheduled_event(rule["Arn"], anchor))
        return deliveries

    def _rules(self) -> list[dict[str, Any]]:
        pages = self.events.get_paginator("list_rules").paginate(EventBusName=self.event_bus)
        return [rule for page in pages for rule in page.get("Rules", [])]

    def _deliver(self, rule: dict[str, Any], event: Mapping[str, Any]) -> list[Delivery]:
        pages = self.events.get_paginator("list_targets_by_rule").paginate(
            Rule=rule["Name"], EventBusName=self.event_bus
        )
        return [
            self._invoke(rule["Name"], target, event)
            for page in pages
            for target in page.get("Targets", [])
        ]

    def _invoke(self, rule: str, target: dict[str, Any], event: Mapping[str, Any]) -> Delivery:
        target_id, arn = target["Id"], target["Arn"]
        try:
            payload = _payload(target, event)
        except ValueError as error:
            return Delivery(rule, target_id, arn, error=str(error))
        call = self.targets.get(arn)
        if call is None:
            return Delivery(
                rule, target_id, arn, payload, error=f"no local target is registered for {arn}"
            )
        try:
            result = call(payload)
        except Exception:  # noqa: BLE001 - EventBridge records a failed invocation; so do we
            return Delivery(rule, target_id, arn, payload, error=traceback.format_exc())
        return Delivery(rule, target_id, arn, payload, result)


def _payload(target: Mapping[str, Any], event: Mapping[str, Any]) -> Any:
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        return _input_path(target["InputPath"], event)
    if "InputTransformer" in target:
        return transform_input(target["InputTransformer"], event)
    return dict(event)


def transform_input(transformer: Mapping[str, Any], event: Mapping[str, Any]) -> Any:
    """EventBridge's input transformer: each `<name>` of the template becomes the value at its
    path, as JSON, or as text when the placeholder is a whole JSON string (`"<name>"`)."""
    values = {
        name: _input_path(path, event)
        for name, path in (transformer.get("InputPathsMap") or {}).items()
    }
    template = transformer["InputTemplate"]

    def fill(match: re.Match[str]) -> str:
        value = values.get(match["name"])
        if match["quoted"]:
            return '"' + ("" if value is None else str(value)) + '"'
        return json.dumps(value)

    text = re.sub(r'(?P<quoted>")?<(?P<name>[\w.-]+)>(?(quoted)")', fill, template)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _input_path(path: str, event: Mapping[str, Any]) -> Any:
    """The `$.a.b` subset of JSONPath that InputPath is used with."""
    if path == "$":
        return dict(event)
    if not path.startswith("$."):
        raise ValueError(f"InputPath '{path}' is not of the form $.field.field")
    value: Any = event
    for part in path[2:].split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def schedule_period(expression: str) -> timedelta | None:
    """The period of a `rate(N unit)` expression; None for anything else (cron)."""
    parts = rate_parts(expression)
    if parts is None:
        return None
    count, written, seconds = parts
    unit = written.rstrip("s")
    if count < 1 or (count == 1) != (written == unit):
        raise ValueError(
            f"'{expression}': EventBridge wants 'rate(1 {unit})' and 'rate(N {unit}s)' for N > 1"
        )
    return timedelta(seconds=seconds)


def _envelope(
    detail_type: str, source: str, resource_arn: str, now: datetime, detail: dict[str, Any]
) -> dict[str, Any]:
    parts = resource_arn.split(":")
    event_id = uuid.uuid5(
        uuid.NAMESPACE_URL,
        f"{detail_type}/{resource_arn}/{now.isoformat()}/"
        f"{json.dumps(detail, sort_keys=True, default=str)}",
    )
    return {
        "version": "0",
        "id": str(event_id),
        "detail-type": detail_type,
        "source": source,
        "account": parts[4],
        "time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": parts[3],
        "resources": [resource_arn],
        "detail": detail,
    }


def scheduled_event(rule_arn: str, now: datetime) -> dict[str, Any]:
    """What EventBridge sends a scheduled rule's targets that have no `Input`."""
    return _envelope(SCHEDULED_EVENT, "aws.events", rule_arn, now, {})


def model_package_state_change(
    package_arn: str,
    group: str,
    status: str,
    *,
    now: datetime,
    package: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The event SageMaker sends when a model package's approval status changes.

    `package`, a `DescribeModelPackage` response, adds the fields AWS copies from it
    (description, inference specification, metrics, metadata); times become epoch milliseconds.
    """
    version = package_arn.rsplit("/", 1)[-1]
    now_ms = int(now.timestamp() * 1000)
    detail: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelPackageArn": package_arn,
        "CreationTime": now_ms,
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
        "CertifyForMarketplace": False,
        "ModelApprovalStatus": status,
        "LastModifiedTime": now_ms,
    }
    if version.isdigit():
        detail["ModelPackageVersion"] = int(version)
    for key, value in (package or {}).items():
        if key != "ResponseMetadata":
            detail[key] = _epoch_ms(value)
    detail["ModelApprovalStatus"] = status
    detail["LastModifiedTime"] = now_ms
    return _envelope(MODEL_PACKAGE_STATE_CHANGE, "aws.sagemaker", package_arn, now, detail)


def endpoint_state_change(
    endpoint_arn: str, endpoint_name: str, status: str, *, now: datetime
) -> dict[str, Any]:
    """The event SageMaker sends when an endpoint's status changes (e.g. to IN_SERVICE)."""
    now_ms = int(now.timestamp() * 1000)
    detail = {
        "EndpointName": endpoint_name,
        "EndpointArn": endpoint_arn,
        "EndpointStatus": status,
        "CreationTime": now_ms,
        "LastModifiedTime": now_ms,
    }
    return _envelope(ENDPOINT_STATE_CHANGE, "aws.sagemaker", endpoint_arn, now, detail)


def pipeline_execution_status_change(
    pipeline_arn: str,
    execution_arn: str,
    status: str,
    *,
    now: datetime,
    started: datetime,
    description: str = "",
) -> dict[str, Any]:
    """The event SageMaker sends when a pipeline execution ends (it carries no failure reason:
    a consumer describes the execution for that)."""
    detail = {
        "pipelineArn": pipeline_arn,
        "pipelineExecutionArn": execution_arn,
        "pipelineExecutionDisplayName": execution_arn.rsplit("/", 1)[-1],
        "pipelineExecutionDescription": description,
        "currentPipelineExecutionStatus": status,
        "previousPipelineExecutionStatus": "Executing",
        "executionStartTime": started.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "executionEndTime": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return _envelope(PIPELINE_EXECUTION_STATUS_CHANGE, "aws.sagemaker", execution_arn, now, detail)


def _epoch_ms(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: _epoch_ms(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_epoch_ms(v) for v in value]
    return value
