"""ModelAlarms under mocks: every alarm notifies someone, on the metric the jobs publish."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.components.model_alarms import ModelAlarms, ModelAlarmsArgs
from infra.plan.engine import Capture, Resource
from infra.settings import schedule_period_seconds
from ml_code.monitoring import metrics
from tests.infra.platform import ACCOUNT, TOPIC, platform_refs
from tests.infra.resolved import resolved

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ENDPOINT = "mlops-dev-recsys"


def _capture(**args: Any) -> Capture:
    platform = platform_refs()
    return resolved(
        lambda: ModelAlarms(
            "recsys-alarms",
            ModelAlarmsArgs(platform=platform, model_name="recsys", endpoint_name=ENDPOINT, **args),
        )
    )


@pytest.fixture(scope="module")
def alarms() -> dict[str, Resource]:
    return {r.inputs["tags"]["AlarmKind"]: r for r in _capture().by_type(ALARM)}


def _dimensions(alarm: Resource) -> dict[str, str]:
    return alarm.inputs["dimensions"]


def test_every_alarm_notifies_the_platform_topic_on_alarm_and_on_recovery(alarms):
    assert set(alarms) == {"drift", "quality", "errors", "latency", "invocations"}
    for alarm in alarms.values():
        assert alarm.inputs["alarmActions"] == [TOPIC]
        assert alarm.inputs["okActions"] == [TOPIC]
        assert alarm.inputs["actionsEnabled"] is True


def test_alarm_names_follow_the_contract_the_retraining_rule_and_rollback_rely_on():
    names: dict[str, Any] = {}

    def program() -> None:
        component = ModelAlarms(
            "recsys-alarms",
            ModelAlarmsArgs(platform=platform_refs(), model_name="recsys", endpoint_name=ENDPOINT),
        )
        names.update(
            drift=component.drift_alarm_name,
            quality=component.quality_alarm_name,
            errors=component.errors_alarm_name,
            latency=component.latency_alarm_name,
            invocations=component.invocations_alarm_name,
        )

    capture = resolved(program)
    assert names == {kind: f"mlops-dev-recsys-{kind}" for kind in names}
    assert {r.inputs["name"] for r in capture.by_type(ALARM)} == set(names.values())


def test_drift_alarm_watches_the_max_psi_the_drift_job_publishes(alarms):
    drift = alarms["drift"].inputs
    assert (drift["namespace"], drift["metricName"]) == (
        metrics.NAMESPACE,
        metrics.FEATURE_DRIFT_MAX_PSI,
    )
    assert _dimensions(alarms["drift"]) == {
        metrics.DIMENSION_ENDPOINT: ENDPOINT,
        metrics.DIMENSION_MODEL: "recsys",
    }
    assert drift["comparisonOperator"] == "GreaterThanThreshold"
    assert drift["threshold"] == 0.2


def test_quality_alarm_fires_on_a_shortfall_of_two_standard_errors_from_the_held_out_level(
    alarms,
):
    quality = alarms["quality"].inputs
    assert quality["metricName"] == metrics.QUALITY_SHORTFALL_Z
    assert _dimensions(alarms["quality"]) == _dimensions(alarms["drift"])
    assert quality["statistic"] == "Maximum"
    assert quality["comparisonOperator"] == "GreaterThanThreshold"
    assert quality["threshold"] == 2.0
    assert quality["treatMissingData"] == "notBreaching"


def test_quality_alarm_threshold_is_in_standard_errors_not_the_approval_floor():
    capture = _capture(quality_alarm_threshold=3.0, quality_floor=0.35)
    quality = next(r for r in capture.by_type(ALARM) if r.inputs["tags"]["AlarmKind"] == "quality")
    assert quality.inputs["threshold"] == 3.0


def test_a_quality_alarm_threshold_that_is_not_positive_is_rejected():
    with pytest.raises(ValueError, match="quality_alarm_threshold is 0"):
        _capture(quality_alarm_threshold=0.0)


def test_quality_alarm_waits_for_the_configured_periods_of_the_monitoring_schedule():
    capture = _capture(quality_alarm_periods=3, monitoring_period_seconds=86400)
    quality = next(r for r in capture.by_type(ALARM) if r.inputs["tags"]["AlarmKind"] == "quality")
    assert quality.inputs["period"] == 86400
    assert quality.inputs["evaluationPeriods"] == quality.inputs["datapointsToAlarm"] == 3


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 day)", 86400),
        ("rate(6 hours)", 21600),
        ("rate(30 minutes)", 1800),
        ("cron(0 2 * * ? *)", 86400),
    ],
)
def test_alarm_periods_follow_the_monitoring_schedule(expression: str, seconds: int) -> None:
    assert schedule_period_seconds(expression) == seconds


def test_errors_alarm_sums_5xx_errors_of_the_endpoint_variant(alarms):
    errors = alarms["errors"].inputs
    assert (errors["namespace"], errors["metricName"], errors["statistic"]) == (
        "AWS/SageMaker",
        "Invocation5XXErrors",
        "Sum",
    )
    assert _dimensions(alarms["errors"]) == {"EndpointName": ENDPOINT, "VariantName": "AllTraffic"}
    assert errors["threshold"] == 5.0
    assert errors["datapointsToAlarm"] <= errors["evaluationPeriods"]


def test_latency_alarm_compares_p99_in_microseconds():
    latency = {
        r.inputs["tags"]["AlarmKind"]: r for r in _capture(latency_p99_ms=250).by_type(ALARM)
    }["latency"].inputs
    assert latency["metricName"] == "ModelLatency"
    assert latency["extendedStatistic"] == "p99"
    assert "statistic" not in latency
    assert latency["threshold"] == 250_000.0


def test_only_the_missing_invocations_alarm_treats_silence_as_breaching(alarms):
    invocations = alarms["invocations"].inputs
    assert invocations["treatMissingData"] == "breaching"
    assert (
        invocations["statistic"],
        invocations["comparisonOperator"],
        invocations["threshold"],
    ) == ("SampleCount", "LessThanThreshold", 1.0)
    assert invocations["period"] == 3600.0
    for kind in ("drift", "quality", "errors", "latency"):
        assert alarms[kind].inputs["treatMissingData"] == "notBreaching", kind


def test_alarm_arns_are_built_from_names_so_rules_can_match_them_at_preview():
    arns: list[Any] = []

    def program() -> None:
        component = ModelAlarms(
            "recsys-alarms",
            ModelAlarmsArgs(platform=platform_refs(), model_name="recsys", endpoint_name=ENDPOINT),
        )
        component.drift_alarm_arn.apply(arns.append)

    resolved(program)
    assert arns == [f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:mlops-dev-recsys-drift"]


def test_dashboard_shows_drift_quality_shortfall_invocations_errors_and_latency():
    (dashboard,) = _capture().by_type("aws:cloudwatch/dashboard:Dashboard")
    assert dashboard.inputs["dashboardName"] == "mlops-dev-recsys"
    widgets = json.loads(dashboard.inputs["dashboardBody"])["widgets"]
    shown = [w["properties"]["metrics"][0][1] for w in widgets]
    assert shown == [
        metrics.FEATURE_DRIFT_MAX_PSI,
        metrics.MODEL_NDCG_AT_10,
        metrics.QUALITY_SHORTFALL_Z,
        "Invocations",
        "Invocation5XXErrors",
        "ModelLatency",
    ]
    assert all(w["properties"]["region"] == "us-east-1" for w in widgets)


def test_every_alarm_carries_name_and_platform_tags(alarms):
    for alarm in alarms.values():
        assert alarm.inputs["tags"]["Name"] == alarm.name
        assert alarm.inputs["tags"]["Environment"] == "dev"


def test_a_quality_metric_the_jobs_do_not_publish_is_rejected():
    with pytest.raises(ValueError, match="quality_metric is 'accuracy'"):
        _capture(quality_metric="accuracy")
