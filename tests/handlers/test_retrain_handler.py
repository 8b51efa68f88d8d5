"""The retrain handler against moto: alarm storms start one run, and only alarms or schedules do.

moto stores pipeline executions as Succeeded the moment they start and does not honour
`ClientRequestToken`, so a running execution is made by setting its status in moto's backend,
and the collapse of sequential duplicates is proven through the listing and cooldown checks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

from infra.local import moto_extensions
from ml_code.handlers import retrain
from ml_code.handlers.retrain import RetrainConfig, handler

REGION = "us-east-1"
PIPELINE = "mlops-dev-recsys-training"
GROUP = "mlops-dev-recsys"
COOLDOWN = 360
DEFINITION = {
    "Version": "2020-12-01",
    "Parameters": [
        {"Name": "TriggerReason", "Type": "String", "DefaultValue": "manual"},
        {"Name": "ChampionNdcgAt10", "Type": "Float", "DefaultValue": 0.0},
    ],
    "Steps": [],
}


@pytest.fixture
def sagemaker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("PIPELINE_NAME", PIPELINE)
    monkeypatch.setenv("MODEL_PACKAGE_GROUP", GROUP)
    monkeypatch.setenv("COOLDOWN_MINUTES", str(COOLDOWN))
    with mock_aws():
        client = boto3.client("sagemaker", region_name=REGION)
        client.create_pipeline(
            PipelineName=PIPELINE,
            PipelineDefinition=json.dumps(DEFINITION),
            RoleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/mlops-dev-pipeline",
        )
        client.create_model_package_group(ModelPackageGroupName=GROUP)
        yield client


def _alarm(state: str = "ALARM", name: str = "mlops-dev-recsys-drift", time: str | None = None):
    return {
        "version": "0",
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "time": time or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": [f"arn:aws:cloudwatch:{REGION}:{DEFAULT_ACCOUNT_ID}:alarm:{name}"],
        "detail": {
            "alarmName": name,
            "state": {"value": state, "reason": "Threshold Crossed: 0.35 > 0.2"},
            "previousState": {"value": "OK"},
        },
    }


def _executions(client: Any) -> list[dict[str, Any]]:
    return client.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]


def _parameters(client: Any, execution_arn: str) -> dict[str, str]:
    listed = client.list_pipeline_parameters_for_execution(PipelineExecutionArn=execution_arn)
    return {p["Name"]: p["Value"] for p in listed["PipelineParameters"]}


def _set_status(execution_arn: str, status: str) -> None:
    pipeline = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].pipelines[PIPELINE]
    pipeline.pipeline_executions[execution_arn].pipeline_execution_status = status


def _approved_package(
    client: Any, model_data_url: str | None, labels_through: str | None = None
) -> str:
    container = {"Image": "123.dkr.ecr.us-east-1.amazonaws.com/recsys:1"}
    if model_data_url is not None:
        container["ModelDataUrl"] = model_data_url
    metadata = {} if labels_through is None else {"labels_through": labels_through}
    return client.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties=metadata,
        InferenceSpecification={
            "Containers": [container],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]


def test_a_hundred_identical_alarm_events_start_exactly_one_execution(sagemaker):
    event = _alarm()
    results = [handler(event, None) for _ in range(100)]
    assert len(_executions(sagemaker)) == 1
    assert [r["started"] for r in results].count(True) == 1
    assert (
        results[0]["started"]
        and results[0]["execution_arn"] == _executions(sagemaker)[0]["PipelineExecutionArn"]
    )
    assert all(r["reason"].startswith("cooldown:") for r in results[1:])


def test_a_flapping_alarm_starts_exactly_one_execution(sagemaker):
    for _ in range(20):
        for state in ("ALARM", "OK", "INSUFFICIENT_DATA", "ALARM"):
            handler(_alarm(state), None)
    handler(_alarm(name="mlops-dev-recsys-quality"), None)
    assert len(_executions(sagemaker)) == 1


def test_an_alarm_after_the_cooldown_starts_a_second_execution(sagemaker):
    config = RetrainConfig.from_env()
    first = retrain.retrain(_alarm(), client=sagemaker, config=config)
    assert first["started"]
    inside = datetime.now(UTC) + timedelta(minutes=COOLDOWN - 1)
    assert not retrain.retrain(_alarm(), client=sagemaker, config=config, now=inside)["started"]
    later = datetime.now(UTC) + timedelta(minutes=COOLDOWN + 1)
    event = _alarm(time=later.strftime("%Y-%m-%dT%H:%M:%SZ"))
    second = retrain.retrain(event, client=sagemaker, config=config, now=later)
    assert second["started"] and second["execution_arn"] != first["execution_arn"]
    assert len(_executions(sagemaker)) == 2


@pytest.mark.parametrize("status", ["Executing", "Stopping"])
def test_a_running_execution_blocks_a_new_one_even_after_the_cooldown(sagemaker, status):
    config = RetrainConfig.from_env()
    running = retrain.retrain(_alarm(), client=sagemaker, config=config)["execution_arn"]
    _set_status(running, status)
    later = datetime.now(UTC) + timedelta(days=2)
    result = retrain.retrain(_alarm(), client=sagemaker, config=config, now=later)
    assert result == {
        "started": False,
        "reason": f"blocked: {status} execution in progress",
        "execution_arn": running,
    }
    assert len(_executions(sagemaker)) == 1


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
def test_alarm_events_not_in_alarm_state_start_nothing(sagemaker, state):
    result = handler(_alarm(state), None)
    assert result["started"] is False and result["reason"].startswith("ignored:")
    assert _executions(sagemaker) == []


def test_events_that_are_neither_alarms_nor_schedules_start_nothing(sagemaker):
    result = handler({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}, None)
    assert result == {
        "started": False,
        "reason": "ignored: neither an alarm state change, a re-check nor a scheduled retrain",
        "execution_arn": None,
    }
    assert _executions(sagemaker) == []


def test_the_run_receives_the_alarm_as_trigger_reason_and_no_champion_before_any_approval(
    sagemaker,
):
    result = handler(_alarm(), None)
    assert _parameters(sagemaker, result["execution_arn"]) == {
        "TriggerReason": "alarm:mlops-dev-recsys-drift:Threshold Crossed: 0.35 > 0.2",
    }


def test_the_run_must_beat_the_latest_approved_model_not_a_pending_one(sagemaker):
    _approved_package(sagemaker, "s3://artifacts/models/recsys/packaged/run-1/model.tar.gz")
    _approved_package(sagemaker, "s3://artifacts/models/recsys/packaged/run-2/model.tar.gz")
    sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "img", "ModelDataUrl": "s3://artifacts/pending.tar.gz"}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )
    result = handler({"source": "schedule", "model": "recsys"}, None)
    assert result["started"] and result["reason"] == "schedule"
    assert _parameters(sagemaker, result["execution_arn"]) == {
        "TriggerReason": "schedule",
        "ChampionModelUri": "s3://artifacts/models/recsys/packaged/run-2/model.tar.gz",
    }


def test_an_approved_package_without_a_model_artifact_is_no_champion(sagemaker):
    _approved_package(sagemaker, None)
    assert retrain.model_data_url(retrain.champion_package(sagemaker, GROUP)) is None


def test_no_scheduled_run_starts_before_days_of_labels_the_champion_has_not_seen(
    sagemaker, monkeypatch
):
    monkeypatch.setenv("MIN_NEW_LABEL_DAYS", "7")
    _approved_package(sagemaker, "s3://artifacts/champion.tar.gz", labels_through="2026-11-20")
    # a schedule on the 25th: labels up to the 24th, four days the champion has not seen
    early = handler({"source": "schedule", "time": "2026-11-25T01:00:00Z"}, None)
    assert not early["started"] and early["reason"].startswith("too early")
    assert "4 day(s)" in early["reason"] and _executions(sagemaker) == []
    late = handler({"source": "schedule", "time": "2026-11-28T01:00:00Z"}, None)
    assert late["started"] and len(_executions(sagemaker)) == 1


def test_duplicates_in_one_cooldown_window_share_a_request_token_and_the_next_window_does_not():
    config = RetrainConfig(PIPELINE, GROUP, cooldown_minutes=60)
    start = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    same = {retrain.request_token(config, start + timedelta(minutes=m)) for m in (0, 10, 59)}
    assert len(same) == 1
    assert retrain.request_token(config, start + timedelta(minutes=60)) not in same
    other = RetrainConfig("another-pipeline", GROUP, cooldown_minutes=60)
    assert retrain.request_token(other, start) not in same


def test_a_concurrent_start_with_the_same_token_counts_as_a_duplicate_not_a_failure(sagemaker):
    def conflict(**_: Any) -> tuple[Any, dict[str, Any]]:
        error = {"Code": "ConflictException", "Message": "token already used"}
        return AWSResponse("", 400, {}, None), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }

    sagemaker.meta.events.register("before-call.sagemaker.StartPipelineExecution", conflict)
    result = retrain.retrain(_alarm(), client=sagemaker, config=RetrainConfig.from_env())
    assert result == {
        "started": False,
        "reason": "duplicate: token already used",
        "execution_arn": None,
    }


def test_missing_configuration_names_the_variables():
    with pytest.raises(ValueError, match=r"\['PIPELINE_NAME', 'MODEL_PACKAGE_GROUP'\]"):
        RetrainConfig.from_env({})
    with pytest.raises(ValueError, match="COOLDOWN_MINUTES='six'"):
        RetrainConfig.from_env(
            {"PIPELINE_NAME": "p", "MODEL_PACKAGE_GROUP": "g", "COOLDOWN_MINUTES": "six"}
        )


def test_the_cooldown_is_measured_from_the_alarms_own_time_when_no_clock_is_given(monkeypatch):
    """A replayed or late event is judged by when the alarm fired, not by when it arrived."""
    seen: list[datetime] = []

    def blocking(client, config, now, episode, champion=None):
        seen.append(now)
        return None, None

    monkeypatch.setattr(retrain, "_blocking_execution", blocking)
    event = {
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "time": "2026-03-09T12:00:00Z",
        "detail": {"alarmName": "a", "state": {"value": "ALARM", "reason": "r"}},
    }

    class Client:
        def start_pipeline_execution(self, **kwargs):
            return {"PipelineExecutionArn": "arn:x"}

    config = RetrainConfig(pipeline_name="p", model_package_group="g", cooldown_minutes=60)
    monkeypatch.setattr(retrain, "champion_package", lambda client, group: None)
    retrain.retrain(event, client=Client(), config=config)
    assert seen == [datetime(2026, 3, 9, 12, tzinfo=UTC)]


# -- episodes: onset, re-check, backoff and cap -------------------------------------------------

DRIFT, QUALITY = "mlops-dev-recsys-drift", "mlops-dev-recsys-quality"
LAGS = json.dumps({DRIFT: 0, QUALITY: 7})


@pytest.fixture
def episodes(sagemaker, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The model's two alarms in moto's CloudWatch, a champion, three labelled days needed."""
    monkeypatch.setenv("ALARM_EVIDENCE_LAGS", LAGS)
    monkeypatch.setenv("RETRY_ALARMS", QUALITY)
    monkeypatch.setenv("MIN_NEW_LABEL_DAYS", "3")
    monkeypatch.setenv("COOLDOWN_MINUTES", "60")
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    for name in (DRIFT, QUALITY):
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="MLOps/ModelMonitor",
            MetricName=name.rsplit("-", 1)[-1],
            Statistic="Maximum",
            Period=86400,
            EvaluationPeriods=1,
            Threshold=0.2,
            ComparisonOperator="GreaterThanThreshold",
        )
    package = _approved_package(sagemaker, "s3://artifacts/champion.tar.gz", "2026-01-06")
    _set_created(package, datetime(2026, 1, 7, tzinfo=UTC))
    return cloudwatch


