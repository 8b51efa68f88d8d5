"""Retrain a model when its drift or quality alarm fires, and on a schedule
(`mlops:retraining:RetrainingTrigger`).

Both paths invoke one Lambda (`ml_code.handlers.retrain`), which debounces: alarm storms and
flapping alarms start one pipeline execution, not many. The Lambda may start and list
executions of this model's training pipeline and read this model's registry group, nothing else.
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
    cooldown_minutes: int = 360
    min_new_label_days: int = 7
    """A run needs this many days of labels the serving model has not learnt from (see
    `ml_code.handlers.retrain`); 0 turns the check off."""
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

        self.schedule_rule = None
        self.schedule_rule_arn: pulumi.Output[str] | None = None
        if args.schedule_expression:
            self.schedule_rule, self.schedule_rule_arn = self._rule(
                name,
                "schedule",
                description=f"{args.model_name}: scheduled retrain",
                schedule_expression=args.schedule_expression,
            )
            # The handler's cooldown is measured in event time, as for alarms: the scheduled
            # event's `time` goes with the constant fields.
            template = json.dumps({"source": "schedule", "model": args.model_name})
            transformer = aws.cloudwatch.EventTargetInputTransformerArgs(
                input_paths={"time": "$.time"},
                input_template=template[:-1] + ', "time": <time>}',
            )
            self._invoke(name, "schedule", self.schedule_rule, self.schedule_rule_arn, transformer)

        self.register_outputs(
            {
                "alarm_rule_arn": self.alarm_rule_arn,
                "schedule_rule_arn": self.schedule_rule_arn,
                "function_name": self.function_name,
            }
        )

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


def _alarm_pattern(alarm_names: list[pulumi.Input[str]]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps(
        {
            "source": ["aws.cloudwatch"],
            "detail-type": [ALARM_STATE_CHANGE],
            "detail": {"alarmName": list(alarm_names), "state": {"value": ["ALARM"]}},
        }
    )


def _handler_statements(args: RetrainingTriggerArgs) -> list[dict[str, Any]]:
    # SageMaker lower-cases resource names inside ARNs.
    platform = args.platform
    pipeline = platform.arn("sagemaker", f"pipeline/{args.pipeline_name.lower()}")
    group = args.model_package_group_name.lower()
    return [
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
