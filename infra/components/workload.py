"""One model's half of the platform (`mlops:workload:ModelWorkload`).

Training pipeline, registry, endpoint path, monitoring, alarms and the retraining trigger for
one entry of `mlops:models`. Every physical name carries the model's name, so several teams'
workloads share one platform without colliding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from infra.components.inference_endpoint import InferenceEndpoint, InferenceEndpointArgs
from infra.components.model_alarms import ModelAlarms, ModelAlarmsArgs
from infra.components.model_registry import ModelRegistry, ModelRegistryArgs
from infra.components.monitoring_schedule import MonitoringSchedule, MonitoringScheduleArgs
from infra.components.platform_refs import PlatformRefs
from infra.components.retraining_trigger import RetrainingTrigger, RetrainingTriggerArgs
from infra.components.training_pipeline import TrainingPipeline, TrainingPipelineArgs
from infra.pipelines.monitoring import LABEL_HORIZON_DAYS
from infra.settings import ModelSettings, PlatformSettings, schedule_period_seconds


@dataclass
class ModelWorkloadArgs:
    platform: PlatformRefs
    model: ModelSettings
    settings: PlatformSettings
    tags: dict[str, str] = field(default_factory=dict)


class ModelWorkload(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: ModelWorkloadArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:workload:ModelWorkload", name, None, opts)
        platform, model, settings = args.platform, args.model, args.settings
        tags = {**args.tags, "Model": model.name, "Team": model.team}
        child = pulumi.ResourceOptions(parent=self)
        self.registry = ModelRegistry(
            f"{name}-registry",
            ModelRegistryArgs(
                platform=platform,
                model_name=model.name,
                approval_mode=settings.approval_mode,
                protect=settings.protect,
                tags=tags,
            ),
            opts=child,
        )
        self.endpoint = InferenceEndpoint(
            f"{name}-endpoint",
            InferenceEndpointArgs(
                platform=platform,
                model_name=model.name,
                model_package_group_name=self.registry.group_name,
                instance_type=model.endpoint_instance_type,
                min_instances=model.min_instances,
                max_instances=model.max_instances,
                target_invocations_per_instance=model.target_invocations_per_instance,
                capture_sampling_percent=settings.capture_sampling_percent,
                deployment_strategy=settings.deployment_strategy,
                tags=tags,
            ),
            opts=child,
        )
        self.alarms = ModelAlarms(
            f"{name}-alarms",
            ModelAlarmsArgs(
                platform=platform,
                model_name=model.name,
                endpoint_name=self.endpoint.endpoint_name,
                variant_name=self.endpoint.variant_name,
                drift_threshold=model.drift_threshold,
                quality_floor=model.quality_floor,
                quality_alarm_threshold=model.quality_alarm_threshold,
                latency_p99_ms=model.latency_p99_ms,
                error_5xx_threshold=model.error_5xx_threshold,
                missing_invocations_minutes=model.missing_invocations_minutes,
                monitoring_period_seconds=schedule_period_seconds(settings.monitoring_schedule),
                quality_alarm_periods=model.quality_alarm_periods,
                tags=tags,
            ),
            opts=child,
        )
        self.training = TrainingPipeline(
            f"{name}-training",
            TrainingPipelineArgs(
                platform=platform,
                model_name=model.name,
                model_package_group_name=self.registry.group_name,
                approval_mode=settings.approval_mode,
                quality_floor=model.quality_floor,
                training_instance_type=model.training_instance_type,
                training_instance_count=model.training_instance_count,
                processing_instance_type=model.processing_instance_type,
                max_runtime_seconds=model.training_max_runtime_seconds,
                inference_instance_types=(model.endpoint_instance_type,),
                tags=tags,
            ),
            opts=child,
        )
        self.pipeline_name = self.training.pipeline_name
        self.monitoring = MonitoringSchedule(
            f"{name}-monitoring",
            MonitoringScheduleArgs(
                platform=platform,
                model_name=model.name,
                endpoint_name=self.endpoint.endpoint_name,
                schedule_expression=settings.monitoring_schedule,
                drift_threshold=model.drift_threshold,
                processing_instance_type=model.processing_instance_type,
                source_bundle_key=self.training.bundle_key,
                tags=tags,
            ),
            opts=child,
        )
        self.retraining = RetrainingTrigger(
            f"{name}-retraining",
            RetrainingTriggerArgs(
                platform=platform,
                model_name=model.name,
                pipeline_name=self.pipeline_name,
                model_package_group_name=self.registry.group_name,
                alarm_names=[self.alarms.drift_alarm_name, self.alarms.quality_alarm_name],
                # How long before an alarm fires the traffic it judged was served: a drift
                # window ends when the (daily) schedule fires, quality's a label horizon earlier.
                evidence_lag_days={
                    self.alarms.drift_alarm_name: 1,
                    self.alarms.quality_alarm_name: LABEL_HORIZON_DAYS,
                },
                retry_alarm_names=[self.alarms.quality_alarm_name],
                schedule_expression=settings.retrain_schedule,
                recheck_expression=settings.monitoring_schedule,
                cooldown_minutes=settings.retrain_cooldown_minutes,
                min_new_label_days=settings.retrain_min_new_label_days,
                tags=tags,
            ),
            opts=child,
        )
        self.register_outputs(
            {
                "model_package_group": self.registry.group_name,
                "endpoint_name": self.endpoint.endpoint_name,
                "pipeline_name": self.pipeline_name,
                "monitoring_pipeline_name": self.monitoring.pipeline_name,
                "alarm_names": self.alarms.alarm_names,
            }
        )