def _set_created(package_arn: str, when: datetime) -> None:
    backend = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION]
    for package in backend.model_packages.values():
        if package.arn == package_arn:
            package.creation_time = when.replace(tzinfo=None)


def _enter_alarm(cloudwatch: Any, name: str, when: datetime) -> dict[str, Any]:
    """The alarm goes to ALARM at `when` (dated in the emulator as CloudWatch would)."""
    from moto.cloudwatch.models import cloudwatch_backends

    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="crossed")
    alarm = cloudwatch_backends[DEFAULT_ACCOUNT_ID][REGION].alarms[name]
    alarm.state_updated_timestamp = when.replace(tzinfo=None)
    return _alarm(name=name, time=when.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _recheck(day: datetime) -> dict[str, Any]:
    return {"source": "recheck", "model": "recsys", "time": day.strftime("%Y-%m-%dT%H:%M:%SZ")}


def _day(n: int) -> datetime:
    return datetime(2026, 1, 7, 1, tzinfo=UTC) + timedelta(days=n)


def test_an_early_alarm_waits_and_the_recheck_starts_a_run_that_sees_the_change(episodes):
    """Drift on day 2 of a change: nothing labelled after it yet. The daily re-check starts
    the run once the pipeline's newest cut-off has three labelled days after the onset."""
    early = handler(_enter_alarm(episodes, DRIFT, _day(2)), None)
    assert not early["started"] and early["reason"].startswith("too early: the alarms' onset")
    answers = {n: handler(_recheck(_day(n)), None) for n in range(3, 12)}
    started = [n for n, a in answers.items() if a["started"]]
    assert started == [11]
    onset = _day(2).date()
    newest = retrain.newest_labelled_cutoff(_day(11), RetrainConfig.from_env())
    assert (newest - onset).days + 1 == 3  # the run trains and is judged on post-onset days
    assert answers[11]["reason"].startswith(f"recheck:{DRIFT}")


def test_a_quality_alarm_dates_its_onset_a_label_horizon_back(episodes):
    """Quality's newest datapoint judges requests a label horizon old: the change had shown in
    them, so their day is the onset, and two more labelled days make a run worth starting."""
    early = handler(_enter_alarm(episodes, QUALITY, _day(14)), None)
    assert early["reason"].startswith("too early: the alarms' onset is 2026-01-14")
    assert handler(_recheck(_day(16)), None)["started"]


def test_only_the_models_own_alarms_start_runs(episodes):
    result = handler(_alarm(name="mlops-dev-recsys-errors", time="2026-01-30T01:00:00Z"), None)
    assert not result["started"] and result["reason"].startswith("ignored:")
    assert _executions(sagemaker_client()) == []


def test_a_recheck_with_no_alarm_in_alarm_starts_nothing(episodes):
    result = handler(_recheck(_day(20)), None)
    assert result["reason"] == "ignored: none of the model's alarms is in ALARM"
    assert _executions(sagemaker_client()) == []


def test_a_rejected_candidate_is_retried_with_backoff_and_then_capped(episodes, monkeypatch):
    """Quality stays in ALARM and each run of the episode is rejected by the gate: the re-check
    retries after 1, then 2 cooldowns, then stops at three runs and says a person must look."""
    monkeypatch.setenv("COOLDOWN_MINUTES", str(24 * 60))
    handler(_enter_alarm(episodes, QUALITY, _day(11)), None)
    outcomes = {}
    for n in range(13, 22):
        answer = handler(_recheck(_day(n)), None)
        outcomes[n] = answer["reason"].split(":")[0]
        if answer["started"]:
            _set_status(answer["execution_arn"], "Failed")
            _set_start(answer["execution_arn"], _day(n))
    assert [n for n, o in outcomes.items() if o == "recheck"] == [13, 14, 16]
    assert outcomes[15] == "backoff" and outcomes[17] == "cap"
    assert len(_executions(sagemaker_client())) == 3


def test_drift_alone_is_done_once_the_serving_model_learnt_from_days_after_its_onset(episodes):
    """Features that keep moving after a good retrain keep drift on; with quality fine,
    retraining on them again would only give the gate more to reject."""
    handler(_enter_alarm(episodes, DRIFT, _day(2)), None)
    assert handler(_recheck(_day(11)), None)["started"]
    # the run learnt from cut-offs up to day 4 (labels through day 10) and now serves
    newer = _approved_package(sagemaker_client(), "s3://artifacts/v2.tar.gz", "2026-01-17")
    _set_created(newer, _day(11))
    later = handler(_recheck(_day(14)), None)
    assert not later["started"]
    assert later["reason"].startswith("done: the serving model learnt from days up to 2026-01-11")


def test_a_model_retrained_before_the_drift_onset_is_retrained_again(episodes):
    """An early run (started by another alarm) learnt only from days before drift showed."""
    handler(_enter_alarm(episodes, DRIFT, _day(6)), None)
    _approved_package(sagemaker_client(), "s3://artifacts/early.tar.gz", "2026-01-12")
    answers = {n: handler(_recheck(_day(n)), None) for n in range(7, 16)}
    assert [n for n, a in answers.items() if a["started"]] == [15]


def sagemaker_client() -> Any:
    return boto3.client("sagemaker", region_name=REGION)


def _set_start(execution_arn: str, when: datetime) -> None:
    pipeline = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].pipelines[PIPELINE]
    execution = pipeline.pipeline_executions[execution_arn]
    naive = when.replace(tzinfo=None)
    execution.creation_time = execution.start_time = execution.last_modified_time = naive


