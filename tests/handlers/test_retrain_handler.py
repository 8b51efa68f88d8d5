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
        "reason": "ignored: neither an alarm state change nor a scheduled retrain",
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


def test_no_run_starts_before_a_week_of_labels_the_champion_has_not_seen(sagemaker, monkeypatch):
    monkeypatch.setenv("MIN_NEW_LABEL_DAYS", "7")
    _approved_package(sagemaker, "s3://artifacts/champion.tar.gz", labels_through="2026-11-20")
    # an alarm on the 25th: labels up to the 24th, four days the champion has not seen
    early = handler(_alarm(time="2026-11-25T01:00:00Z"), None)
    assert not early["started"] and early["reason"].startswith("too early")
    assert "4 day(s)" in early["reason"] and _executions(sagemaker) == []
    late = handler(_alarm(time="2026-11-28T01:00:00Z"), None)  # seven days: worth a run
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

    def blocking(client, config, now):
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
