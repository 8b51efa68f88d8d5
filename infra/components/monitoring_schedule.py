"""Scheduled drift and quality monitoring of one endpoint (`mlops:monitoring:MonitoringSchedule`).

A SageMaker pipeline (definition from `infra.pipelines.monitoring`) and an EventBridge
Scheduler schedule that starts it. Three roles with explicit names, so every ARN is known at
preview:

* `<prefix>-<model>-monitoring-pipeline`: SageMaker Pipelines runs as it; it may start, watch
  and stop exactly the drift and quality jobs and pass exactly the job role;
* `<prefix>-<model>-monitoring`: the jobs; reads the endpoint's capture and ground-truth
  prefixes, the serving model's baseline and evaluation, and the code bundle, and writes its
  reports;
* `<prefix>-<model>-monitoring-schedule`: EventBridge Scheduler; may start this pipeline only.

The jobs are network-isolated. Each report carries its CloudWatch request, and a small
function (`ml_code.handlers.publish_metrics`) that may put metrics only in the
`ml_code.monitoring.metrics` namespace sends it when the report lands: an EventBridge rule on
the reports bucket's "Object Created" events under this model's prefix calls it. The schedule
passes its scheduled time as `WindowEnd`, so metrics describe the window, not the run.

The jobs run the code bundle that the model's `TrainingPipeline` uploads (same key: the hash
of the same `ml_code/` tree), so create both for a model.

A README object under the ground-truth prefix keeps the quality job's input from being empty
before the first labels arrive: SageMaker fails a processing job whose S3 input holds no
object, and "no labels yet" should end as a report that says so, not as a failed run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components import iam_documents
from infra.components.handler_function import HandlerFunction, HandlerFunctionArgs
from infra.components.platform_refs import PlatformRefs
from infra.components.tagging import tags_for
from infra.pipelines import jobs, monitoring, permissions
from infra.pipelines.source_bundle import build_source_bundle
from ml_code.handlers.publish_metrics import NAMESPACE_ENV
from ml_code.monitoring.metrics import NAMESPACE

SCHEDULER = "scheduler.amazonaws.com"
MAX_PROCESSING_RUNTIME_SECONDS = 7 * 24 * 3600


@dataclass
class MonitoringScheduleArgs:
    """Default: daily runs (ground truth arrives daily) on one ml.m5.large per job,
    network-isolated, stopped after an hour, on KMS-encrypted volumes; a run is started at
    most an hour late and never retried into a pile-up. The reports bucket must send its
    events to EventBridge (the DataLake's reports bucket does)."""

    platform: PlatformRefs
    model_name: str
    endpoint_name: str
    schedule_expression: str = "rate(1 day)"
    drift_threshold: float = 0.2
    processing_instance_type: str = "ml.m5.large"
    max_runtime_seconds: int = 3600
    capture_prefix: str | None = None
    """Default: `capture/<endpoint>/`, where `InferenceEndpoint` captures traffic."""
    ground_truth_prefix: str | None = None
    """Default: `ground-truth/<endpoint>/` in the capture bucket."""
    image_uri: str | None = None
    """Default: SageMaker's scikit-learn 1.9 image."""
    volume_size_gb: int = 30
    source_bundle_key: str | None = None
    """Default: the key `TrainingPipeline` uploads the current `ml_code/` bundle to."""
    tags: dict[str, str] = field(default_factory=dict)


class MonitoringSchedule(pulumi.ComponentResource):
    execution_role: aws.iam.Role
    job_role: aws.iam.Role
    schedule_role: aws.iam.Role
    pipeline: aws.sagemaker.Pipeline
    schedule: aws.scheduler.Schedule
    ground_truth_marker: aws.s3.BucketObjectv2

    def __init__(
        self, name: str, args: MonitoringScheduleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:monitoring:MonitoringSchedule", name, None, opts)
        _check(name, args)
        self.args = args
        platform = args.platform
        base = f"{platform.name_prefix}-{args.model_name}"
        self.layout = monitoring.MonitoringLayout(
            args.model_name,
            args.endpoint_name,
            args.capture_prefix or "",
            args.ground_truth_prefix or "",
        )
        self.pipeline_name = f"{base}-monitoring"
        self.pipeline_arn = permissions.pipeline_arn(platform, self.pipeline_name)
        self.schedule_name = f"{base}-monitoring"
        self.role_names = {
            "execution": f"{base}-monitoring-pipeline",
            "job": f"{base}-monitoring",
            "schedule": f"{base}-monitoring-schedule",
        }
        self.role_arns = permissions.role_arns(
            platform, f"MonitoringSchedule '{name}'", self.role_names
        )
        self.tags = {**args.tags, "Model": args.model_name}
        self.source_bundle_key = args.source_bundle_key or build_source_bundle().key
        self.bundle_uri = platform.s3_uri("artifacts", self.source_bundle_key)
        self.image_uri = pulumi.Output.from_input(platform.region).apply(
            lambda region: (
                args.image_uri or jobs.default_image_uri(region, args.processing_instance_type)
            )
        )
        self.job_role = self._role(name, "job", permissions.SAGEMAKER, self._job_statements())
        self.execution_role = self._role(
            name, "execution", permissions.SAGEMAKER, self._execution_statements()
        )
        self.schedule_role = self._role(name, "schedule", SCHEDULER, self._schedule_statements())
        self.definition = self._definition()
        self.pipeline = aws.sagemaker.Pipeline(
            f"{name}-pipeline",
            pipeline_name=self.pipeline_name,
            pipeline_display_name=self.pipeline_name,
            pipeline_description=f"Drift and quality of {args.endpoint_name}'s traffic",
            pipeline_definition=self.definition,
            role_arn=self.role_arns["execution"],
            tags=tags_for(f"{name}-pipeline", platform.tags, self.tags),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.execution_role, self.job_role]
            ),
        )
        self.ground_truth_marker = self._ground_truth_marker(name)
        self.schedule = self._schedule(name)
        self.schedule_arn = self.schedule.arn
        self.publisher = self._publisher(name)
        self.register_outputs(
            {
                "pipeline_name": self.pipeline_name,
                "pipeline_arn": self.pipeline_arn,
                "schedule_arn": self.schedule_arn,
                "execution_role_arn": self.role_arns["execution"],
                "job_role_arn": self.role_arns["job"],
            }
        )

    def _ground_truth_marker(self, name: str) -> aws.s3.BucketObjectv2:
        platform = self.args.platform
        return aws.s3.BucketObjectv2(
            f"{name}-ground-truth-marker",
            bucket=platform.bucket_names["capture"],
            key=self.layout.ground_truth_marker_key,
            content_type="text/plain",
            content=f"Ground truth of {self.args.endpoint_name}: SageMaker ground-truth merge "
            "files (*.jsonl) by upload time (yyyy/mm/dd/). This object keeps the prefix from "
            "being empty before the first labels arrive.\n",
            server_side_encryption="aws:kms",
            kms_key_id=platform.bucket_key_arns["capture"],
            bucket_key_enabled=True,
            tags=tags_for(f"{name}-ground-truth-marker", platform.tags, self.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _publisher(self, name: str) -> HandlerFunction:
        """Reports in, metrics out: the one piece with CloudWatch access, and only to our
        namespace."""
        platform, paths = self.args.platform, self.layout
        reports_bucket = platform.bucket_names["reports"]
        handler = HandlerFunction(
            f"{name}-publisher",
            HandlerFunctionArgs(
                platform=platform,
                handler="ml_code.handlers.publish_metrics.handler",
                environment={NAMESPACE_ENV: NAMESPACE},
                policy_statements=[
                    *permissions.read_objects(
                        "ReadReports", platform.bucket_arns["reports"], [paths.reports]
                    ),
                    permissions.keys_aliased(
                        "DecryptReports",
                        ["kms:Decrypt"],
                        platform,
                        [platform.bucket_key_alias_arns["reports"]],
                    ),
                    iam_documents.allow(
                        "PublishMonitoringMetrics",
                        ["cloudwatch:PutMetricData"],
                        ["*"],
                        Condition={"StringEquals": {"cloudwatch:namespace": NAMESPACE}},
                    ),
                ],
                tags=self.tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        rule_name = f"{platform.name_prefix}-{self.args.model_name}-reports"
        rule = aws.cloudwatch.EventRule(
            f"{name}-reports-rule",
            name=rule_name,
            description=f"Monitoring reports of {self.args.model_name} land: publish metrics",
            event_pattern=pulumi.Output.json_dumps(
                {
                    "source": ["aws.s3"],
                    "detail-type": ["Object Created"],
                    "detail": {
                        "bucket": {"name": [reports_bucket]},
                        "object": {"key": [{"prefix": paths.reports}]},
                    },
                }
            ),
            tags=tags_for(f"{name}-reports-rule", platform.tags, self.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.cloudwatch.EventTarget(
            f"{name}-reports-target",
            rule=rule.name,
            arn=handler.function_arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.lambda_.Permission(
            f"{name}-reports-invoke",
            action="lambda:InvokeFunction",
            function=handler.function_name,
            principal="events.amazonaws.com",
            source_arn=platform.arn("events", f"rule/{rule_name}"),
            source_account=platform.account_id,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[handler.function]),
        )
        return handler

    def _role(
        self, name: str, role: str, service: str, statements: list[dict[str, Any]]
    ) -> aws.iam.Role:
        return permissions.service_role(
            f"{name}-{role}-role",
            role_name=self.role_names[role],
            service=service,
            platform=self.args.platform,
            statements=statements,
            description=f"{self.args.model_name} monitoring: {role}",
            tags=self.tags,
            parent=self,
        )

    def _job_statements(self) -> list[dict[str, Any]]:
        platform, paths = self.args.platform, self.layout
        arns, keys = platform.bucket_arns, platform.bucket_key_alias_arns
        repository = pulumi.Output.all(platform.partition, self.image_uri).apply(
            lambda values: permissions.repository_arn(*values)
        )
        return [
            *permissions.read_objects(
                "TrafficAndGroundTruth", arns["capture"], [paths.capture, paths.ground_truth]
            ),
            *permissions.read_objects(
                "BaselineAndCode",
                arns["artifacts"],
                [paths.reference_prefix, self.source_bundle_key],
            ),
            permissions.write_objects("Reports", arns["reports"], [paths.reports]),
            *permissions.use_keys(
                platform, decrypt=[keys["capture"], keys["artifacts"]], encrypt=[keys["reports"]]
            ),
            permissions.job_logs(platform, ["processing"]),
            *permissions.pull_image(repository),
            permissions.volume_key(platform),
            *permissions.vpc_access(platform),
        ]

    def _execution_statements(self) -> list[dict[str, Any]]:
        platform = self.args.platform
        return [
            *permissions.run_jobs(platform, monitoring.PROCESSING_STEPS),
            permissions.pass_roles([self.role_arns["job"]]),
            permissions.volume_key(platform),
        ]

    def _schedule_statements(self) -> list[dict[str, Any]]:
        return [
            iam_documents.allow(
                "StartTheMonitoringPipeline",
                ["sagemaker:StartPipelineExecution"],
                [self.pipeline_arn],
            ),
            permissions.keys_aliased(
                "DecryptScheduleTarget",
                ["kms:Decrypt"],
                self.args.platform,
                [self.args.platform.kms_key_alias_arn],
            ),
        ]

    def _definition(self) -> pulumi.Output[str]:
        """Pure computation over known-at-preview inputs; no resource is created inside."""
        platform = self.args.platform
        return pulumi.Output.all(
            region=platform.region,
            capture=platform.bucket_names["capture"],
            reports=platform.bucket_names["reports"],
            artifacts=platform.bucket_names["artifacts"],
            bundle_uri=self.bundle_uri,
            volume_key=platform.kms_key_alias_arn,
            reports_key=platform.bucket_key_alias_arns["reports"],
            image=self.image_uri,
            job_role=self.role_arns["job"],
        ).apply(lambda values: monitoring.build_monitoring_definition(self._spec(values)))

    def _spec(self, values: dict[str, Any]) -> monitoring.MonitoringPipelineSpec:
        args, platform = self.args, self.args.platform
        return monitoring.MonitoringPipelineSpec(
            layout=self.layout,
            region=values["region"],
            bundle_uri=values["bundle_uri"],
            buckets={k: values[k] for k in ("capture", "reports", "artifacts")},
            reports_kms_key_id=values["reports_key"],
            settings=jobs.JobSettings(
                region=values["region"],
                role_arn=values["job_role"],
                volume_kms_key_id=values["volume_key"],
                instance_type=args.processing_instance_type,
                max_runtime_seconds=args.max_runtime_seconds,
                volume_size_gb=args.volume_size_gb,
                image_uri=values["image"],
                subnet_ids=tuple(platform.subnet_ids),
                security_group_ids=tuple(platform.security_group_ids),
            ),
            drift_threshold=args.drift_threshold,
        )

    def _schedule(self, name: str) -> aws.scheduler.Schedule:
        """Scheduler schedules take no tags; the pipeline it starts carries them."""
        args, platform = self.args, self.args.platform
        return aws.scheduler.Schedule(
            f"{name}-schedule",
            name=self.schedule_name,
            description=f"Monitor {args.endpoint_name}: drift and quality",
            schedule_expression=args.schedule_expression,
            flexible_time_window={"mode": "OFF"},
            kms_key_arn=platform.kms_key_arn,
            target={
                "arn": self.pipeline_arn,
                "role_arn": self.role_arns["schedule"],
                "sagemaker_pipeline_parameters": {
                    "pipeline_parameters": [
                        {
                            "name": monitoring.PARAM_DRIFT_THRESHOLD,
                            "value": repr(float(args.drift_threshold)),
                        },
                        {
                            "name": monitoring.PARAM_WINDOW_END,
                            "value": "<aws.scheduler.scheduled-time>",
                        },
                    ]
                },
                "retry_policy": {
                    "maximum_event_age_in_seconds": 3600,
                    "maximum_retry_attempts": 2,
                },
            },
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.pipeline, self.schedule_role]
            ),
        )


def _check(name: str, args: MonitoringScheduleArgs) -> None:
    where = f"MonitoringSchedule '{name}'"
    expression = args.schedule_expression
    if not (expression.startswith(("rate(", "cron(", "at(")) and expression.endswith(")")):
        raise ValueError(
            f"{where}: schedule_expression '{expression}' is not an EventBridge Scheduler "
            "expression; use e.g. 'rate(1 hour)' or 'cron(0 * * * ? *)'."
        )
    if args.drift_threshold <= 0:
        raise ValueError(
            f"{where}: drift_threshold is {args.drift_threshold}; a PSI threshold is positive "
            "(0.2 is the usual 'drifted' mark)."
        )
    if not 1 <= args.max_runtime_seconds <= MAX_PROCESSING_RUNTIME_SECONDS:
        raise ValueError(
            f"{where}: max_runtime_seconds is {args.max_runtime_seconds}; SageMaker processing "
            f"jobs accept 1 to {MAX_PROCESSING_RUNTIME_SECONDS} seconds."
        )
    for prefix in (args.capture_prefix, args.ground_truth_prefix):
        if prefix is not None and not prefix.endswith("/"):
            raise ValueError(f"{where}: prefix '{prefix}' must end with '/'.")
