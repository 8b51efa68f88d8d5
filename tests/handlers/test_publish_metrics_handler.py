"""The metrics publisher as a plain function against moto: reports in, CloudWatch values out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from ml_code.handlers import publish_metrics
from ml_code.monitoring.metrics import (
    FEATURE_DRIFT_MAX_PSI,
    NAMESPACE,
    Datum,
    cloudwatch_request,
)

BUCKET = "mlops-dev-reports-123456789012"
WINDOW_END = datetime(2026, 3, 9, tzinfo=UTC)


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv(publish_metrics.NAMESPACE_ENV, NAMESPACE)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield


def _report(key: str, request: dict) -> dict:
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"cloudwatch": request}))
    return {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": BUCKET}, "object": {"key": key}},
    }


def _request(value: float) -> dict:
    datum = Datum(FEATURE_DRIFT_MAX_PSI, value)
    return cloudwatch_request([datum], endpoint="e", model="m", timestamp=WINDOW_END)


def test_a_drift_report_is_published_at_the_end_of_the_window_it_measured(aws):
    event = _report("monitoring/m/drift/run-1/drift_report.json", _request(0.31))
    assert publish_metrics.handler(event)["published"] == 1
    stats = boto3.client("cloudwatch").get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=FEATURE_DRIFT_MAX_PSI,
        Dimensions=[{"Name": "Endpoint", "Value": "e"}, {"Name": "Model", "Value": "m"}],
        StartTime=WINDOW_END - timedelta(hours=1),
        EndTime=WINDOW_END + timedelta(hours=1),
        Period=3600,
        Statistics=["Maximum"],
    )
    assert [point["Maximum"] for point in stats["Datapoints"]] == [pytest.approx(0.31)]


def test_a_report_asking_for_another_namespace_is_refused(aws):
    request = {**_request(0.5), "Namespace": "AWS/Billing"}
    event = _report("monitoring/m/drift/run-2/drift_report.json", request)
    with pytest.raises(ValueError, match="publishes only to 'MLOps/ModelMonitoring'"):
        publish_metrics.handler(event)


def test_objects_that_are_not_reports_are_ignored(aws):
    event = _report("monitoring/m/drift/run-3/notes.txt", _request(0.5))
    assert publish_metrics.handler(event) == {
        "published": 0,
        "ignored": True,
        "key": "monitoring/m/drift/run-3/notes.txt",
    }


def test_a_report_with_nothing_measured_publishes_nothing(aws):
    event = _report(
        "monitoring/m/quality/run-4/quality_report.json", {**_request(0), "MetricData": []}
    )
    assert publish_metrics.handler(event)["published"] == 0
