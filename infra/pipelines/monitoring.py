"""The monitoring pipeline's definition: drift and quality of an endpoint's captured traffic.

Two independent processing steps read the endpoint's data capture, compare it with the training
baseline (drift) and with ground truth (quality), write their reports and publish the metrics
of `ml_code.monitoring.metrics` that the model's alarms watch. Publishing needs CloudWatch, so
these jobs are not network-isolated: they run in the platform's subnets when it has some (the
component refuses a platform without subnets unless told otherwise), and their role may put
metrics only in the monitoring namespace.

Parameters let a run look at another window or baseline: `CaptureUri` (default: everything the
endpoint captured, which the capture bucket keeps for its retention period), `GroundTruthUri`,
`BaselineUri` (default: the newest registered version's baseline, which the training pipeline
publishes; the file must be named `baseline.json`), `ReferenceUri` (default: the directory the
training pipeline publishes that baseline in, with the model's `evaluation.json`),
`DriftThreshold`, `WindowEnd` (the schedule's time, ISO-8601; `now` means when the job runs),
`DriftWindowDays`, `DriftMinRequests`, `LabelDelayDays`, `QualityWindowDays`,
`QualityMinLabelled` and `QualityTolerance`.

Drift compares the requests captured in the `DriftWindowDays` (default 3) before `WindowEnd`
with the baseline. A shorter window sees a change sooner (a week-long one is diluted by the
days before it: measured on five worlds per scenario, `benchmarks/drift_calibration.py`, a
preference shift alarmed 7 to 10 days after it with 7 days, 5 to 7 with 3); a longer one
needs less traffic per day. A window of fewer than `DriftMinRequests` (default 100) publishes
no drift metric: the PSI of a few dozen customers is mostly sampling noise, and the drift
statistic (a noise-corrected PSI, `ml_code.monitoring.drift`) stayed below 0.13 on worlds with
no change at 60 requests a day with these two defaults.

Quality scores the `QualityWindowDays` (default 5) of requests captured up to `LabelDelayDays`
before `WindowEnd` (default: the label horizon less one day, when the purchases that label a
day's requests are all known), joined with the ground truth under `GroundTruthUri` (default:
every label of the endpoint, which the capture bucket keeps for its retention period). The two
steps look at different days on purpose, as SageMaker's model-quality monitor offsets its
window. A window with fewer than `QualityMinLabelled` (default 10) rankings with a purchase
publishes no quality metric and the step still succeeds (its report says "insufficient data"),
so an endpoint's first days, before any label is complete, are not failed runs. Otherwise the
step also publishes `quality_shortfall_z`, how many standard errors live NDCG@10 falls short of
the serving model's held-out NDCG@10 less `QualityTolerance` (default 5%); the quality alarm
watches it, so its threshold follows whichever model serves (`ml_code.monitoring.quality`
explains the statistic and the false-alarm rate it implies). A processing input must not be
empty, so `MonitoringSchedule` keeps a marker object under the ground-truth prefix.

The jobs are network-isolated like every other job: they cannot reach CloudWatch. Each report
carries its `PutMetricData` request, stamped with `WindowEnd`, and
`ml_code.handlers.publish_metrics` sends it when the report lands in the reports bucket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from infra.pipelines import jobs
from infra.pipelines.sdk import offline_sdk, pipeline_session
from ml_code.features.definitions import LABEL_HORIZON_DAYS

STEP_DRIFT = "FeatureDrift"
STEP_QUALITY = "ModelQuality"
PROCESSING_STEPS = (STEP_DRIFT, STEP_QUALITY)

PARAM_CAPTURE = "CaptureUri"
PARAM_GROUND_TRUTH = "GroundTruthUri"
PARAM_BASELINE = "BaselineUri"
PARAM_DRIFT_THRESHOLD = "DriftThreshold"
PARAM_WINDOW_END = "WindowEnd"
PARAM_DRIFT_WINDOW_DAYS = "DriftWindowDays"
PARAM_LABEL_DELAY_DAYS = "LabelDelayDays"
PARAM_DRIFT_MIN_REQUESTS = "DriftMinRequests"
PARAM_REFERENCE = "ReferenceUri"
PARAM_QUALITY_WINDOW_DAYS = "QualityWindowDays"
PARAM_QUALITY_MIN_LABELLED = "QualityMinLabelled"
PARAM_QUALITY_TOLERANCE = "QualityTolerance"
DRIFT_WINDOW_DAYS = 3
DRIFT_MIN_REQUESTS = 100
QUALITY_WINDOW_DAYS = 5
QUALITY_MIN_LABELLED = 10
QUALITY_TOLERANCE = 0.05
BASELINE_FILE = "baseline.json"

_IN = f"{jobs.PROCESSING_ROOT}/input"
_OUT = f"{jobs.PROCESSING_ROOT}/output"


@dataclass(frozen=True)
class MonitoringLayout:
    """Where one endpoint's traffic, labels and reports live; IAM policies are built from it."""

    model_name: str
    endpoint_name: str
    capture_prefix: str = ""
    """In the capture bucket. Default: `capture/<endpoint>/`, where the endpoint writes."""
    ground_truth_prefix: str = ""
    """In the capture bucket. Default: `ground-truth/<endpoint>/`."""

    @property
    def capture(self) -> str:
        return self.capture_prefix or f"capture/{self.endpoint_name}/"

    @property
    def ground_truth(self) -> str:
        return self.ground_truth_prefix or f"ground-truth/{self.endpoint_name}/"

    @property
    def reports(self) -> str:
        """In the reports bucket."""
        return f"monitoring/{self.model_name}/"

    @property
    def reference_prefix(self) -> str:
        """In the artifacts bucket: the serving model's `baseline.json` and `evaluation.json`,
        written by the training pipeline."""
        return f"models/{self.model_name}/baseline/latest/"

    @property
    def baseline_key(self) -> str:
        """In the artifacts bucket; written by the training pipeline."""
        return f"{self.reference_prefix}{BASELINE_FILE}"

    @property
    def ground_truth_marker_key(self) -> str:
        """In the capture bucket: keeps the ground-truth input from being empty before the first
        labels arrive (a processing job fails on an empty input); the job reads `*.jsonl` only."""
        return f"{self.ground_truth}README"


