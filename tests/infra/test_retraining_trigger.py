"""RetrainingTrigger under mocks: what may start a retrain, and what the retrain Lambda may do."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from infra.components.retraining_trigger import RetrainingTrigger, RetrainingTriggerArgs
from infra.local.events import transform_input
from infra.plan.engine import Capture, Resource
from tests.infra.platform import ACCOUNT, PLATFORM_KEY, TOPIC, platform_refs
from tests.infra.resolved import resolved

RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
PERMISSION = "aws:lambda/permission:Permission"
FUNCTION = "aws:lambda/function:Function"
ALARMS = ["mlops-dev-recsys-drift", "mlops-dev-recsys-quality"]
SAGEMAKER = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}"
EVENTS = f"arn:aws:events:us-east-1:{ACCOUNT}"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:mlops-dev-recsys-retraining-handler"


def _trigger(**overrides: Any) -> Capture:
    return _build(**overrides)[0]


def _build(**overrides: Any) -> tuple[Capture, list[RetrainingTrigger]]:
    built: list[RetrainingTrigger] = []

    def program() -> None:
        args = dict(
            platform=platform_refs(),
            model_name="recsys",
            pipeline_name="mlops-dev-recsys-training",
            model_package_group_name="mlops-dev-recsys",
            alarm_names=[pulumi.Output.from_input(a) for a in ALARMS],
            evidence_lag_days={ALARMS[1]: 9},
            cooldown_minutes=120,
        )
        args.update(overrides)
        trigger = RetrainingTrigger("recsys-retraining", RetrainingTriggerArgs(**args))
        built.append(trigger)
        for output in (
            "alarm_rule_arn",
            "schedule_rule_arn",
            "recheck_rule_arn",
            "failure_rule_arn",
            "function_name",
        ):
            pulumi.export(output, getattr(trigger, output))

    return resolved(program), built


@pytest.fixture(scope="module")
def capture() -> Capture:
    return _trigger()


def _rule(capture: Capture, role: str) -> Resource:
    (rule,) = [r for r in capture.by_type(RULE) if r.name == f"recsys-retraining-{role}-rule"]
    return rule


def _target_of(capture: Capture, rule: Resource) -> Resource:
    (target,) = [t for t in capture.by_type(TARGET) if t.inputs["rule"] == rule.inputs["name"]]
    return target


def _handler_policy(capture: Capture) -> dict[str, Any]:
    (policy,) = capture.by_type("aws:iam/rolePolicy:RolePolicy")
    return json.loads(policy.inputs["policy"])


def test_alarm_rule_matches_exactly_this_models_drift_and_quality_alarms_in_alarm_state(capture):
    pattern = json.loads(_rule(capture, "alarm").inputs["eventPattern"])
    assert pattern == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": ALARMS, "state": {"value": ["ALARM"]}},
    }


def test_alarm_rule_targets_the_retrain_handler_with_the_event_itself(capture):
    target = _target_of(capture, _rule(capture, "alarm"))
    assert target.inputs["arn"] == FUNCTION_ARN
    assert "input" not in target.inputs, "the handler needs the alarm event, not a constant"
    (function,) = capture.by_type(FUNCTION)
    assert function.inputs["handler"] == "ml_code.handlers.retrain.handler"
    assert FUNCTION_ARN.endswith(f":function:{function.inputs['name']}")


@pytest.mark.parametrize("role", ["alarm", "schedule"])
def test_lambda_permission_lets_only_eventbridge_invoke_and_only_from_its_rule(capture, role):
    rule_arn = f"{EVENTS}:rule/{_rule(capture, role).inputs['name']}"
    (permission,) = [
        p for p in capture.by_type(PERMISSION) if p.name == f"recsys-retraining-{role}-permission"
    ]
    assert permission.inputs["action"] == "lambda:InvokeFunction"
    assert permission.inputs["principal"] == "events.amazonaws.com"
    assert permission.inputs["sourceArn"] == rule_arn
    assert permission.inputs["sourceAccount"] == ACCOUNT
    assert permission.inputs["function"] == "mlops-dev-recsys-retraining-handler"


@pytest.mark.parametrize(
    ("role", "expression"), [("schedule", "rate(7 days)"), ("recheck", "rate(1 day)")]
)
def test_scheduled_rules_invoke_the_same_handler_with_their_source_and_event_time(
    capture, role, expression
):
    rule = _rule(capture, role)
    assert rule.inputs["scheduleExpression"] == expression
    target = _target_of(capture, rule)
    assert target.inputs["arn"] == FUNCTION_ARN
    transformer = target.inputs["inputTransformer"]
    assert transformer["inputPaths"] == {"time": "$.time"}
    # what EventBridge sends for a scheduled event, as the local router renders it
    scheduled = {"source": "aws.events", "time": "2026-12-03T01:00:00Z", "detail": {}}
    sent = transform_input(
        {"InputPathsMap": transformer["inputPaths"], "InputTemplate": transformer["inputTemplate"]},
        scheduled,
    )
    assert sent == {"source": role, "model": "recsys", "time": "2026-12-03T01:00:00Z"}


def test_no_schedule_or_recheck_rule_when_their_expressions_are_empty():
    capture, (trigger,) = _build(schedule_expression="", recheck_expression="")
    assert trigger.schedule_rule is None and trigger.schedule_rule_arn is None
    assert trigger.recheck_rule is None and trigger.recheck_rule_arn is None
    assert sorted(r.name for r in capture.by_type(RULE)) == [
        "recsys-retraining-alarm-rule",
        "recsys-retraining-failed-rule",
    ]
    assert len(capture.by_type(TARGET)) == 2 and len(capture.by_type(PERMISSION)) == 2


def test_handler_may_describe_only_this_models_alarms(capture):
    (statement,) = [
        s
        for s in _handler_policy(capture)["Statement"]
        if any(a.startswith("cloudwatch:") for a in s["Action"])
    ]
    assert statement["Action"] == ["cloudwatch:DescribeAlarms"]
    assert statement["Resource"] == [
        f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{name}" for name in ALARMS
    ]


def test_handler_may_start_and_list_only_this_pipeline_and_read_only_this_registry_group(capture):
    sagemaker = [
        s
        for s in _handler_policy(capture)["Statement"]
        if any(a.startswith("sagemaker:") for a in s["Action"])
    ]
    assert {(tuple(s["Action"]), tuple(s["Resource"])) for s in sagemaker} == {
        (
            ("sagemaker:StartPipelineExecution", "sagemaker:ListPipelineExecutions"),
            (f"{SAGEMAKER}:pipeline/mlops-dev-recsys-training",),
        ),
        (
            ("sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage"),
            (
                f"{SAGEMAKER}:model-package-group/mlops-dev-recsys",
                f"{SAGEMAKER}:model-package/mlops-dev-recsys/*",
            ),
        ),
        (
            ("sagemaker:DescribePipelineExecution",),
            (f"{SAGEMAKER}:pipeline/mlops-dev-recsys-training/execution/*",),
        ),
    }


def test_failed_or_stopped_runs_of_this_pipeline_reach_the_handler(capture):
    rule = _rule(capture, "failed")
    assert json.loads(rule.inputs["eventPattern"]) == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
        "detail": {
            "pipelineArn": [f"{SAGEMAKER}:pipeline/mlops-dev-recsys-training"],
            "currentPipelineExecutionStatus": ["Failed", "Stopped"],
        },
    }
    assert _target_of(capture, rule).inputs["arn"] == FUNCTION_ARN


def test_handler_may_publish_only_to_the_alarm_topic_with_the_platform_key(capture):
    statements = {s["Sid"]: s for s in _handler_policy(capture)["Statement"]}
    publish, encrypt = statements["NotifyTheAlarmTopic"], statements["EncryptForTheAlarmTopic"]
    assert publish["Action"] == ["sns:Publish"] and len(publish["Resource"]) == 1
    assert publish["Resource"][0].endswith(":mlops-dev-alarms")
    assert publish["Resource"] == [TOPIC]
    assert encrypt["Action"] == ["kms:GenerateDataKey", "kms:Decrypt"]
    assert encrypt["Resource"] == [PLATFORM_KEY]


def test_handler_policy_has_no_wildcard_actions_and_no_sagemaker_access_beyond_those(capture):
    for statement in _handler_policy(capture)["Statement"]:
        assert statement["Effect"] == "Allow"
        assert all("*" not in action for action in statement["Action"]), statement
        if statement["Resource"] == ["*"]:
            assert all(a.startswith("xray:") for a in statement["Action"]), statement


def test_handler_is_configured_with_pipeline_group_and_cooldown(capture):
    (function,) = capture.by_type(FUNCTION)
    assert function.inputs["environment"]["variables"] == {
        "PIPELINE_NAME": "mlops-dev-recsys-training",
        "MODEL_PACKAGE_GROUP": "mlops-dev-recsys",
        "COOLDOWN_MINUTES": "120",
        "MIN_NEW_LABEL_DAYS": "1",
        "ALARM_EVIDENCE_LAGS": '{"mlops-dev-recsys-drift": 0, "mlops-dev-recsys-quality": 9}',
        "LABEL_HORIZON_DAYS": "7",
        "MAX_RUNS_PER_EPISODE": "3",
        "RETRY_ALARMS": "mlops-dev-recsys-drift,mlops-dev-recsys-quality",
        "ALARM_TOPIC_ARN": TOPIC,
    }


def test_outputs_name_the_rules_and_the_function(capture):
    assert capture.outputs == {
        "alarm_rule_arn": f"{EVENTS}:rule/mlops-dev-recsys-retrain-alarm",
        "schedule_rule_arn": f"{EVENTS}:rule/mlops-dev-recsys-retrain-schedule",
        "recheck_rule_arn": f"{EVENTS}:rule/mlops-dev-recsys-retrain-recheck",
        "failure_rule_arn": f"{EVENTS}:rule/mlops-dev-recsys-retrain-failed",
        "function_name": "mlops-dev-recsys-retraining-handler",
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"alarm_names": []}, "alarm_names is empty"),
        ({"schedule_expression": "weekly"}, "'weekly' is not an EventBridge schedule"),
        ({"cooldown_minutes": -1}, "cooldown_minutes is -1"),
        ({"min_new_label_days": -2}, "min_new_label_days is -2"),
        ({"model_name": "m" * 40}, "longer than EventBridge's 64 characters"),
    ],
)
def test_invalid_arguments_are_rejected_with_the_value_and_the_fix(overrides, message):
    with pytest.raises(ValueError, match=message):
        _trigger(**overrides)


def test_every_taggable_resource_carries_nameplatform_refs_and_model_tags(capture):
    taggable = [r for r in capture.resources if "tags" in r.inputs]
    assert {r.type for r in taggable} >= {RULE, FUNCTION}
    for res in taggable:
        assert res.inputs["tags"]["Name"] == res.name
        assert res.inputs["tags"]["Environment"] == "dev"
    (function,) = capture.by_type(FUNCTION)
    assert function.inputs["tags"]["Model"] == "recsys"
