"""Publish a monitoring report's CloudWatch metrics when the report lands in S3.

The drift and quality jobs run network-isolated: they cannot reach CloudWatch, so each report
carries the exact `PutMetricData` request (`report["cloudwatch"]`, stamped with the end of the
window it measured). An EventBridge rule on the reports bucket's "Object Created" events calls
this handler, which sends that request. It publishes only into the namespace it is configured
for (`METRICS_NAMESPACE`), so a crafted report cannot write other metrics.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import boto3

from ml_code.monitoring.metrics import put

log = logging.getLogger(__name__)
NAMESPACE_ENV = "METRICS_NAMESPACE"
REPORT_SUFFIXES = ("drift_report.json", "quality_report.json")


def handler(
    event: dict[str, Any], context: Any = None, *, s3: Any = None, cloudwatch: Any = None
) -> dict[str, Any]:
    detail = event.get("detail") or {}
    bucket = (detail.get("bucket") or {}).get("name")
    key = (detail.get("object") or {}).get("key", "")
    if (
        event.get("detail-type") != "Object Created"
        or not bucket
        or not key.endswith(REPORT_SUFFIXES)
    ):
        log.info("ignored: not a monitoring report (%s/%s)", bucket, key)
        return {"published": 0, "ignored": True, "key": key}
    s3 = s3 or boto3.client("s3")
    report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    request = report.get("cloudwatch")
    if not request or not request.get("MetricData"):
        log.info("report %s has no metrics to publish", key)
        return {"published": 0, "ignored": False, "key": key}
    allowed = os.environ[NAMESPACE_ENV]
    if request.get("Namespace") != allowed:
        raise ValueError(
            f"report {key} asks for namespace {request.get('Namespace')!r}; this function "
            f"publishes only to {allowed!r}"
        )
    sent = put(request, cloudwatch or boto3.client("cloudwatch"))
    log.info("published %d metrics from %s", sent, key)
    return {"published": sent, "ignored": False, "key": key}
