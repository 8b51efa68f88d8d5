"""The event router delivers to exactly the rules whose stored patterns match."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.local.alarms import alarm_state_change_event
from infra.local.emulator import Emulator
from infra.local.events import (
    MODEL_PACKAGE_STATE_CHANGE,
    EventRouter,
    model_package_state_change,
    schedule_period,
)
from infra.local.handlers import handlers_from_plan
from infra.local.provision import provision
from tests.local import plans

NOW = datetime(2026, 3, 1, tzinfo=UTC)
ARN = "arn:aws:lambda:us-east-1:123456789012:function:"


def _rule(
    cloud: Emulator,
    name: str,
    target: str,
    *,
    pattern: dict[str, Any] | None = None,
    schedule: str | None = None,
    constant: dict[str, Any] | None = None,
) -> None:
    events = cloud.client("events")
    if pattern is not None:
        events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    else:
        events.put_rule(Name=name, ScheduleExpression=schedule)
    entry = {"Id": f"{name}-target", "Arn": target}
    if constant is not None:
        entry["Input"] = json.dumps(constant)
    events.put_targets(Rule=name, Targets=[entry])


def _alarm_pattern(alarm: str, state: str) -> dict[str, Any]:
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": [alarm], "state": {"value": [state]}},
    }


def _alarm_event(alarm: str, state: str) -> dict[str, Any]:
    described = {
        "AlarmName": alarm,
        "AlarmArn": f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm}",
        "Namespace": "MLOps/Model",
        "MetricName": "Psi",
        "Period": 3600,
        "Statistic": "Maximum",
        "Dimensions": [],
    }
    return alarm_state_change_event(
        described, {"value": state, "reason": "test"}, {"value": "OK", "reason": ""}, NOW
    )


class Recorder:
    def __init__(self) -> None:
        self.calls: dict[str, list[Any]] = {}

    def target(self, name: str) -> Any:
        def call(payload: Any) -> str:
            self.calls.setdefault(name, []).append(payload)
            return f"{name} ran"

        return call


def test_alarm_event_reaches_only_the_rule_matching_its_name_and_state(cloud: Emulator) -> None:
    recorder = Recorder()
    _rule(cloud, "drift-alarm", ARN + "retrain", pattern=_alarm_pattern("drift", "ALARM"))
    _rule(cloud, "latency-alarm", ARN + "rollback", pattern=_alarm_pattern("latency", "ALARM"))
    _rule(
        cloud,
        "drift-ok",
        ARN + "notify",
        pattern=_alarm_pattern("drift", "OK"),
        constant={"note": "drift recovered"},
    )
    router = EventRouter(
        cloud.client("events"),
        {ARN + name: recorder.target(name) for name in ("retrain", "rollback", "notify")},
    )
    event = _alarm_event("drift", "ALARM")

    deliveries = router.publish(event)

    assert [(d.rule, d.result) for d in deliveries] == [("drift-alarm", "retrain ran")]
    assert recorder.calls == {"retrain": [event]}

    router.publish(_alarm_event("drift", "OK"))
    assert recorder.calls["notify"] == [{"note": "drift recovered"}]
    assert "rollback" not in recorder.calls


def test_unknown_targets_and_failing_targets_are_reported(cloud: Emulator) -> None:
    _rule(cloud, "drift-alarm", ARN + "nowhere", pattern=_alarm_pattern("drift", "ALARM"))
    _rule(cloud, "drift-broken", ARN + "broken", pattern=_alarm_pattern("drift", "ALARM"))

    def broken(payload: Any) -> None:
        raise RuntimeError("handler bug")

    deliveries = EventRouter(cloud.client("events"), {ARN + "broken": broken}).publish(
        _alarm_event("drift", "ALARM")
    )

    by_rule = {d.rule: d for d in deliveries}
    assert by_rule["drift-alarm"].error == f"no local target is registered for {ARN}nowhere"
    assert "RuntimeError: handler bug" in (by_rule["drift-broken"].error or "")
    assert not any(d.ok for d in deliveries)


def test_a_daily_schedule_fires_once_per_simulated_day(cloud: Emulator) -> None:
    recorder = Recorder()
    _rule(cloud, "daily", ARN + "retrain", schedule="rate(1 day)", constant={"source": "schedule"})
    _rule(cloud, "hourly-cron", ARN + "retrain", schedule="cron(0 * * * ? *)")
    router = EventRouter(cloud.client("events"), {ARN + "retrain": recorder.target("retrain")})

    first = router.fire_schedules(NOW)
    fired = [len(router.fire_schedules(NOW + timedelta(hours=h))) for h in (12, 24, 24, 48)]
    jump = router.fire_schedules(NOW + timedelta(days=4))

    assert [d.error for d in first] == [
        "schedule 'cron(0 * * * ? *)' is not fired locally (rate() only)"
    ]
    assert fired == [0, 1, 0, 1]
    assert [d.rule for d in jump] == ["daily", "daily"]
    assert recorder.calls["retrain"] == [{"source": "schedule"}] * 4


def test_scheduled_event_without_input_carries_the_due_time(cloud: Emulator) -> None:
    recorder = Recorder()
    _rule(cloud, "weekly", ARN + "retrain", schedule="rate(7 days)")
    router = EventRouter(cloud.client("events"), {ARN + "retrain": recorder.target("retrain")})

    router.fire_schedules(NOW)
    router.fire_schedules(NOW + timedelta(days=8))

    (event,) = recorder.calls["retrain"]
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["time"] == "2026-03-08T00:00:00Z"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/weekly"]


@pytest.mark.parametrize("expression", ["rate(1 days)", "rate(2 day)", "rate(0 days)"])
def test_malformed_rates_are_refused_as_eventbridge_refuses_them(expression: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        schedule_period(expression)


def test_approval_event_has_sagemakers_shape_and_reaches_the_deploy_rule(cloud: Emulator) -> None:
    recorder = Recorder()
    group = "mlops-local-recommender"
    _rule(
        cloud,
        "approved",
        ARN + "deploy",
        pattern={
            "source": ["aws.sagemaker"],
            "detail-type": [MODEL_PACKAGE_STATE_CHANGE],
            "detail": {"ModelPackageGroupName": [group], "ModelApprovalStatus": ["Approved"]},
        },
    )
    router = EventRouter(cloud.client("events"), {ARN + "deploy": recorder.target("deploy")})
    package = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/3"

    rejected = model_package_state_change(package, group, "Rejected", now=NOW)
    approved = model_package_state_change(package, group, "Approved", now=NOW)

    assert router.publish(rejected) == []
    assert [d.ok for d in router.publish(approved)] == [True]
    assert approved["source"] == "aws.sagemaker"
    assert approved["detail-type"] == MODEL_PACKAGE_STATE_CHANGE
    assert approved["resources"] == [package]
    assert approved["account"] == "123456789012"
    detail = approved["detail"]
    assert detail["ModelPackageArn"] == package
    assert detail["ModelPackageGroupName"] == group
    assert detail["ModelPackageVersion"] == 3
    assert detail["ModelApprovalStatus"] == "Approved"
    assert detail["LastModifiedTime"] == int(NOW.timestamp() * 1000)


def test_provisioned_rule_delivers_to_the_plans_function_in_process(cloud: Emulator) -> None:
    plan = plans.platform_plan()
    provision(plan, cloud)
    router = EventRouter(cloud.client("events"), handlers_from_plan(plan))

    (delivery,) = router.publish(_alarm_event("mlops-local-drift", "ALARM"))

    assert delivery.ok, delivery.error
    assert delivery.target_arn == plans.FUNCTION_ARN
    assert delivery.result["pipeline"] == "mlops-local-recommender"
    assert delivery.result["event"]["detail"]["alarmName"] == "mlops-local-drift"
