"""The alarm evaluator decides states as CloudWatch does, over simulated days."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.local.alarms import ALARM_STATE_CHANGE, AlarmEvaluationError, AlarmEvaluator
from infra.local.emulator import Emulator
from infra.local.provision import provision
from tests.local import plans

DAY = timedelta(days=1)
START = datetime(2026, 3, 1, tzinfo=UTC)
DIMENSIONS = [{"Name": "Model", "Value": "recommender"}]


def _alarm(cloud: Emulator, name: str, **overrides: Any) -> None:
    """Through provisioning, so the alarm starts in INSUFFICIENT_DATA as in CloudWatch."""
    inputs = {
        "name": name,
        "namespace": "MLOps/Model",
        "metricName": "FeatureDriftMaxPsi",
        "dimensions": {"Model": "recommender"},
        "statistic": "Maximum",
        "period": 86400.0,
        "evaluationPeriods": 3.0,
        "datapointsToAlarm": 2.0,
        "threshold": 0.2,
        "comparisonOperator": "GreaterThanThreshold",
        "treatMissingData": "missing",
    } | overrides
    provision(
        plans.plan(plans.resource("aws:cloudwatch/metricAlarm:MetricAlarm", name, inputs)), cloud
    )


def _publish(cloud: Emulator, day: int, value: float, metric: str = "FeatureDriftMaxPsi") -> None:
    cloud.client("cloudwatch").put_metric_data(
        Namespace="MLOps/Model",
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": DIMENSIONS,
                "Value": value,
                "Timestamp": START + day * DAY + timedelta(hours=6),
            }
        ],
    )


def _state(cloud: Emulator, name: str) -> dict[str, Any]:
    return cloud.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]


def test_alarm_fires_after_two_breaching_days_of_three_and_recovers(cloud: Emulator) -> None:
    _alarm(cloud, "drift")
    evaluator = AlarmEvaluator(cloud.client("cloudwatch"))
    transitions = []
    for day, psi in enumerate([0.1, 0.3, 0.5, 0.1, 0.1]):
        _publish(cloud, day, psi)
        events = evaluator.evaluate(START + (day + 1) * DAY)
        transitions.append(
            [(e["detail"]["previousState"]["value"], e["detail"]["state"]["value"]) for e in events]
        )

    assert transitions == [
        [("INSUFFICIENT_DATA", "OK")],
        [],  # one breaching day of two seen: below datapoints-to-alarm
        [("OK", "ALARM")],
        [],  # 0.3, 0.5, 0.1: still two of three
        [("ALARM", "OK")],
    ]
    assert _state(cloud, "drift")["StateValue"] == "OK"


def test_state_change_is_recorded_in_the_emulator_and_emitted_in_cloudwatchs_format(
    cloud: Emulator,
) -> None:
    _alarm(
        cloud,
        "drift",
        evaluationPeriods=1.0,
        datapointsToAlarm=1.0,
        alarmDescription="drift above 0.2",
    )
    _publish(cloud, 0, 0.35)
    now = START + DAY

    (event,) = AlarmEvaluator(cloud.client("cloudwatch")).evaluate(now)

    alarm = _state(cloud, "drift")
    assert alarm["StateValue"] == "ALARM"
    assert "greater than the threshold (0.2)" in alarm["StateReason"]
    assert json.loads(alarm["StateReasonData"])["recentDatapoints"] == [0.35]
    assert event["source"] == "aws.cloudwatch"
    assert event["detail-type"] == ALARM_STATE_CHANGE
    assert event["resources"] == [alarm["AlarmArn"]]
    assert event["time"] == "2026-03-02T00:00:00Z"
    detail = event["detail"]
    assert detail["alarmName"] == "drift"
    assert detail["state"]["value"] == "ALARM"
    assert detail["state"]["timestamp"] == "2026-03-02T00:00:00.000+0000"
    assert detail["state"]["reason"] == alarm["StateReason"]
    assert detail["previousState"]["value"] == "INSUFFICIENT_DATA"
    assert detail["configuration"]["description"] == "drift above 0.2"
    metric = detail["configuration"]["metrics"][0]["metricStat"]
    assert metric == {
        "metric": {
            "namespace": "MLOps/Model",
            "name": "FeatureDriftMaxPsi",
            "dimensions": {"Model": "recommender"},
        },
        "period": 86400,
        "stat": "Maximum",
    }


@pytest.mark.parametrize(
    ("treatment", "expected", "emits"),
    [
        ("missing", "INSUFFICIENT_DATA", False),
        ("ignore", "INSUFFICIENT_DATA", False),
        ("breaching", "ALARM", True),
        ("notBreaching", "OK", True),
    ],
)
def test_periods_without_data_follow_treat_missing_data(
    cloud: Emulator,
    treatment: str,
    expected: str,
    emits: bool,
) -> None:
    _alarm(cloud, "silent", treatMissingData=treatment)

    events = AlarmEvaluator(cloud.client("cloudwatch")).evaluate(START + 3 * DAY)

    assert _state(cloud, "silent")["StateValue"] == expected
    assert bool(events) is emits


def test_ignore_keeps_the_last_state_through_a_gap(cloud: Emulator) -> None:
    _alarm(cloud, "gappy", treatMissingData="ignore", evaluationPeriods=1.0, datapointsToAlarm=1.0)
    evaluator = AlarmEvaluator(cloud.client("cloudwatch"))
    _publish(cloud, 0, 0.9)
    assert [e["detail"]["state"]["value"] for e in evaluator.evaluate(START + DAY)] == ["ALARM"]

    assert evaluator.evaluate(START + 5 * DAY) == []
    assert _state(cloud, "gappy")["StateValue"] == "ALARM"


def test_p99_alarm_uses_the_emulators_samples(cloud: Emulator) -> None:
    _alarm(
        cloud,
        "latency",
        metricName="ModelLatency",
        statistic=None,
        extendedStatistic="p99",
        period=60.0,
        evaluationPeriods=1.0,
        datapointsToAlarm=1.0,
        threshold=500.0,
    )
    minute = START + timedelta(minutes=1)
    cloud.client("cloudwatch").put_metric_data(
        Namespace="MLOps/Model",
        MetricData=[
            {
                "MetricName": "ModelLatency",
                "Dimensions": DIMENSIONS,
                "Timestamp": minute,
                "Values": [100.0, 900.0],
                "Counts": [98.0, 2.0],
            }
        ],
    )

    with pytest.raises(AlarmEvaluationError, match="latency"):
        AlarmEvaluator(cloud.client("cloudwatch")).evaluate(minute + timedelta(minutes=1))
    evaluator = AlarmEvaluator(cloud.client("cloudwatch"), cloud.metric_samples)
    events = evaluator.evaluate(minute + timedelta(minutes=1))

    assert [e["detail"]["state"]["value"] for e in events] == ["ALARM"]
    assert evaluator.evaluations[0].datapoints[0].value == 900.0


def test_alarms_it_cannot_evaluate_are_reported_not_dropped(cloud: Emulator) -> None:
    cloud.client("cloudwatch").put_metric_alarm(
        AlarmName="math",
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
        Metrics=[{"Id": "e1", "Expression": "1", "ReturnData": True}],
    )
    evaluator = AlarmEvaluator(cloud.client("cloudwatch"))

    assert evaluator.evaluate(START) == []
    assert evaluator.evaluations[0].skipped == "metric math alarms are not evaluated locally"


def test_naive_times_are_refused(cloud: Emulator) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        AlarmEvaluator(cloud.client("cloudwatch")).evaluate(datetime(2026, 3, 1))
