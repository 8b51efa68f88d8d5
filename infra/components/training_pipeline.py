"""One model's training pipeline as infrastructure (`mlops:pipelines:TrainingPipeline`).

The source bundle (S3 object keyed by the code hash), three roles and the SageMaker pipeline
whose definition `infra.pipelines.training` builds. Roles carry explicit names so their ARNs,
and with them the whole definition, are known at preview:

* `<prefix>-<model>-training-pipeline`: SageMaker Pipelines runs as it; it may start, watch and
  stop exactly the jobs of this pipeline's steps, pass exactly the two job roles to SageMaker,
  read the evaluation report its gate reads, and register versions in this model's group;
* `<prefix>-<model>-processing`: the validate, features, evaluate and package jobs; reads the
  model's raw datasets, curated data, models and the code bundle, writes only its own prefixes;
* `<prefix>-<model>-training`: the training job; reads features and the code bundle, writes
  the training output prefix.

Job volumes are encrypted with the platform key and job outputs with the key of the bucket they
land in (its bucket policy refuses any other), both named by alias ARN in the definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from infra.components import iam_documents
from infra.components.platform_refs import PlatformRefs
from infra.components.tagging import tags_for
from infra.pipelines import jobs, permissions, training
from infra.pipelines.source_bundle import BUILD_DIR, SOURCE_DIR, SourceBundle, build_source_bundle

ApprovalMode = Literal["automatic", "manual"]
MAX_PROCESSING_RUNTIME_SECONDS = 7 * 24 * 3600
MAX_TRAINING_RUNTIME_SECONDS = 28 * 24 * 3600


@dataclass
class TrainingPipelineArgs:
    """Default: registration needs a person's approval in prod and is automatic elsewhere; jobs
    run network-isolated on KMS-encrypted volumes, in the platform's subnets when it has some,
    and stop after `max_runtime_seconds` (one hour).

    `approval_mode="automatic"` in prod is refused unless `allow_automatic_approval_in_prod`.
    """

    platform: PlatformRefs
    model_name: str
    model_package_group_name: str
    approval_mode: ApprovalMode | None = None
    """Default: `manual` in prod, `automatic` elsewhere."""
    quality_floor: float = 0.2
    """The NDCG@10 a new model must reach (the `QualityFloor` parameter's default)."""
    training_instance_type: str = "ml.m5.large"
    training_instance_count: int = 1
    processing_instance_type: str = "ml.m5.large"
    max_runtime_seconds: int = 3600
    """Every job's MaxRuntimeInSeconds."""
    hyperparameters: Mapping[str, str | int | float] = field(default_factory=dict)
    """`train.py` flags (`learning-rate`) and defaults; each becomes a pipeline parameter.
    Default: none, so `train.py`'s own defaults apply."""
    inference_instance_types: tuple[str, ...] = ("ml.m5.large",)
    dataset_prefix: str | None = None
    """Where datasets live in the raw bucket. Default: `datasets/<model>/`."""
    max_data_age_days: int = 2
    image_uri: str | None = None
    """Image for every job and for serving. Default: SageMaker's scikit-learn 1.9 image."""
    volume_size_gb: int = 30
    allow_automatic_approval_in_prod: bool = False
    source_dir: Path = SOURCE_DIR
    build_dir: Path = BUILD_DIR
    tags: dict[str, str] = field(default_factory=dict)


class TrainingPipeline(pulumi.ComponentResource):
    bundle: SourceBundle
    source_object: aws.s3.BucketObjectv2
    execution_role: aws.iam.Role
    processing_role: aws.iam.Role
    training_role: aws.iam.Role
    pipeline: aws.sagemaker.Pipeline

    def __init__(
        self, name: str, args: TrainingPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:pipelines:TrainingPipeline", name, None, opts)
        _check(name, args)
        self.args = args
        platform = args.platform
        base = f"{platform.name_prefix}-{args.model_name}"
        self.layout = training.TrainingLayout(args.model_name, args.dataset_prefix or "")
        self.pipeline_name = f"{base}-training"
        self.pipeline_arn = permissions.pipeline_arn(platform, self.pipeline_name)
        self.role_names = {
            "execution": f"{base}-training-pipeline",
            "processing": f"{base}-processing",
            "training": f"{base}-training",
        }
        self.role_arns = permissions.role_arns(
            platform, f"TrainingPipeline '{name}'", self.role_names
        )
        self.execution_role_arn = self.role_arns["execution"]
        self.approval_status = _approval_status(args)
        self.tags = {**args.tags, "Model": args.model_name}

        self.bundle = build_source_bundle(args.source_dir, args.build_dir)
        # One object per model: two workloads never manage the same S3 object.
        self.bundle_key = f"code/{args.model_name}/{self.bundle.key}"
        self.bundle_uri = platform.s3_uri("artifacts", self.bundle_key)
        self.source_object = self._source_object(name)
        self.no_champion = self._no_champion(name)
        self.image_uri = pulumi.Output.from_input(platform.region).apply(
            lambda region: (
                args.image_uri or jobs.default_image_uri(region, args.processing_instance_type)
            )
        )
        self.processing_role = self._role(name, "processing", self._processing_statements())
        self.training_role = self._role(name, "training", self._training_statements())
        self.execution_role = self._role(name, "execution", self._execution_statements())
        self.definition = self._definition()
        self.pipeline = aws.sagemaker.Pipeline(
            f"{name}-pipeline",
            pipeline_name=self.pipeline_name,
            pipeline_display_name=self.pipeline_name,
            pipeline_description=f"Validate, train, evaluate and register {args.model_name}",
            pipeline_definition=self.definition,
            role_arn=self.execution_role_arn,
            tags=tags_for(f"{name}-pipeline", platform.tags, self.tags),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[
                    self.source_object,
                    self.no_champion,
                    self.execution_role,
                    self.processing_role,
                    self.training_role,
                ],
            ),
        )
        self.register_outputs(
            {
                "pipeline_name": self.pipeline_name,
                "pipeline_arn": self.pipeline_arn,
                "execution_role_arn": self.execution_role_arn,
                "processing_role_arn": self.role_arns["processing"],
                "training_role_arn": self.role_arns["training"],
                "source_bundle_uri": self.bundle_uri,
                "code_hash": self.bundle.code_hash,
            }
        )

    def _source_object(self, name: str) -> aws.s3.BucketObjectv2:
        return self._artifact(
            f"{name}-source",
            self.bundle_key,
            "application/gzip",
            source=pulumi.FileAsset(str(self.bundle.path)),
        )

    def _no_champion(self, name: str) -> aws.s3.BucketObjectv2:
        """The default `ChampionModelUri`: a prefix with no model in it (a processing input
        must not be empty), so a first run only has to clear the quality floor."""
        return self._artifact(
            f"{name}-no-champion",
            f"{self.layout.models}{training.NO_CHAMPION}README",
            "text/plain",
            content="No champion yet: the first model only has to clear the quality floor.\n",
        )

    def _artifact(
        self, resource_name: str, key: str, content_type: str, **body: Any
    ) -> aws.s3.BucketObjectv2:
        """An object in the artifacts bucket, encrypted with that bucket's key."""
        platform = self.args.platform
        return aws.s3.BucketObjectv2(
            resource_name,
            bucket=platform.bucket_names["artifacts"],
            key=key,
            content_type=content_type,
            server_side_encryption="aws:kms",
            kms_key_id=platform.bucket_key_arns["artifacts"],
            bucket_key_enabled=True,
            tags=tags_for(resource_name, platform.tags, self.tags),
            opts=pulumi.ResourceOptions(parent=self),
            **body,
        )

    def _role(self, name: str, role: str, statements: list[dict[str, Any]]) -> aws.iam.Role:
        return permissions.service_role(
            f"{name}-{role}-role",
            role_name=self.role_names[role],
            service=permissions.SAGEMAKER,
            platform=self.args.platform,
            statements=statements,
            description=f"{self.args.model_name} training pipeline: {role}",
            tags=self.tags,
            parent=self,
        )

    def _job_statements(self, kind: str) -> list[dict[str, Any]]:
        """What any job of this pipeline needs besides data: logs, image, network, volumes."""
        platform = self.args.platform
        repository = pulumi.Output.all(platform.partition, self.image_uri).apply(
            lambda values: permissions.repository_arn(*values)
        )
        return [
            permissions.job_logs(platform, [kind]),
            *permissions.pull_image(repository),
            permissions.volume_key(platform),
            *permissions.vpc_access(platform),
        ]

    def _processing_statements(self) -> list[dict[str, Any]]:
        platform, paths = self.args.platform, self.layout
        arns, keys = platform.bucket_arns, platform.bucket_key_alias_arns
        return [
            *permissions.read_objects("RawDatasets", arns["raw"], [paths.datasets]),
            *permissions.read_objects("CuratedData", arns["curated"], [paths.curated]),
            *permissions.read_objects(
                "TrainedModelsAndCode",
                arns["artifacts"],
                [
                    f"{paths.training_output}/",
                    f"{paths.models}packaged/",
                    f"{paths.models}{training.NO_CHAMPION}",
                    self.bundle_key,
                ],
            ),
            permissions.write_objects("CuratedData", arns["curated"], [paths.curated]),
            permissions.write_objects(
                "EvaluationsAndPackages",
                arns["artifacts"],
                [
                    paths.evaluation,
                    f"{paths.models}packaged/",
                    paths.baseline_key.rsplit("/", 1)[0] + "/",
                ],
            ),
            *permissions.use_keys(
                platform,
                decrypt=[keys["raw"], keys["curated"], keys["artifacts"]],
                encrypt=[keys["curated"], keys["artifacts"]],
            ),
            *self._job_statements("processing"),
        ]

    def _training_statements(self) -> list[dict[str, Any]]:
        platform, paths = self.args.platform, self.layout
        arns, keys = platform.bucket_arns, platform.bucket_key_alias_arns
        return [
            *permissions.read_objects("Features", arns["curated"], [f"{paths.curated}features/"]),
            *permissions.read_objects("Code", arns["artifacts"], [self.bundle_key]),
            permissions.write_objects(
                "TrainingOutput", arns["artifacts"], [f"{paths.training_output}/"]
            ),
            *permissions.use_keys(
                platform, decrypt=[keys["curated"], keys["artifacts"]], encrypt=[keys["artifacts"]]
            ),
            *self._job_statements("training"),
        ]

    def _execution_statements(self) -> list[dict[str, Any]]:
        platform, paths = self.args.platform, self.layout
        group = self.args.model_package_group_name.lower()
        return [
            *permissions.run_jobs(platform, training.PROCESSING_STEPS, training.TRAINING_STEPS),
            permissions.pass_roles([self.role_arns["processing"], self.role_arns["training"]]),
            permissions.volume_key(platform),
            iam_documents.allow(
                "ReadEvaluationForTheGate",
                ["s3:GetObject"],
                [
                    pulumi.Output.concat(
                        platform.bucket_arns["artifacts"], "/", paths.evaluation, "*"
                    )
                ],
            ),
            permissions.keys_aliased(
                "DecryptEvaluation",
                ["kms:Decrypt"],
                platform,
                [platform.bucket_key_alias_arns["artifacts"]],
            ),
            iam_documents.allow(
                "RegisterVersionsInItsGroup",
                ["sagemaker:CreateModelPackage"],
                [platform.arn("sagemaker", f"model-package/{group}/*")],
            ),
            iam_documents.allow(
                "DescribeItsGroup",
                ["sagemaker:DescribeModelPackageGroup"],
                [platform.arn("sagemaker", f"model-package-group/{group}")],
            ),
        ]

    def _definition(self) -> pulumi.Output[str]:
        """Pure computation over known-at-preview inputs; no resource is created inside."""
        platform = self.args.platform
        return pulumi.Output.all(
            region=platform.region,
            raw=platform.bucket_names["raw"],
            curated=platform.bucket_names["curated"],
            artifacts=platform.bucket_names["artifacts"],
            bundle_uri=self.bundle_uri,
            volume_key=platform.kms_key_alias_arn,
            curated_key=platform.bucket_key_alias_arns["curated"],
            artifacts_key=platform.bucket_key_alias_arns["artifacts"],
            image=self.image_uri,
            processing_role=self.role_arns["processing"],
            training_role=self.role_arns["training"],
        ).apply(lambda values: training.build_training_definition(self._spec(values)))

    def _spec(self, values: dict[str, Any]) -> training.TrainingPipelineSpec:
        args, platform = self.args, self.args.platform

        def settings(role: str, instance_type: str, count: int) -> jobs.JobSettings:
            return jobs.JobSettings(
                region=values["region"],
                role_arn=values[role],
                volume_kms_key_id=values["volume_key"],
                instance_type=instance_type,
                instance_count=count,
                max_runtime_seconds=args.max_runtime_seconds,
                volume_size_gb=args.volume_size_gb,
                image_uri=values["image"],
                subnet_ids=tuple(platform.subnet_ids),
                security_group_ids=tuple(platform.security_group_ids),
            )

        return training.TrainingPipelineSpec(
            model_name=args.model_name,
            region=values["region"],
            bundle_uri=values["bundle_uri"],
            code_hash=self.bundle.code_hash,
            buckets={k: values[k] for k in ("raw", "curated", "artifacts")},
            output_keys={k: values[f"{k}_key"] for k in ("curated", "artifacts")},
            processing=settings("processing_role", args.processing_instance_type, 1),
            training=settings(
                "training_role", args.training_instance_type, args.training_instance_count
            ),
            model_package_group_name=args.model_package_group_name,
            approval_status=self.approval_status,
            quality_floor=args.quality_floor,
            hyperparameters={k: str(v) for k, v in args.hyperparameters.items()},
            layout=self.layout,
            inference_instance_types=tuple(args.inference_instance_types),
            max_data_age_days=args.max_data_age_days,
        )


def _approval_status(args: TrainingPipelineArgs) -> str:
    environment = args.platform.environment
    mode = args.approval_mode or ("manual" if environment == "prod" else "automatic")
    return "Approved" if mode == "automatic" else "PendingManualApproval"


def _check(name: str, args: TrainingPipelineArgs) -> None:
    where = f"TrainingPipeline '{name}'"
    if args.approval_mode not in (None, "automatic", "manual"):
        raise ValueError(
            f"{where}: approval_mode is '{args.approval_mode}'; use 'automatic', 'manual' or "
            "None (manual in prod, automatic elsewhere)."
        )
    if (
        args.platform.environment == "prod"
        and args.approval_mode == "automatic"
        and not args.allow_automatic_approval_in_prod
    ):
        raise ValueError(
            f"{where}: approval_mode is 'automatic' in prod, where a person approves each "
            "version; use 'manual', or set allow_automatic_approval_in_prod=True."
        )
    if not 0 <= args.quality_floor <= 1:
        raise ValueError(f"{where}: quality_floor is {args.quality_floor}; NDCG@10 lies in [0, 1].")
    if args.training_instance_count < 1:
        raise ValueError(
            f"{where}: training_instance_count is {args.training_instance_count}; use 1 or more."
        )
    limit = min(MAX_PROCESSING_RUNTIME_SECONDS, MAX_TRAINING_RUNTIME_SECONDS)
    if not 1 <= args.max_runtime_seconds <= limit:
        raise ValueError(
            f"{where}: max_runtime_seconds is {args.max_runtime_seconds}; SageMaker processing "
            f"jobs accept 1 to {limit} seconds."
        )
    if not args.inference_instance_types:
        raise ValueError(f"{where}: inference_instance_types is empty; name at least one type.")
    training.check_hyperparameters(args.hyperparameters)