@dataclass(frozen=True)
class MonitoringPipelineSpec:
    """Everything the definition depends on, as plain values."""

    layout: MonitoringLayout
    region: str
    bundle_uri: str
    buckets: dict[str, str]
    """Bucket names by data class: capture, reports, artifacts."""
    reports_kms_key_id: str
    """The reports bucket's key (alias ARN): every job output goes there."""
    settings: jobs.JobSettings
    drift_threshold: float


def build_monitoring_definition(spec: MonitoringPipelineSpec) -> str:
    """The pipeline definition JSON (sorted keys, no whitespace)."""
    settings = replace(
        spec.settings,
        environment={"AWS_DEFAULT_REGION": spec.region, **spec.settings.environment},
    )
    spec = replace(spec, settings=settings)
    with offline_sdk(spec.region):
        from sagemaker.core.workflow.parameters import (
            ParameterFloat,
            ParameterInteger,
            ParameterString,
        )
        from sagemaker.mlops.workflow.pipeline import Pipeline

        session = pipeline_session(spec.region)
        paths, buckets = spec.layout, spec.buckets
        params = {
            PARAM_CAPTURE: ParameterString(
                PARAM_CAPTURE, default_value=f"s3://{buckets['capture']}/{paths.capture}"
            ),
            PARAM_GROUND_TRUTH: ParameterString(
                PARAM_GROUND_TRUTH, default_value=f"s3://{buckets['capture']}/{paths.ground_truth}"
            ),
            PARAM_BASELINE: ParameterString(
                PARAM_BASELINE, default_value=f"s3://{buckets['artifacts']}/{paths.baseline_key}"
            ),
            PARAM_DRIFT_THRESHOLD: ParameterFloat(
                PARAM_DRIFT_THRESHOLD, default_value=spec.drift_threshold
            ),
            PARAM_WINDOW_END: ParameterString(PARAM_WINDOW_END, default_value="now"),
            PARAM_DRIFT_WINDOW_DAYS: ParameterInteger(
                PARAM_DRIFT_WINDOW_DAYS, default_value=DRIFT_WINDOW_DAYS
            ),
            PARAM_LABEL_DELAY_DAYS: ParameterInteger(
                PARAM_LABEL_DELAY_DAYS, default_value=LABEL_HORIZON_DAYS - 1
            ),
            PARAM_DRIFT_MIN_REQUESTS: ParameterInteger(
                PARAM_DRIFT_MIN_REQUESTS, default_value=DRIFT_MIN_REQUESTS
            ),
            PARAM_REFERENCE: ParameterString(
                PARAM_REFERENCE,
                default_value=f"s3://{buckets['artifacts']}/{paths.reference_prefix}",
            ),
            PARAM_QUALITY_WINDOW_DAYS: ParameterInteger(
                PARAM_QUALITY_WINDOW_DAYS, default_value=QUALITY_WINDOW_DAYS
            ),
            PARAM_QUALITY_MIN_LABELLED: ParameterInteger(
                PARAM_QUALITY_MIN_LABELLED, default_value=QUALITY_MIN_LABELLED
            ),
            PARAM_QUALITY_TOLERANCE: ParameterFloat(
                PARAM_QUALITY_TOLERANCE, default_value=QUALITY_TOLERANCE
            ),
        }
        pipeline = Pipeline(
            name=f"{paths.model_name}-monitoring",
            parameters=list(params.values()),
            steps=[_drift_step(session, spec, params), _quality_step(session, spec, params)],
            sagemaker_session=session,
            pipeline_experiment_config=None,
        )
        definition = pipeline.definition()
    return json.dumps(json.loads(definition), sort_keys=True, separators=(",", ":"))


