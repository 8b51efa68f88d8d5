"""Evaluate the emulator's metric alarms the way CloudWatch does, at a simulated time.

moto stores alarms and metrics but never evaluates one against the other. The evaluator reads
both back through the CloudWatch API, decides each alarm's state from its last
`EvaluationPeriods` periods ending at `now`, writes changes back with `SetAlarmState`, and
returns the `CloudWatch Alarm State Change` events AWS would put on the default event bus.
Time is a parameter, never the wall clock: a scenario publishes metrics day by day and
evaluates at the end of each simulated day.

Rules, per AWS's documentation: an alarm goes to ALARM when at least `DatapointsToAlarm` of the
evaluated periods breach; missing periods count as breaching or not under `breaching` and
`notBreaching`, and are left out under `missing` and `ignore`; with no datapoint at all,
`missing` gives INSUFFICIENT_DATA and `ignore` keeps the current state; otherwise OK. Periods end
at `now` exactly (CloudWatch aligns them to the clock; a scenario picks `now` on a boundary).
"""

from __future__ import annotations

import json
import math
import operator
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
SampleSource = Callable[[str, str, Mapping[str, str], datetime, datetime], list[float]]
"""(namespace, metric, dimensions, start, end) -> raw values; `Emulator.metric_samples` is one."""

_COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}
_TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")


class AlarmEvaluationError(RuntimeError):
    """An alarm cannot be evaluated as configured; the message names the alarm."""


@dataclass(frozen=True)
class Datapoint:
    start: datetime
    value: float | None


@dataclass(frozen=True)
class Evaluation:
    """One alarm's outcome in one round; `skipped` says why an alarm was not evaluated."""

    alarm_name: str
    previous_state: str
    state: str
    datapoints: tuple[Datapoint, ...] = ()
    breaching: int = 0
    skipped: str = ""

    @property
    def changed(self) -> bool:
        return self.state != self.previous_state


