"""One model's alarms and dashboard (`mlops:monitoring:ModelAlarms`).

Alarm names are a contract, not a detail: the retraining rule matches the drift and quality
alarm names, and the endpoint's blue/green auto-rollback names the errors and latency alarms.
`alarm_name` builds them from strings, so every party knows them at preview and in any order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from infra.components.platform_refs import PlatformRefs
from infra.components.tagging import tags_for
from ml_code.monitoring import metrics

AlarmKind = Literal["drift", "quality", "errors", "latency", "invocations"]
ALARM_KINDS: tuple[AlarmKind, ...] = ("drift", "quality", "errors", "latency", "invocations")
ROLLBACK_KINDS: tuple[AlarmKind, ...] = ("errors", "latency")
RETRAIN_KINDS: tuple[AlarmKind, ...] = ("drift", "quality")
SAGEMAKER_NAMESPACE = "AWS/SageMaker"
QUALITY_METRICS = (metrics.MODEL_NDCG_AT_10, metrics.MODEL_AUC, metrics.MODEL_PRECISION_AT_10)


def alarm_name(name_prefix: str, model_name: str, kind: AlarmKind) -> str:
    return f"{name_prefix}-{model_name}-{kind}"


def rollback_alarm_names(name_prefix: str, model_name: str) -> list[str]:
    """The alarms a blue/green deployment watches; either one tripping rolls traffic back."""
    return [alarm_name(name_prefix, model_name, kind) for kind in ROLLBACK_KINDS]


@dataclass
class ModelAlarmsArgs:
    """Thresholds default to the values declared in Pulumi.yaml.

    Drift and quality are published once per monitoring run, so their period is the monitoring
    schedule's (`monitoring_period_seconds`, a day by default).

    Default: drift alarms above a max PSI of 0.2; quality when live NDCG@10 falls short of the
    serving model's held-out NDCG@10 (less a 5% tolerance) by more than 2 standard errors
    (`quality_shortfall_z`, in `quality_alarm_periods` periods in a row, three by default);
    5XX errors above 5 a minute in 2 of 3 minutes; p99 model latency above 500 ms in 3 of 5
    minutes; no invocations for 60 minutes. Every alarm notifies the platform alarm topic on
    ALARM and OK.
    """

    platform: PlatformRefs
    model_name: str
    endpoint_name: str
    variant_name: str = "AllTraffic"
    drift_threshold: float = 0.2
    quality_floor: float = 0.2
    """The approval floor, drawn on the dashboard's quality widget; the alarm does not use it."""
    quality_metric: str = metrics.MODEL_NDCG_AT_10
    """One of `QUALITY_METRICS`, as published by `ml_code.monitoring`: the dashboard's quality
    widget. The alarm watches NDCG@10's shortfall from the serving model's held-out level."""
    quality_alarm_threshold: float = 2.0
    """Standard errors of shortfall (`quality_shortfall_z`) above which a period breaches: a
    threshold that follows whichever model serves, where a fixed NDCG@10 would be far below
    one model's live level and at another's. At 2, a period with no change breaches with
    probability below 2.3% (`ml_code.monitoring.quality` derives it)."""
    latency_p99_ms: int = 500
    error_5xx_threshold: int = 5
    missing_invocations_minutes: int = 60
    monitoring_period_seconds: int = 86400
    """How often the drift and quality jobs publish (the monitoring schedule)."""
    quality_alarm_periods: int = 3
    """Periods in a row above `quality_alarm_threshold` before the quality alarm fires."""
    tags: dict[str, str] = field(default_factory=dict)