def _reports(spec: MonitoringPipelineSpec, kind: str) -> Any:
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join

    prefix = f"s3://{spec.buckets['reports']}/{spec.layout.reports}{kind}"
    return Join(on="/", values=[prefix, ExecutionVariables.PIPELINE_EXECUTION_ID])


def _identity(spec: MonitoringPipelineSpec, params: dict[str, Any]) -> list[Any]:
    """The dimensions every datum carries and the time it is stamped with."""
    return [
        "--endpoint",
        spec.layout.endpoint_name,
        "--model",
        spec.layout.model_name,
        "--window-end",
        params[PARAM_WINDOW_END],
    ]


def _drift_step(session: Any, spec: MonitoringPipelineSpec, params: dict[str, Any]) -> Any:
    from sagemaker.mlops.workflow.steps import ProcessingStep

    step_args = jobs.processor(session, spec.settings, spec.reports_kms_key_id).run(
        inputs=[
            jobs.code_input(spec.bundle_uri),
            jobs.s3_input("baseline", params[PARAM_BASELINE], f"{_IN}/baseline"),
            jobs.s3_input("capture", params[PARAM_CAPTURE], f"{_IN}/capture"),
        ],
        outputs=[jobs.s3_output("report", _reports(spec, "drift"), f"{_OUT}/drift")],
        arguments=jobs.module_arguments(
            "ml_code.monitoring.drift",
            "--baseline",
            f"{_IN}/baseline/{BASELINE_FILE}",
            "--capture",
            f"{_IN}/capture",
            "--output",
            f"{_OUT}/drift",
            "--threshold",
            params[PARAM_DRIFT_THRESHOLD].to_string(),
            "--window-days",
            params[PARAM_DRIFT_WINDOW_DAYS].to_string(),
            "--min-requests",
            params[PARAM_DRIFT_MIN_REQUESTS].to_string(),
            *_identity(spec, params),
        ),
    )
    return ProcessingStep(
        STEP_DRIFT,
        step_args=step_args,
        description="PSI of each model feature, over the last DriftWindowDays of traffic, "
        "against the training baseline.",
    )


def _quality_step(session: Any, spec: MonitoringPipelineSpec, params: dict[str, Any]) -> Any:
    from sagemaker.mlops.workflow.steps import ProcessingStep

    step_args = jobs.processor(session, spec.settings, spec.reports_kms_key_id).run(
        inputs=[
            jobs.code_input(spec.bundle_uri),
            jobs.s3_input("capture", params[PARAM_CAPTURE], f"{_IN}/capture"),
            jobs.s3_input("ground-truth", params[PARAM_GROUND_TRUTH], f"{_IN}/ground-truth"),
            jobs.s3_input("reference", params[PARAM_REFERENCE], f"{_IN}/reference"),
        ],
        outputs=[jobs.s3_output("report", _reports(spec, "quality"), f"{_OUT}/quality")],
        arguments=jobs.module_arguments(
            "ml_code.monitoring.quality",
            "--capture",
            f"{_IN}/capture",
            "--ground-truth",
            f"{_IN}/ground-truth",
            "--output",
            f"{_OUT}/quality",
            "--label-delay-days",
            params[PARAM_LABEL_DELAY_DAYS].to_string(),
            "--window-days",
            params[PARAM_QUALITY_WINDOW_DAYS].to_string(),
            "--min-labelled",
            params[PARAM_QUALITY_MIN_LABELLED].to_string(),
            "--tolerance",
            params[PARAM_QUALITY_TOLERANCE].to_string(),
            "--reference",
            f"{_IN}/reference",
            *_identity(spec, params),
        ),
    )
    return ProcessingStep(
        STEP_QUALITY,
        step_args=step_args,
        description="AUC, NDCG@10 and precision@10 of the last QualityWindowDays of labelled "
        "traffic, and NDCG@10's shortfall from the serving model's held-out level.",
    )
