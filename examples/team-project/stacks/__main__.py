"""A team's own Pulumi project: its model's whole loop on the shared platform.

The platform (keys, data lake, feature store, alarm topic) belongs to the platform team's
`mlops` project; this project reads it through a StackReference and adds one ModelWorkload.
"""

import pulumi

from infra import settings as platform_settings
from infra.components.platform_refs import PlatformRefs
from infra.components.workload import ModelWorkload, ModelWorkloadArgs

config = pulumi.Config()
environment = config.get("environment") or "dev"
platform_stack = pulumi.StackReference(config.require("platformStack"))

region = pulumi.Config("aws").require("region")
settings = platform_settings.from_mapping(
    "mlops",
    environment,
    region,
    {"environment": environment, "models": [config.require_object("model")]},
)
(model,) = settings.models
platform = PlatformRefs.from_stack_reference(
    platform_stack,
    name_prefix=settings.name_prefix,
    environment=environment,
    region=region,
    tags={**settings.tags, "Project": pulumi.get_project()},
)

workload = ModelWorkload(
    f"{settings.name_prefix}-{model.name}",
    ModelWorkloadArgs(platform=platform, model=model, settings=settings),
)

pulumi.export("endpointName", workload.endpoint.endpoint_name)
pulumi.export("modelPackageGroup", workload.registry.group_name)
pulumi.export("trainingPipeline", workload.pipeline_name)