@dataclass
class AlarmEvaluator:
    """`evaluate(now)` once per simulated tick; keep one evaluator for the whole scenario."""

    cloudwatch: Any
    samples: SampleSource | None = None
    """Where percentiles come from when the API returns none (moto 5.2.5 computes none)."""
    stamp: Callable[[str, datetime], None] | None = None
    """Dates a state change in the emulator (`Emulator.stamp_alarm_state`): CloudWatch stamps
    it with the time of the evaluation, which here is simulated."""
    evaluations: list[Evaluation] = field(default_factory=list)
    """The last round's outcome for every alarm, evaluated or not."""
    _state_times: dict[str, datetime] = field(default_factory=dict)

    def evaluate(self, now: datetime) -> list[dict[str, Any]]:
        """Evaluate every metric alarm at `now`; return one event per state change."""
        if now.tzinfo is None:
            raise ValueError(f"evaluate(now={now!r}): `now` must be timezone-aware (UTC)")
        self.evaluations = []
        events = []
        for alarm in self._alarms():
            evaluation = self._evaluate_alarm(alarm, now)
            self.evaluations.append(evaluation)
            if evaluation.changed and not evaluation.skipped:
                events.append(self._record(alarm, evaluation, now))
        return events

    def _alarms(self) -> list[dict[str, Any]]:
        pages = self.cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmTypes=["MetricAlarm"]
        )
        return [alarm for page in pages for alarm in page.get("MetricAlarms", [])]

    def _evaluate_alarm(self, alarm: dict[str, Any], now: datetime) -> Evaluation:
        name, current = alarm["AlarmName"], alarm["StateValue"]
        unsupported = _unsupported(alarm)
        if unsupported:
            return Evaluation(name, current, current, skipped=unsupported)
        periods = int(alarm["EvaluationPeriods"])
        needed = int(alarm.get("DatapointsToAlarm") or periods)
        period = timedelta(seconds=int(alarm["Period"]))
        datapoints = tuple(
            Datapoint(start, self._value(alarm, start, start + period))
            for start in (now - period * (periods - i) for i in range(periods))
        )
        compare = _COMPARISONS[alarm["ComparisonOperator"]][0]
        treatment = alarm.get("TreatMissingData") or "missing"
        verdicts = [
            compare(p.value, alarm["Threshold"])
            if p.value is not None
            else {"breaching": True, "notBreaching": False}.get(treatment)
            for p in datapoints
        ]
        present = [v for v in verdicts if v is not None]
        breaching = sum(present)
        if breaching >= needed:
            state = "ALARM"
        elif not present:
            state = "INSUFFICIENT_DATA" if treatment == "missing" else current
        else:
            state = "OK"
        return Evaluation(name, current, state, datapoints, breaching)

    def _value(self, alarm: dict[str, Any], start: datetime, end: datetime) -> float | None:
        query: dict[str, Any] = {
            "Namespace": alarm["Namespace"],
            "MetricName": alarm["MetricName"],
            "Dimensions": alarm.get("Dimensions", []),
            "StartTime": start,
            "EndTime": end,
            "Period": int(alarm["Period"]),
        }
        if alarm.get("Unit"):
            query["Unit"] = alarm["Unit"]
        statistic = alarm.get("Statistic")
        if statistic:
            points = self.cloudwatch.get_metric_statistics(Statistics=[statistic], **query)
            values = [p[statistic] for p in points["Datapoints"] if statistic in p]
            return values[0] if values else None
        percentile = alarm["ExtendedStatistic"]
        points = self.cloudwatch.get_metric_statistics(ExtendedStatistics=[percentile], **query)
        values = [
            p["ExtendedStatistics"][percentile]
            for p in points["Datapoints"]
            if percentile in p.get("ExtendedStatistics", {})
        ]
        if values:
            return values[0]
        if not points["Datapoints"]:
            return None
        if self.samples is None:
            raise AlarmEvaluationError(
                f"alarm '{alarm['AlarmName']}': CloudWatch returned no {percentile} for its "
                "datapoints; give the evaluator a sample source (samples=emulator.metric_samples)"
            )
        dimensions = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
        raw = self.samples(alarm["Namespace"], alarm["MetricName"], dimensions, start, end)
        return percentile_of(raw, percentile) if raw else None

    def _record(
        self, alarm: dict[str, Any], evaluation: Evaluation, now: datetime
    ) -> dict[str, Any]:
        reason = _reason(alarm, evaluation)
        reason_data = json.dumps(_reason_data(alarm, evaluation, now), separators=(",", ":"))
        self.cloudwatch.set_alarm_state(
            AlarmName=alarm["AlarmName"],
            StateValue=evaluation.state,
            StateReason=reason[:1023],
            StateReasonData=reason_data,
        )
        if self.stamp is not None:
            self.stamp(alarm["AlarmName"], now)
        previous_time = self._state_times.get(alarm["AlarmName"]) or alarm.get(
            "StateUpdatedTimestamp"
        )
        self._state_times[alarm["AlarmName"]] = now
        previous = {
            "value": alarm["StateValue"],
            "reason": alarm.get("StateReason", ""),
            "timestamp": _state_time(previous_time) if previous_time else None,
        }
        if alarm.get("StateReasonData"):
            previous["reasonData"] = alarm["StateReasonData"]
        state = {
            "value": evaluation.state,
            "reason": reason,
            "reasonData": reason_data,
            "timestamp": _state_time(now),
        }
        return alarm_state_change_event(alarm, state, previous, now)


