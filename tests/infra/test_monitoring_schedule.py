"""MonitoringSchedule under mocks: what starts the monitoring pipeline and what its jobs may do."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from infra.components.monitoring_schedule import MonitoringSchedule, MonitoringScheduleArgs
from infra.pipelines import monitoring, training
from infra.plan.engine import Capture, Resource
from ml_code.monitoring.metrics import NAMESPACE
from tests.infra.platform import ACCOUNT, PLATFORM_KEY, alias_of
from tests.infra.resolved import resolved
from tests.infra.test_training_pipeline import (
    ALLOWED_ON_EVERY_RESOURCE,
    bucket,
    key_aliases,
    platform_for,
    resources_of,
    statements,
)

PIPELINE_ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:pipeline/mlops-dev-recommender-monitoring"
ENDPOINT = "mlops-dev-recommender"
BUNDLE_KEY = "code/0123456789abcdef/sourcedir.tar.gz"


def build(environment: str = "dev", **overrides: Any) -> Capture:
    def program() -> None:
        args: dict[str, Any] = dict(
            platform=platform_for(environment),
            model_name="recommender",
            endpoint_name=ENDPOINT,
            schedule_expression="rate(2 hours)",
            drift_threshold=0.15,
            max_runtime_seconds=1800,
            source_bundle_key=BUNDLE_KEY,
            tags={"Team": "personalization"},
        )
        args.update(overrides)
        schedule = MonitoringSchedule("recommender-monitoring", MonitoringScheduleArgs(**args))
        for output in ("pipeline_name", "pipeline_arn", "schedule_arn"):
            pulumi.export(output, getattr(schedule, output))

    return resolved(program, environment)


@pytest.fixture(scope="module")
def capture() -> Capture:
    return build()


def the(capture: Capture, type_: str) -> Resource:
    (found,) = capture.by_type(type_)
    return found


def policy(capture: Capture, role: str) -> dict[str, Any]:
    (found,) = [
        p
        for p in capture.by_type("aws:iam/rolePolicy:RolePolicy")
        if p.name == f"recommender-monitoring-{role}-role-policy"
    ]
    return json.loads(found.inputs["policy"])


def definition(capture: Capture) -> dict[str, Any]:
    return json.loads(the(capture, "aws:sagemaker/pipeline:Pipeline").inputs["pipelineDefinition"])


def test_outputs_name_the_pipeline_and_the_schedule(capture):
    assert capture.outputs["pipeline_name"] == "mlops-dev-recommender-monitoring"
    assert capture.outputs["pipeline_arn"] == PIPELINE_ARN
    assert capture.outputs["schedule_arn"].startswith("arn:aws:scheduler:")


def test_schedule_starts_the_monitoring_pipeline_on_the_configured_expression(capture):
    schedule = the(capture, "aws:scheduler/schedule:Schedule")
    assert schedule.inputs["name"] == "mlops-dev-recommender-monitoring"
    assert schedule.inputs["scheduleExpression"] == "rate(2 hours)"
    assert schedule.inputs["flexibleTimeWindow"] == {"mode": "OFF"}
    assert schedule.inputs["kmsKeyArn"] == PLATFORM_KEY
    target = schedule.inputs["target"]
    assert target["arn"] == PIPELINE_ARN
    assert target["roleArn"] == (
        f"arn:aws:iam::{ACCOUNT}:role/mlops-dev-recommender-monitoring-schedule"
    )
    assert target["sagemakerPipelineParameters"]["pipelineParameters"] == [
        {"name": monitoring.PARAM_DRIFT_THRESHOLD, "value": "0.15"},
        {"name": monitoring.PARAM_WINDOW_END, "value": "<aws.scheduler.scheduled-time>"},
    ]
    pipeline = the(capture, "aws:sagemaker/pipeline:Pipeline")
    assert pipeline.urn in schedule.options["dependsOn"]


def test_schedule_role_may_start_this_pipeline_and_nothing_else(capture):
    document = policy(capture, "schedule")
    assert [(s["Action"], s["Resource"]) for s in statements(document)] == [
        (["sagemaker:StartPipelineExecution"], [PIPELINE_ARN]),
        (["kms:Decrypt"], [f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*"]),
    ]
    assert key_aliases(document) == {"alias/platform"}
    (role,) = [
        r
        for r in capture.by_type("aws:iam/role:Role")
        if r.inputs["name"] == "mlops-dev-recommender-monitoring-schedule"
    ]
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": ["scheduler.amazonaws.com"]}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_job_role_reads_only_traffic_labels_baseline_and_code_and_writes_only_reports(capture):
    document = policy(capture, "job")
    capture_bucket = f"arn:aws:s3:::{bucket('capture')}"
    artifacts = f"arn:aws:s3:::{bucket('artifacts')}"
    reports = f"arn:aws:s3:::{bucket('reports')}"
    assert resources_of(document, "s3") == {
        capture_bucket,
        artifacts,
        f"{capture_bucket}/capture/{ENDPOINT}/*",
        f"{capture_bucket}/ground-truth/{ENDPOINT}/*",
        f"{artifacts}/models/recommender/baseline/latest/*",
        f"{artifacts}/{BUNDLE_KEY}",
        f"{reports}/monitoring/recommender/*",
    }
    writes = [s for s in statements(document) if "s3:PutObject" in s["Action"]]
    assert [w["Resource"] for w in writes] == [[f"{reports}/monitoring/recommender/*"]]
    # The reports bucket uses the platform key in this fixture, which also encrypts volumes.
    assert key_aliases(document) == {"alias/capture", "alias/artifacts", "alias/platform"}
    assert key_aliases(document, "EncryptOutputs") == {"alias/platform"}


def test_jobs_cannot_reach_cloudwatch_and_only_the_publisher_puts_metrics_in_our_namespace(
    capture,
):
    job = statements(policy(capture, "job"))
    assert not [s for s in job if "cloudwatch:PutMetricData" in s["Action"]]
    publisher = [
        p
        for p in capture.by_type("aws:iam/rolePolicy:RolePolicy")
        if p.name == "recommender-monitoring-publisher-policy"
    ]
    (document,) = [json.loads(p.inputs["policy"]) for p in publisher]
    (metrics,) = [s for s in statements(document) if "cloudwatch:PutMetricData" in s["Action"]]
    assert metrics["Action"] == ["cloudwatch:PutMetricData"]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": NAMESPACE}}
    reads = [s for s in statements(document) if "s3:GetObject" in s["Action"]]
    assert [r["Resource"] for r in reads] == [
        [f"arn:aws:s3:::{bucket('reports')}/monitoring/recommender/*"]
    ]


def test_reports_landing_under_this_models_prefix_call_the_publisher(capture):
    (rule,) = [
        r
        for r in capture.by_type("aws:cloudwatch/eventRule:EventRule")
        if r.inputs["name"] == "mlops-dev-recommender-reports"
    ]
    assert json.loads(rule.inputs["eventPattern"]) == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [bucket("reports")]},
            "object": {"key": [{"prefix": "monitoring/recommender/"}]},
        },
    }
    (target,) = capture.by_type("aws:cloudwatch/eventTarget:EventTarget")
    publisher_arn = (
        f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:mlops-dev-recommender-monitoring-publisher"
    )
    assert target.inputs["arn"] == publisher_arn
    (permission,) = capture.by_type("aws:lambda/permission:Permission")
    assert permission.inputs["sourceArn"] == (
        f"arn:aws:events:us-east-1:{ACCOUNT}:rule/mlops-dev-recommender-reports"
    )


def test_execution_role_runs_only_the_drift_and_quality_jobs_and_passes_only_the_job_role(
    capture,
):
    by_sid = {s["Sid"]: s for s in statements(policy(capture, "execution"))}
    sagemaker = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}"
    assert by_sid["RunProcessingJobsOfItsSteps"]["Resource"] == [
        f"{sagemaker}:processing-job/pipelines-*-featuredrift-*",
        f"{sagemaker}:processing-job/pipelines-*-modelquality-*",
    ]
    assert "RunTrainingJobsOfItsSteps" not in by_sid
    assert by_sid["PassJobRolesToSageMaker"]["Resource"] == [
        f"arn:aws:iam::{ACCOUNT}:role/mlops-dev-recommender-monitoring"
    ]


def test_no_statement_allows_wildcard_actions_or_any_action_on_every_resource(capture):
    for role in ("job", "execution", "schedule"):
        for statement in statements(policy(capture, role)):
            for action in statement["Action"]:
                assert action != "*" and not action.endswith(":*"), (role, action)
            if "*" in statement["Resource"]:
                assert set(statement["Action"]) <= ALLOWED_ON_EVERY_RESOURCE, (role, statement)


def test_jobs_publish_this_endpoints_metrics_from_its_capture_with_encrypted_volumes(capture):
    steps = definition(capture)["Steps"]
    assert [s["Name"] for s in steps] == [monitoring.STEP_DRIFT, monitoring.STEP_QUALITY]
    for step in steps:
        arguments = step["Arguments"]
        command = arguments["AppSpecification"]["ContainerArguments"]
        assert command[-6:] == [
            "--endpoint",
            ENDPOINT,
            "--model",
            "recommender",
            "--window-end",
            {"Get": f"Parameters.{monitoring.PARAM_WINDOW_END}"},
        ]
        assert "--publish" not in command
        assert arguments["NetworkConfig"]["EnableNetworkIsolation"] is True
        assert arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == alias_of(
            PLATFORM_KEY
        )
        assert arguments["ProcessingOutputConfig"]["KmsKeyId"] == alias_of(PLATFORM_KEY)
        assert arguments["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800}
        assert (
            arguments["RoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/mlops-dev-recommender-monitoring"
        )


def test_drift_compares_with_the_baseline_the_training_pipeline_publishes(capture):
    defaults = {p["Name"]: p["DefaultValue"] for p in definition(capture)["Parameters"]}
    published = training.TrainingLayout("recommender").baseline_key
    assert defaults[monitoring.PARAM_BASELINE] == f"s3://{bucket('artifacts')}/{published}"
    assert defaults[monitoring.PARAM_CAPTURE] == f"s3://{bucket('capture')}/capture/{ENDPOINT}/"
    assert defaults[monitoring.PARAM_DRIFT_THRESHOLD] == 0.15


def test_quality_judges_the_serving_models_evaluation_published_next_to_its_baseline(capture):
    defaults = {p["Name"]: p["DefaultValue"] for p in definition(capture)["Parameters"]}
    baseline = training.TrainingLayout("recommender").baseline_key
    reference = defaults[monitoring.PARAM_REFERENCE]
    assert reference == f"s3://{bucket('artifacts')}/{baseline.rsplit('/', 1)[0]}/"
    assert defaults[monitoring.PARAM_QUALITY_WINDOW_DAYS] == 5
    assert defaults[monitoring.PARAM_QUALITY_MIN_LABELLED] == 10
    assert defaults[monitoring.PARAM_QUALITY_TOLERANCE] == 0.05
    steps = {s["Name"]: s for s in definition(capture)["Steps"]}
    inputs = steps[monitoring.STEP_QUALITY]["Arguments"]["ProcessingInputs"]
    reference_input = next(i for i in inputs if i["InputName"] == "reference")
    parameter = {"Get": f"Parameters.{monitoring.PARAM_REFERENCE}"}
    assert reference_input["S3Input"]["S3Uri"] == parameter


def test_the_ground_truth_prefix_is_never_empty_so_no_labels_yet_is_not_a_failed_run(capture):
    (marker,) = capture.by_type("aws:s3/bucketObjectv2:BucketObjectv2")
    defaults = {p["Name"]: p["DefaultValue"] for p in definition(capture)["Parameters"]}
    assert f"s3://{marker.inputs['bucket']}/{marker.inputs['key']}".startswith(
        defaults[monitoring.PARAM_GROUND_TRUTH]
    )
    assert not marker.inputs["key"].endswith(".jsonl")  # the job reads labels from *.jsonl
    assert marker.inputs["serverSideEncryption"] == "aws:kms"


def test_jobs_run_isolated_inside_the_platform_subnets_when_it_has_some():
    prod = build("prod")
    for step in definition(prod)["Steps"]:
        network = step["Arguments"]["NetworkConfig"]
        assert network["VpcConfig"] == {
            "SecurityGroupIds": ["sg-1"],
            "Subnets": ["subnet-a", "subnet-b"],
        }
        assert network["EnableNetworkIsolation"] is True
        assert network["EnableInterContainerTrafficEncryption"] is True


def test_every_taggable_resource_carries_its_name_the_model_and_platform_tags(capture):
    tagged = [r for r in capture.resources if "tags" in r.inputs]
    assert {r.type for r in tagged} == {
        "aws:iam/role:Role",
        "aws:sagemaker/pipeline:Pipeline",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:lambda/function:Function",
        "aws:s3/bucketObjectv2:BucketObjectv2",
    }
    for resource in tagged:
        tags = resource.inputs["tags"]
        assert tags["Name"] == resource.name and tags["Model"] == "recommender"
        assert tags["Team"] == "personalization" and tags["Environment"] == "dev"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"schedule_expression": "every hour"}, "'every hour' is not an EventBridge Scheduler"),
        ({"drift_threshold": 0}, "drift_threshold is 0"),
        ({"max_runtime_seconds": 10**7}, "max_runtime_seconds is 10000000"),
        ({"capture_prefix": "capture/x"}, "prefix 'capture/x' must end with '/'"),
    ],
)
def test_invalid_arguments_are_refused_naming_the_value_received(overrides, message):
    with pytest.raises(ValueError, match=message):
        build(**overrides)