class ModelAlarms(pulumi.ComponentResource):
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    dashboard: aws.cloudwatch.Dashboard

    def __init__(
        self, name: str, args: ModelAlarmsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:monitoring:ModelAlarms", name, None, opts)
        _check(name, args)
        self.args = args
        platform = args.platform
        self.alarm_names = {
            kind: alarm_name(platform.name_prefix, args.model_name, kind) for kind in ALARM_KINDS
        }
        self.alarm_arns = {
            kind: platform.arn("cloudwatch", f"alarm:{alarm}")
            for kind, alarm in self.alarm_names.items()
        }
        self.alarms = {kind: self._alarm(name, kind, spec) for kind, spec in self._specs().items()}
        self.dashboard_name = f"{platform.name_prefix}-{args.model_name}"
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=self.dashboard_name,
            dashboard_body=self._dashboard_body(),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.drift_alarm_name = self.alarm_names["drift"]
        self.quality_alarm_name = self.alarm_names["quality"]
        self.errors_alarm_name = self.alarm_names["errors"]
        self.latency_alarm_name = self.alarm_names["latency"]
        self.invocations_alarm_name = self.alarm_names["invocations"]
        self.drift_alarm_arn = self.alarm_arns["drift"]
        self.quality_alarm_arn = self.alarm_arns["quality"]
        self.errors_alarm_arn = self.alarm_arns["errors"]
        self.latency_alarm_arn = self.alarm_arns["latency"]
        self.invocations_alarm_arn = self.alarm_arns["invocations"]
        self.register_outputs(
            {
                **{f"{kind}_alarm_name": n for kind, n in self.alarm_names.items()},
                **{f"{kind}_alarm_arn": a for kind, a in self.alarm_arns.items()},
                "dashboard_name": self.dashboard_name,
            }
        )

    def _model_dimensions(self) -> dict[str, str]:
        return {
            metrics.DIMENSION_ENDPOINT: self.args.endpoint_name,
            metrics.DIMENSION_MODEL: self.args.model_name,
        }

    def _endpoint_dimensions(self) -> dict[str, str]:
        return {"EndpointName": self.args.endpoint_name, "VariantName": self.args.variant_name}

    def _specs(self) -> dict[AlarmKind, dict[str, Any]]:
        """Why each alarm treats missing data the way it does:

        - drift, quality: a monitoring job publishes nothing for a window it cannot compute
          (no traffic, no labels yet); silence is not evidence of drift, so `notBreaching`.
          Silence of the whole endpoint is the invocations alarm's job.
        - errors, latency: no requests means no errors and no slow requests, so
          `notBreaching`; these alarms also gate rollbacks and must not trip on an idle fleet.
        - invocations: the missing datapoints are the very thing it detects, so `breaching`.
        """
        args = self.args
        period = args.monitoring_period_seconds
        return {
            "drift": {
                "description": "Largest feature PSI between captured traffic and the training "
                "baseline is above the drift threshold; starts a retraining run.",
                "namespace": metrics.NAMESPACE,
                "metric_name": metrics.FEATURE_DRIFT_MAX_PSI,
                "dimensions": self._model_dimensions(),
                "statistic": "Maximum",
                "period": period,
                "evaluation_periods": 1,
                "datapoints_to_alarm": 1,
                "comparison_operator": "GreaterThanThreshold",
                "threshold": args.drift_threshold,
                "treat_missing_data": "notBreaching",
            },
            "quality": {
                "description": "NDCG@10 of labelled traffic fell short of the serving model's "
                "held-out NDCG@10 (less a tolerance) by more than "
                f"{args.quality_alarm_threshold:g} standard errors; starts a retraining run.",
                "namespace": metrics.NAMESPACE,
                "metric_name": metrics.QUALITY_SHORTFALL_Z,
                "dimensions": self._model_dimensions(),
                "statistic": "Maximum",
                "period": period,
                "evaluation_periods": args.quality_alarm_periods,
                "datapoints_to_alarm": args.quality_alarm_periods,
                "comparison_operator": "GreaterThanThreshold",
                "threshold": args.quality_alarm_threshold,
                "treat_missing_data": "notBreaching",
            },
            "errors": {
                "description": "The endpoint returns 5XX errors; rolls back a blue/green "
                "deployment in progress.",
                "namespace": SAGEMAKER_NAMESPACE,
                "metric_name": "Invocation5XXErrors",
                "dimensions": self._endpoint_dimensions(),
                "statistic": "Sum",
                "period": 60,
                "evaluation_periods": 3,
                "datapoints_to_alarm": 2,
                "comparison_operator": "GreaterThanThreshold",
                "threshold": args.error_5xx_threshold,
                "treat_missing_data": "notBreaching",
            },
            "latency": {
                "description": f"p99 model latency above {args.latency_p99_ms} ms; rolls back a "
                "blue/green deployment in progress.",
                "namespace": SAGEMAKER_NAMESPACE,
                "metric_name": "ModelLatency",
                "dimensions": self._endpoint_dimensions(),
                "extended_statistic": "p99",
                "period": 60,
                "evaluation_periods": 5,
                "datapoints_to_alarm": 3,
                "comparison_operator": "GreaterThanThreshold",
                "threshold": args.latency_p99_ms * 1000,
                "treat_missing_data": "notBreaching",
            },
            "invocations": {
                "description": f"No invocations for {args.missing_invocations_minutes} minutes: "
                "the endpoint is unused or unreachable (also ALARM until the first model is "
                "deployed).",
                "namespace": SAGEMAKER_NAMESPACE,
                "metric_name": "Invocations",
                "dimensions": self._endpoint_dimensions(),
                "statistic": "SampleCount",
                "period": args.missing_invocations_minutes * 60,
                "evaluation_periods": 1,
                "datapoints_to_alarm": 1,
                "comparison_operator": "LessThanThreshold",
                "threshold": 1,
                "treat_missing_data": "breaching",
            },
        }

    def _alarm(
        self, name: str, kind: AlarmKind, spec: dict[str, Any]
    ) -> aws.cloudwatch.MetricAlarm:
        platform = self.args.platform
        return aws.cloudwatch.MetricAlarm(
            f"{name}-{kind}",
            name=self.alarm_names[kind],
            alarm_description=spec.pop("description"),
            alarm_actions=[platform.alarm_topic_arn],
            ok_actions=[platform.alarm_topic_arn],
            actions_enabled=True,
            tags=tags_for(f"{name}-{kind}", platform.tags, self.args.tags, {"AlarmKind": kind}),
            opts=pulumi.ResourceOptions(parent=self),
            **spec,
        )

    def _dashboard_body(self) -> pulumi.Output[str]:
        args = self.args
        region = args.platform.region
        model = [
            metrics.DIMENSION_ENDPOINT,
            args.endpoint_name,
            metrics.DIMENSION_MODEL,
            args.model_name,
        ]
        endpoint = ["EndpointName", args.endpoint_name, "VariantName", args.variant_name]

        def widget(
            x: int,
            y: int,
            title: str,
            series: list[list[Any]],
            stat: str,
            period: int,
            threshold: float | None = None,
            label: str = "alarm threshold",
        ) -> dict[str, Any]:
            properties: dict[str, Any] = {
                "title": title,
                "region": region,
                "metrics": series,
                "stat": stat,
                "period": period,
                "view": "timeSeries",
            }
            if threshold is not None:
                properties["annotations"] = {"horizontal": [{"label": label, "value": threshold}]}
            return {
                "type": "metric",
                "x": x,
                "y": y,
                "width": 12,
                "height": 6,
                "properties": properties,
            }

        period = args.monitoring_period_seconds
        widgets = [
            widget(
                0,
                0,
                "Feature drift (max PSI)",
                [[metrics.NAMESPACE, metrics.FEATURE_DRIFT_MAX_PSI, *model]],
                "Maximum",
                period,
                args.drift_threshold,
            ),
            widget(
                12,
                0,
                f"Model quality ({args.quality_metric})",
                [[metrics.NAMESPACE, args.quality_metric, *model]],
                "Minimum",
                period,
                args.quality_floor,
                "approval floor",
            ),
            widget(
                0,
                6,
                "Quality shortfall (standard errors below the held-out NDCG@10)",
                [[metrics.NAMESPACE, metrics.QUALITY_SHORTFALL_Z, *model]],
                "Maximum",
                period,
                args.quality_alarm_threshold,
            ),
            widget(
                12, 6, "Invocations", [[SAGEMAKER_NAMESPACE, "Invocations", *endpoint]], "Sum", 60
            ),
            widget(
                0,
                12,
                "5XX errors",
                [[SAGEMAKER_NAMESPACE, "Invocation5XXErrors", *endpoint]],
                "Sum",
                60,
                args.error_5xx_threshold,
            ),
            widget(
                12,
                12,
                "Model latency p99 (microseconds)",
                [[SAGEMAKER_NAMESPACE, "ModelLatency", *endpoint]],
                "p99",
                60,
                args.latency_p99_ms * 1000,
            ),
        ]
        return pulumi.Output.json_dumps({"widgets": widgets})


def _check(name: str, args: ModelAlarmsArgs) -> None:
    if args.quality_metric not in QUALITY_METRICS:
        raise ValueError(
            f"ModelAlarms '{name}': quality_metric is '{args.quality_metric}'; use one of "
            f"{', '.join(QUALITY_METRICS)} (the names ml_code.monitoring publishes)."
        )
    if args.quality_alarm_threshold <= 0:
        raise ValueError(
            f"ModelAlarms '{name}': quality_alarm_threshold is {args.quality_alarm_threshold}; "
            "it counts standard errors of shortfall, so use a positive number (2 to 3 is usual)."
        )
    if not 1 <= args.missing_invocations_minutes <= 1440:
        raise ValueError(
            f"ModelAlarms '{name}': missing_invocations_minutes is "
            f"{args.missing_invocations_minutes}; CloudWatch evaluates periods of 1 to 1440 "
            "minutes, so choose a value in that range."
        )
