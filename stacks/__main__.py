"""The mlops platform program: one stack per environment (`stacks/Pulumi.<env>.yaml`)."""

import pulumi
import pulumi_aws as aws

from infra import settings as platform_settings
from infra.components.platform import MlPlatform, MlPlatformArgs
from infra.components.workload import ModelWorkload, ModelWorkloadArgs

settings = platform_settings.load()
identity = aws.get_caller_identity_output()
partition = aws.get_partition_output()
webhook = pulumi.Config().get_secret("alertWebhookUrl")

platform = MlPlatform(
    settings.name_prefix,
    MlPlatformArgs(
        settings=settings,
        account_id=identity.account_id,
        partition=partition.partition,
        alert_webhook_url=webhook if pulumi.Config().get("alertWebhookUrl") else None,
    ),
)

workloads = {
    model.name: ModelWorkload(
        f"{settings.name_prefix}-{model.name}",
        ModelWorkloadArgs(platform=platform.refs, model=model, settings=settings),
    )
    for model in settings.models
}

pulumi.export("environment", settings.environment)
pulumi.export("platform", platform.refs.to_stack_output())
pulumi.export("bucketNames", platform.data_lake.bucket_names)
pulumi.export("kmsKeyArn", platform.key.arn)
pulumi.export("alarmTopicArn", platform.alarm_topic_arn)
pulumi.export(
    "models",
    {
        name: {
            "modelPackageGroup": w.registry.group_name,
            "endpointName": w.endpoint.endpoint_name,
            "trainingPipeline": w.pipeline_name,
        }
        for name, w in workloads.items()
    },
)