# -- failures are told ---------------------------------------------------------------------------


def _ended(execution_arn: str, status: str, pipeline: str = PIPELINE) -> dict[str, Any]:
    return {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Model Building Pipeline Execution Status Change",
        "time": "2026-01-20T01:00:00Z",
        "detail": {
            "pipelineArn": f"arn:aws:sagemaker:{REGION}:{DEFAULT_ACCOUNT_ID}:pipeline/{pipeline}",
            "pipelineExecutionArn": execution_arn,
            "currentPipelineExecutionStatus": status,
            "previousPipelineExecutionStatus": "Executing",
        },
    }


@pytest.fixture
def topic(sagemaker, monkeypatch: pytest.MonkeyPatch) -> str:
    arn = boto3.client("sns", region_name=REGION).create_topic(Name="mlops-dev-alarms")["TopicArn"]
    monkeypatch.setenv("ALARM_TOPIC_ARN", arn)
    return arn


def _sent(topic_arn: str) -> list[tuple[str, str]]:
    from moto.sns.models import sns_backends

    found = sns_backends[DEFAULT_ACCOUNT_ID][REGION].topics[topic_arn].sent_notifications
    return [(subject, message) for _, message, subject, *_ in found]


def test_a_rejected_candidate_reaches_the_alarm_topic_with_its_figures(sagemaker, topic):
    moto_extensions.install()  # moto returns no FailureReason; the embedded cloud does
    run = handler(_alarm(), None)["execution_arn"]
    reason = (
        "step 'RejectModel' failed: Not registered: test NDCG@10 0.31 must be at least the "
        "quality floor 0.2 and the champion's NDCG@10 on the same data 0.35."
    )
    pipeline = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].pipelines[PIPELINE]
    pipeline.pipeline_executions[run].pipeline_execution_failure_reason = reason
    _set_status(run, "Failed")
    result = handler(_ended(run, "Failed"), None)
    assert result["reason"].startswith("notified: step 'RejectModel' failed")
    ((subject, message),) = _sent(topic)
    assert subject == f"{PIPELINE}: training run Failed"
    assert "0.31 must be at least the quality floor 0.2" in message and "0.35" in message
    assert len(_executions(sagemaker)) == 1, "telling starts nothing"


