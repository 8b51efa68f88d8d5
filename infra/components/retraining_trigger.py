"""Retrain a model when its drift or quality alarm fires, re-check while it stays in ALARM,
and retrain on a schedule (`mlops:retraining:RetrainingTrigger`).

Every path invokes one Lambda (`ml_code.handlers.retrain`), which debounces (alarm storms and
flapping alarms start one pipeline execution, not many), waits until a run can see the change
the alarms report, and backs off within an episode. An alarm that stays in ALARM sends no
second event, so the re-check rule asks again on a schedule: a rejected candidate or an alarm
raised too early does not leave a degraded model serving until the next scheduled retrain.
The Lambda may start and list executions of this model's training pipeline, read this model's
registry group and describe this model's alarms, nothing else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components import iam_documents
from infra.components.handler_function import HandlerFunction, HandlerFunctionArgs
from infra.components.platform_refs import PlatformRefs
from infra.components.tagging import tags_for
from infra.settings import SCHEDULE_PATTERN

HANDLER = "ml_code.handlers.retrain.handler"
ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
PIPELINE_EXECUTION_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
SCHEDULE = re.compile(SCHEDULE_PATTERN)
RULE_NAME_MAX = 64


@dataclass
class RetrainingTriggerArgs:
    """What to retrain, on which alarms, and how often at most.

    Default: a retrain every 7 days (`schedule_expression=""` turns the schedule off), and no
    new execution within 360 minutes of the last one started or while one is running.
    """

    platform: PlatformRefs
    model_name: str
    pipeline_name: str
    model_package_group_name: str
    alarm_names: list[pulumi.Input[str]]
    schedule_expression: str = "rate(7 days)"
    recheck_expression: str = "rate(1 day)"
    """While one of `alarm_names` stays in ALARM, the handler re-checks this often (as often as
    monitoring publishes, so each new datapoint is looked at once); "" turns re-checks off."""
    cooldown_minutes: int = 360
    min_new_label_days: int = 1
    """A run needs this many labelled days since the alarms' onset (see
    `ml_code.handlers.retrain`); 0 turns the check off."""
    evidence_lag_days: dict[str, int] = field(default_factory=dict)
    """Per alarm name, how many days before it fires the change it reports began (the label
    horizon for a quality alarm; default 0)."""
    label_horizon_days: int = 7
    """Days of purchases a label covers: the training pipeline's newest usable cut-off is this
    many days before a run starts."""
    max_runs_per_episode: int = 3
    retry_alarm_names: list[pulumi.Input[str]] | None = None
    """Alarms whose staying in ALARM means the serving model itself is still below its
    threshold (quality), so a rejected candidate is retried; default: every alarm."""
    tags: dict[str, str] = field(default_factory=dict)


class RetrainingTrigger(pulumi.ComponentResource):
    handler: HandlerFunction
    alarm_rule: aws.cloudwatch.EventRule
    schedule_rule: aws.cloudwatch.EventRule | None

    def __init__(
        self, name: str, args: RetrainingTriggerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:retraining:RetrainingTrigger", name, None, opts)
        _check(name, args)
        self._args = args
        platform = args.platform
        self.handler = HandlerFunction(
            f"{name}-handler",
            HandlerFunctionArgs(
                platform=platform,
                handler=HANDLER,
                policy_statements=_handler_statements(args),
                environment={
                    "PIPELINE_NAME": args.pipeline_name,
                    "MODEL_PACKAGE_GROUP": args.model_package_group_name,
                    "COOLDOWN_MINUTES": str(args.cooldown_minutes),
                    "MIN_NEW_LABEL_DAYS": str(args.min_new_label_days),
                    "ALARM_EVIDENCE_LAGS": pulumi.Output.all(*args.alarm_names).apply(
                        lambda names: json.dumps(
                            {n: args.evidence_lag_days.get(n, 0) for n in names}, sort_keys=True
                        )
                    ),
                    "LABEL_HORIZON_DAYS": str(args.label_horizon_days),
                    "MAX_RUNS_PER_EPISODE": str(args.max_runs_per_episode),
                    "ALARM_TOPIC_ARN": platform.alarm_topic_arn,
                    "RETRY_ALARMS": pulumi.Output.all(
                        *(
                            args.alarm_names
                            if args.retry_alarm_names is None
                            else args.retry_alarm_names
                        )
                    ).apply(lambda names: ",".join(sorted(names))),
                },
                tags={**args.tags, "Model": args.model_name},
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.function_name = self.handler.function_name

        self.alarm_rule, self.alarm_rule_arn = self._rule(
            name,
            "alarm",
            description=f"{args.model_name}: drift or quality alarm entered ALARM",
            event_pattern=_alarm_pattern(args.alarm_names),
        )
        self._invoke(name, "alarm", self.alarm_rule, self.alarm_rule_arn, None)

        self.failure_rule, self.failure_rule_arn = self._rule(
            name,
            "failed",
            description=f"{args.model_name}: a training run failed or was stopped",
            event_pattern=_failure_pattern(platform, args.pipeline_name),
        )
        self._invoke(name, "failed", self.failure_rule, self.failure_rule_arn, None)

        self.schedule_rule, self.schedule_rule_arn = self._scheduled(
            name, "schedule", "scheduled retrain", args.schedule_expression
        )
        self.recheck_rule, self.recheck_rule_arn = self._scheduled(
            name, "recheck", "re-check alarms still in ALARM", args.recheck_expression
        )

        self.register_outputs(
            {
                "alarm_rule_arn": self.alarm_rule_arn,
                "schedule_rule_arn": self.schedule_rule_arn,
                "recheck_rule_arn": self.recheck_rule_arn,
                "failure_rule_arn": self.failure_rule_arn,
                "function_name": self.function_name,
            }
        )

    def _scheduled(
        self, name: str, role: str, description: str, expression: str
    ) -> tuple[aws.cloudwatch.EventRule | None, pulumi.Output[str] | None]:
        """A rule on `expression` (none when it is empty) sending `{"source": role}` and the
        event's time to the handler."""
        if not expression:
            return None, None
        rule, arn = self._rule(
            name,
            role,
            description=f"{self._args.model_name}: {description}",
            schedule_expression=expression,
        )
        self._invoke(name, role, rule, arn, _timed_input(role, self._args.model_name))
        return rule, arn

    def _rule(
        self, name: str, role: str, **rule_args: Any
    ) -> tuple[aws.cloudwatch.EventRule, pulumi.Output[str]]:
        platform = self._args.platform
        rule_name = _rule_name(platform.name_prefix, self._args.model_name, role)
        rule = aws.cloudwatch.EventRule(
            f"{name}-{role}-rule",
            name=rule_name,
            state="ENABLED",
            tags=tags_for(f"{name}-{role}-rule", platform.tags, self._args.tags),
            opts=pulumi.ResourceOptions(parent=self),
            **rule_args,
        )
        return rule, platform.arn("events", f"rule/{rule_name}")

    def _invoke(
        self,
        name: str,
        role: str,
        rule: aws.cloudwatch.EventRule,
        rule_arn: pulumi.Output[str],
        input_transformer: aws.cloudwatch.EventTargetInputTransformerArgs | None,
    ) -> None:
        """EventBridge may invoke the handler from this rule only."""
        permission = aws.lambda_.Permission(
            f"{name}-{role}-permission",
            action="lambda:InvokeFunction",
            function=self.handler.function.name,
            principal="events.amazonaws.com",
            source_arn=rule_arn,
            source_account=self._args.platform.account_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.cloudwatch.EventTarget(
            f"{name}-{role}-target",
            rule=rule.name,
            arn=self.handler.function_arn,
            input_transformer=input_transformer,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
        )


def _timed_input(source: str, model_name: str) -> aws.cloudwatch.EventTargetInputTransformerArgs:
    """`{"source": source, "model": model_name}` plus the scheduled event's `time`: the handler
    measures its cooldown and the labelled days since an onset in event time, for schedules as
    for alarms."""
    template = json.dumps({"source": source, "model": model_name})
    return aws.cloudwatch.EventTargetInputTransformerArgs(
        input_paths={"time": "$.time"},
        input_template=template[:-1] + ', "time": <time>}',
    )


def _failure_pattern(platform: PlatformRefs, pipeline_name: str) -> pulumi.Output[str]:
    """This pipeline's executions that end Failed (a rejected candidate included) or Stopped."""
    return pulumi.Output.json_dumps(
        {
            "source": ["aws.sagemaker"],
            "detail-type": [PIPELINE_EXECUTION_STATUS_CHANGE],
            "detail": {
                "pipelineArn": [_pipeline_arn(platform, pipeline_name)],
                "currentPipelineExecutionStatus": ["Failed", "Stopped"],
            },
        }
    )


def _pipeline_arn(platform: PlatformRefs, pipeline_name: str) -> pulumi.Output[str]:
    # SageMaker lower-cases resource names inside ARNs.
    return platform.arn("sagemaker", f"pipeline/{pipeline_name.lower()}")


def _alarm_pattern(alarm_names: list[pulumi.Input[str]]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps(
        {
            "source": ["aws.cloudwatch"],
            "detail-type": [ALARM_STATE_CHANGE],
            "detail": {"alarmName": list(alarm_names), "state": {"value": ["ALARM"]}},
        }
    )


def _handler_statements(args: RetrainingTriggerArgs) -> list[dict[str, Any]]:
    platform = args.platform
    pipeline = _pipeline_arn(platform, args.pipeline_name)
    group = args.model_package_group_name.lower()
    return [
        iam_documents.allow(
            "ReadWhyThisPipelinesRunsFailed",
            ["sagemaker:DescribePipelineExecution"],
            [pulumi.Output.concat(pipeline, "/execution/*")],
        ),
        iam_documents.allow("NotifyTheAlarmTopic", ["sns:Publish"], [platform.alarm_topic_arn]),
        iam_documents.allow(
            # the alarm topic is encrypted with the platform key: publishing needs a data key
            "EncryptForTheAlarmTopic",
            ["kms:GenerateDataKey", "kms:Decrypt"],
            [platform.kms_key_arn],
        ),
        iam_documents.allow(
            # DescribeAlarms takes alarm ARNs as resources, as in AWS's own sample policy:
            # https://docs.aws.amazon.com/r53recovery/latest/dg/security_iam_region_switch_cloudwatch.html
            "DescribeThisModelsAlarms",
            ["cloudwatch:DescribeAlarms"],
            [
                platform.arn("cloudwatch", pulumi.Output.concat("alarm:", n))
                for n in args.alarm_names
            ],
        ),
        iam_documents.allow(
            "StartAndListTrainingPipelineExecutions",
            ["sagemaker:StartPipelineExecution", "sagemaker:ListPipelineExecutions"],
            [pipeline],
        ),
        iam_documents.allow(
            "ReadChampionFromRegistryGroup",
            ["sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage"],
            [
                platform.arn("sagemaker", f"model-package-group/{group}"),
                platform.arn("sagemaker", f"model-package/{group}/*"),
            ],
        ),
    ]


def _rule_name(prefix: str, model_name: str, role: str) -> str:
    return f"{prefix}-{model_name}-retrain-{role}"


def _check(name: str, args: RetrainingTriggerArgs) -> None:
    if not args.alarm_names:
        raise ValueError(
            f"RetrainingTrigger '{name}': alarm_names is empty; pass the model's drift and "
            "quality alarm names (an empty list would make the rule match no alarm)."
        )
    if args.recheck_expression and not SCHEDULE.match(args.recheck_expression):
        raise ValueError(
            f"RetrainingTrigger '{name}': recheck_expression '{args.recheck_expression}' is "
            "not an EventBridge schedule; use 'rate(1 day)' or '' for no re-check."
        )
    named = {n for n in args.alarm_names if isinstance(n, str)}
    unknown = sorted(set(args.evidence_lag_days) - named)
    if unknown and len(named) == len(args.alarm_names):
        raise ValueError(
            f"RetrainingTrigger '{name}': evidence_lag_days names {unknown}, which are not in "
            f"alarm_names {args.alarm_names}; give lags for the model's own alarms."
        )
    if args.schedule_expression and not SCHEDULE.match(args.schedule_expression):
        raise ValueError(
            f"RetrainingTrigger '{name}': schedule_expression '{args.schedule_expression}' is "
            "not an EventBridge schedule; use 'rate(7 days)', 'cron(0 3 ? * MON *)', or '' for "
            "no scheduled retrain."
        )
    if args.min_new_label_days < 0:
        raise ValueError(
            f"RetrainingTrigger '{name}': min_new_label_days is {args.min_new_label_days}; use 0 "
            "to start runs whatever the champion has seen."
        )
    if args.cooldown_minutes < 0:
        raise ValueError(
            f"RetrainingTrigger '{name}': cooldown_minutes is {args.cooldown_minutes}; use 0 "
            "(no cooldown beyond running executions) or more."
        )
    longest = _rule_name(args.platform.name_prefix, args.model_name, "schedule")
    if len(longest) > RULE_NAME_MAX:
        raise ValueError(
            f"RetrainingTrigger '{name}': rule name '{longest}' is longer than EventBridge's "
            f"{RULE_NAME_MAX} characters; use a shorter model name."
        )