def alarm_state_change_event(
    alarm: Mapping[str, Any],
    state: Mapping[str, Any],
    previous_state: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The event CloudWatch puts on the default bus when `alarm` changes state."""
    arn = alarm["AlarmArn"]
    region, account = arn.split(":")[3], arn.split(":")[4]
    stat = alarm.get("Statistic") or alarm.get("ExtendedStatistic")
    metric_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{arn}/metric")
    configuration: dict[str, Any] = {
        "metrics": [
            {
                "id": str(metric_id),
                "metricStat": {
                    "metric": {
                        "namespace": alarm.get("Namespace"),
                        "name": alarm.get("MetricName"),
                        "dimensions": {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])},
                    },
                    "period": alarm.get("Period"),
                    "stat": stat,
                },
                "returnData": True,
            }
        ],
    }
    if alarm.get("AlarmDescription"):
        configuration["description"] = alarm["AlarmDescription"]
    event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{arn}/{now.isoformat()}/{state['value']}")
    return {
        "version": "0",
        "id": str(event_id),
        "detail-type": ALARM_STATE_CHANGE,
        "source": "aws.cloudwatch",
        "account": account,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [arn],
        "detail": {
            "alarmName": alarm["AlarmName"],
            "state": dict(state),
            "previousState": dict(previous_state),
            "configuration": configuration,
        },
    }


def percentile_of(values: list[float], statistic: str) -> float:
    """`p99` of `values` by nearest rank: a value that was observed, as CloudWatch reports."""
    try:
        rank = float(statistic.removeprefix("p"))
    except ValueError:
        raise AlarmEvaluationError(
            f"extended statistic '{statistic}' is not a percentile (pNN or pNN.NN)"
        ) from None
    ordered = sorted(values)
    index = max(0, math.ceil(rank / 100 * len(ordered)) - 1)
    return ordered[min(index, len(ordered) - 1)]


def _unsupported(alarm: Mapping[str, Any]) -> str:
    if not alarm.get("MetricName"):
        return "metric math alarms are not evaluated locally"
    if alarm.get("ComparisonOperator") not in _COMPARISONS:
        return f"comparison operator {alarm.get('ComparisonOperator')} (anomaly detection)"
    if (alarm.get("TreatMissingData") or "missing") not in _TREATMENTS:
        return f"treat-missing-data {alarm.get('TreatMissingData')!r} is not one of {_TREATMENTS}"
    if not alarm.get("Statistic") and not alarm.get("ExtendedStatistic"):
        return "neither Statistic nor ExtendedStatistic is set"
    return ""


def _reason(alarm: Mapping[str, Any], evaluation: Evaluation) -> str:
    periods = len(evaluation.datapoints)
    if evaluation.state == "INSUFFICIENT_DATA":
        return f"Insufficient Data: {periods} datapoints were unknown."
    present = [p for p in evaluation.datapoints if p.value is not None]
    shown = ", ".join(
        f"{p.value} ({p.start.strftime('%d/%m/%y %H:%M:%S')})" for p in reversed(present)
    )
    words = _COMPARISONS[alarm["ComparisonOperator"]][1]
    count = evaluation.breaching if evaluation.state == "ALARM" else periods - evaluation.breaching
    verb = "was" if count == 1 else "were"
    negation = "" if evaluation.state == "ALARM" else "not "
    needed = int(alarm.get("DatapointsToAlarm") or periods)
    plural = "" if needed == 1 else "s"
    return (
        f"Threshold Crossed: {count} out of the last {periods} datapoints [{shown}] {verb} "
        f"{negation}{words} the threshold ({float(alarm['Threshold'])}) (minimum {needed} "
        f"datapoint{plural} for {evaluation.previous_state} -> {evaluation.state} transition)."
    )


def _reason_data(alarm: Mapping[str, Any], evaluation: Evaluation, now: datetime) -> dict[str, Any]:
    present = [p for p in evaluation.datapoints if p.value is not None]
    data: dict[str, Any] = {
        "version": "1.0",
        "queryDate": _state_time(now),
        "period": int(alarm["Period"]),
        "recentDatapoints": [p.value for p in present],
        "threshold": float(alarm["Threshold"]),
        "evaluatedDatapoints": [
            {
                "timestamp": _state_time(p.start),
                **({"value": p.value} if p.value is not None else {}),
            }
            for p in reversed(evaluation.datapoints)
        ],
    }
    if evaluation.datapoints:
        data["startDate"] = _state_time(evaluation.datapoints[0].start)
    if alarm.get("Statistic"):
        data["statistic"] = alarm["Statistic"]
    else:
        data["extendedStatistic"] = alarm["ExtendedStatistic"]
    return data


def _state_time(moment: datetime) -> str:
    """CloudWatch's own timestamp form in alarm events: `2026-01-02T00:00:00.000+0000`."""
    return (
        moment.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{moment.microsecond // 1000:03d}"
        + (moment.strftime("%z") or "+0000")
    )