@pytest.mark.parametrize(
    ("status", "pipeline"), [("Succeeded", PIPELINE), ("Failed", "another-pipeline")]
)
def test_only_this_pipelines_failed_or_stopped_runs_are_told(sagemaker, topic, status, pipeline):
    run = handler(_alarm(), None)["execution_arn"]
    result = handler(_ended(run, status, pipeline), None)
    assert result["reason"].startswith("ignored:") and _sent(topic) == []


# -- hostile events --------------------------------------------------------------------------------


@pytest.mark.parametrize("when", ["2026-12-04T10:00:00", "2026-12-04"])
def test_an_event_time_without_a_zone_is_utc(sagemaker, when):
    first = handler(_alarm(time=when), None)
    assert first["started"]
    assert handler(_alarm(time=when), None)["reason"].startswith("cooldown:")


def test_an_event_dated_in_the_future_cannot_skip_the_cooldown(sagemaker):
    assert handler(_alarm(), None)["started"]
    forged = handler(_alarm(time="2099-01-01T00:00:00Z"), None)
    assert not forged["started"] and forged["reason"].startswith("cooldown:")
    assert len(_executions(sagemaker)) == 1


@pytest.mark.parametrize("detail", [[], "ALARM", {"alarmName": "x", "state": "ALARM"}, None])
def test_an_alarm_event_whose_detail_is_not_an_object_is_ignored(sagemaker, detail):
    event = {**_alarm(), "detail": detail}
    result = handler(event, None)
    assert not result["started"] and result["reason"].startswith("ignored:")
    assert _executions(sagemaker) == []
