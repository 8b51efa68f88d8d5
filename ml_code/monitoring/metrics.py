"""CloudWatch names the monitoring jobs publish; infrastructure code imports these for alarms.

Namespace ``MLOps/ModelMonitoring``. Every datum carries ``Endpoint`` and ``Model`` dimensions;
per-feature drift adds ``Feature``. An alarm must name the exact dimension set below.

=========================  =========================  =====  ===============================
Metric                     Dimensions                 Unit   Published by / meaning
=========================  =========================  =====  ===============================
``feature_drift_max_psi``  Endpoint, Model            None   drift: largest PSI over features
``feature_drift_psi``      Endpoint, Model, Feature   None   drift: PSI of one feature
``model_auc``              Endpoint, Model            None   quality: ROC AUC of labelled rows
``model_ndcg_at_10``       Endpoint, Model            None   quality: mean NDCG@10 per ranking
``model_precision_at_10``  Endpoint, Model            None   quality: mean precision@10
``quality_shortfall_z``    Endpoint, Model            None   quality: standard errors by which
                                                             live NDCG@10 falls short of the
                                                             serving model's held-out level
``ground_truth_coverage``  Endpoint, Model            None   quality: labelled / captured
=========================  =========================  =====  ===============================

A job publishes nothing for a statistic it could not compute (an empty window, AUC with one
class, fewer labelled requests than the quality job's minimum), so alarms should treat missing
data as ``notBreaching`` (or ``missing`` for coverage).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3

NAMESPACE = "MLOps/ModelMonitoring"

DIMENSION_ENDPOINT = "Endpoint"
DIMENSION_MODEL = "Model"
DIMENSION_FEATURE = "Feature"

FEATURE_DRIFT_MAX_PSI = "feature_drift_max_psi"
FEATURE_DRIFT_PSI = "feature_drift_psi"
MODEL_AUC = "model_auc"
MODEL_NDCG_AT_10 = "model_ndcg_at_10"
MODEL_PRECISION_AT_10 = "model_precision_at_10"
GROUND_TRUTH_COVERAGE = "ground_truth_coverage"
QUALITY_SHORTFALL_Z = "quality_shortfall_z"

DEFAULT_PSI_THRESHOLD = 0.2
_BATCH = 20  # PutMetricData's datum limit before 2023; every CloudWatch and emulator accepts it


@dataclass(frozen=True)
class Datum:
    """One metric value with its dimensions (``Endpoint``/``Model`` are added on publish)."""

    name: str
    value: float
    dimensions: Mapping[str, str] = field(default_factory=dict)


def metric_data(
    datums: Sequence[Datum], *, endpoint: str, model: str, timestamp: datetime | None = None
) -> list[dict[str, Any]]:
    """`PutMetricData` entries; `timestamp` is the end of the window the values describe."""
    base = {DIMENSION_ENDPOINT: endpoint, DIMENSION_MODEL: model}
    stamp = {"Timestamp": timestamp.astimezone(UTC).isoformat()} if timestamp else {}
    return [
        {
            "MetricName": d.name,
            "Value": float(d.value),
            "Unit": "None",
            "Dimensions": [{"Name": k, "Value": v} for k, v in {**base, **d.dimensions}.items()],
            **stamp,
        }
        for d in datums
    ]


def cloudwatch_request(
    datums: Sequence[Datum], *, endpoint: str, model: str, timestamp: datetime | None = None
) -> dict[str, Any]:
    """What a report carries so that `ml_code.handlers.publish_metrics` can publish it: the
    monitoring jobs stay network-isolated, and a small function with CloudWatch access sends
    the metrics when the report lands."""
    return {
        "Namespace": NAMESPACE,
        "MetricData": metric_data(datums, endpoint=endpoint, model=model, timestamp=timestamp),
    }


def put(request: Mapping[str, Any], client: Any = None) -> int:
    """Send a `cloudwatch_request` in batches; returns how many values were sent."""
    cloudwatch = client or boto3.client("cloudwatch")
    data = list(request["MetricData"])
    for start in range(0, len(data), _BATCH):
        cloudwatch.put_metric_data(
            Namespace=request["Namespace"], MetricData=data[start : start + _BATCH]
        )
    return len(data)


def publish(
    datums: Sequence[Datum],
    *,
    endpoint: str,
    model: str,
    client: Any = None,
    timestamp: datetime | None = None,
) -> int:
    """Put ``datums`` under :data:`NAMESPACE`; returns how many were sent.

    The default client comes from boto3, so ``AWS_ENDPOINT_URL`` (or
    ``AWS_ENDPOINT_URL_CLOUDWATCH``) points it at an emulator without code changes.
    """
    request = cloudwatch_request(datums, endpoint=endpoint, model=model, timestamp=timestamp)
    return put(request, client)


def parse_window_end(value: str | None) -> datetime:
    """`--window-end`: an ISO-8601 time (the schedule's time); empty or `now` means now."""
    if not value or value == "now":
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
