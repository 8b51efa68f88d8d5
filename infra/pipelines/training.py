"""The training pipeline's definition: validate → features → train → evaluate → gate → register.

Built with the SageMaker SDK from plain strings, offline, and serialised with sorted keys, so
the same inputs give the same bytes on every plan. The SDK is imported inside the builder: a
plan without pipelines never pays for it.

The gate registers the new model only if its test NDCG@10 (``evaluation.json``'s
``ranking_metrics.ndcg_at_10.value``) is at least the ``QualityFloor`` parameter AND at least
the champion's NDCG@10 on the same test rows (``champion.ndcg_at_10.value``): the Evaluate
step scores the model given as ``ChampionModelUri`` too, so the two are compared on the same
held-out data, not on figures from different weeks. The pipeline cannot read the registry, so
whoever starts the execution names the champion: the retrain handler passes the latest Approved
package's model. The default points at a placeholder with no model, which scores 0, so a
first run only has to clear the floor. A rejected model ends the execution in a Fail step
whose message names the three figures.

Parameters: ``InputDataUri`` (the dataset prefix to validate; default: the model's datasets
prefix in the raw bucket), ``DatasetVersion`` (recorded by training and on the registered
version), ``TriggerReason`` (why the run started; it stays with the execution's parameters, as
job and registry fields are too short for an alarm's reason), ``QualityFloor``,
``ChampionNdcgAt10``, ``MaxDataAgeDays`` (validation's freshness limit: raise it to train on an
older snapshot) and one string parameter per configured hyperparameter.

A registered version carries a ``model.tar.gz`` with the code under ``code/`` (the serving
container runs ``code/inference.py`` without network access), the evaluation report as its
model-quality metrics, and lineage as customer metadata. Its training baseline is also copied
to ``models/<model>/baseline/latest/baseline.json``, the reference of the drift monitor.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from infra.pipelines import jobs
from infra.pipelines.sdk import offline_sdk, pipeline_session, without_telemetry

STEP_VALIDATE = "Validate"
STEP_FEATURES = "BuildFeatures"
STEP_TRAIN = "Train"
STEP_EVALUATE = "Evaluate"
STEP_GATE = "CheckQuality"
STEP_PACKAGE = "PackageModel"
STEP_REGISTER = "RegisterModel"
STEP_REJECT = "RejectModel"
PROCESSING_STEPS = (STEP_VALIDATE, STEP_FEATURES, STEP_EVALUATE, STEP_PACKAGE)
TRAINING_STEPS = (STEP_TRAIN,)

PARAM_INPUT_DATA = "InputDataUri"
PARAM_DATASET_VERSION = "DatasetVersion"
PARAM_TRIGGER_REASON = "TriggerReason"
PARAM_QUALITY_FLOOR = "QualityFloor"
PARAM_CHAMPION = "ChampionModelUri"
PARAM_MAX_DATA_AGE = "MaxDataAgeDays"
FIXED_PARAMETERS = (
    PARAM_INPUT_DATA,
    PARAM_DATASET_VERSION,
    PARAM_TRIGGER_REASON,
    PARAM_QUALITY_FLOOR,
    PARAM_CHAMPION,
    PARAM_MAX_DATA_AGE,
)

EVALUATION_FILE = "evaluation.json"
EVALUATION_PROPERTY_FILE = "Evaluation"
NDCG_PATH = "ranking_metrics.ndcg_at_10.value"
LABELS_THROUGH_METADATA_KEY = "labels_through"
"""Model package metadata: the last day of customer behaviour the model learnt from."""
CHAMPION_NDCG_PATH = "champion.ndcg_at_10.value"
NO_CHAMPION = "champion-none/"
"""Under the model's artifacts prefix: a placeholder object and no model, the default champion."""
AUC_PATH = "binary_classification_metrics.auc.value"
CHAMPION_METADATA_KEY = "ndcg_at_10"
"""Read back by `ml_code.handlers.retrain` to fill `ChampionNdcgAt10` for the next run."""
SERVING_ENVIRONMENT = {
    "SAGEMAKER_PROGRAM": "inference.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
}
CONTENT_TYPES = ["application/json", "text/csv"]
JOB_ENVIRONMENT = {"MLOPS_TRACKING": "off"}
"""Network-isolated jobs cannot reach an MLflow server; metrics and lineage go to the registry."""
TRAINING_PROGRAM = "ml_code/training/train.py"
HYPERPARAMETER_NAME = re.compile(r"^[a-z][a-z0-9]*([_-][a-z0-9]+)*$")

_IN = f"{jobs.PROCESSING_ROOT}/input"
_OUT = f"{jobs.PROCESSING_ROOT}/output"
PACKAGE_MODEL = (
    'set -eu; model="$1"; bundle="$2"; model_out="$3"; baseline_out="$4"; evaluation="$5"; '
    'work="$(mktemp -d)"; mkdir -p "$work/code" "$model_out" "$baseline_out"; '
    'tar -xzf "$model" -C "$work"; tar -xzf "$bundle" -C "$work/code"; '
    'cp "$work/baseline.json" "$baseline_out/baseline.json"; '
    'cp "$evaluation" "$baseline_out/evaluation.json"; '
    'tar -czf "$model_out/model.tar.gz" -C "$work" .'
)
"""`sh -c PACKAGE_MODEL package-model <model.tar.gz> <bundle> <model dir> <baseline dir>
<evaluation.json>`. The baseline directory gets the model's `evaluation.json` too: the quality
monitor judges live NDCG@10 against the serving model's held-out level and spread."""


@dataclass(frozen=True)
class TrainingLayout:
    """Where one model's training data and artifacts live; IAM policies are built from it."""

    model_name: str
    dataset_prefix: str = ""
    """In the raw bucket. Default: `datasets/<model>/`."""

    @property
    def datasets(self) -> str:
        return self.dataset_prefix or f"datasets/{self.model_name}/"

    @property
    def curated(self) -> str:
        """Accepted batches, validation reports and features (curated bucket)."""
        return f"models/{self.model_name}/"

    @property
    def models(self) -> str:
        """Training output, evaluation, packaged models and baselines (artifacts bucket)."""
        return f"models/{self.model_name}/"

    @property
    def training_output(self) -> str:
        return f"{self.models}training"

    @property
    def evaluation(self) -> str:
        return f"{self.models}evaluation/"

    @property
    def baseline_key(self) -> str:
        return f"{self.models}baseline/latest/baseline.json"


@dataclass(frozen=True)
class TrainingPipelineSpec:
    """Everything the definition depends on, as plain values."""

    model_name: str
    region: str
    bundle_uri: str
    code_hash: str
    buckets: Mapping[str, str]
    """Bucket names by data class: raw, curated, artifacts."""
    output_keys: Mapping[str, str]
    """KMS key (alias ARN) of each bucket written, by data class: curated, artifacts."""
    processing: jobs.JobSettings
    training: jobs.JobSettings
    model_package_group_name: str
    approval_status: str
    quality_floor: float
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    """Training hyperparameters by `train.py` flag name (`learning-rate`); each becomes a
    pipeline parameter (`LearningRate`) defaulting to the value given."""
    layout: TrainingLayout | None = None
    inference_instance_types: tuple[str, ...] = ("ml.m5.large",)
    max_data_age_days: int = 2

    @property
    def paths(self) -> TrainingLayout:
        return self.layout or TrainingLayout(self.model_name)


def hyperparameter_parameter_name(flag: str) -> str:
    """`learning-rate` → `LearningRate`."""
    return "".join(part.capitalize() for part in re.split(r"[-_]", flag))


def check_hyperparameters(hyperparameters: Mapping[str, object]) -> None:
    for flag in hyperparameters:
        if flag.startswith("sagemaker") or not HYPERPARAMETER_NAME.match(flag):
            raise ValueError(
                f"hyperparameter '{flag}' is not a train.py flag name; use lower-case words "
                "joined by '-' (e.g. 'learning-rate'); 'sagemaker_*' names are reserved."
            )
        if hyperparameter_parameter_name(flag) in FIXED_PARAMETERS:
            raise ValueError(
                f"hyperparameter '{flag}' would shadow the pipeline parameter "
                f"'{hyperparameter_parameter_name(flag)}'; rename it."
            )


def build_training_definition(spec: TrainingPipelineSpec) -> str:
    """The pipeline definition JSON (sorted keys, no whitespace)."""
    check_hyperparameters(spec.hyperparameters)
    spec = replace(
        spec,
        processing=_with_job_environment(spec.processing),
        training=_with_job_environment(spec.training),
    )
    with offline_sdk(spec.region):
        from sagemaker.mlops.workflow.pipeline import Pipeline

        session = pipeline_session(spec.region)
        params = _parameters(spec)
        validate = _validate_step(session, spec, params)
        features = _features_step(session, spec, validate)
        train = _train_step(session, spec, params, features)
        evaluate, evaluation = _evaluate_step(session, spec, params, features, train)
        gate = _gate_step(session, spec, params, train, evaluate, evaluation)
        pipeline = Pipeline(
            name=f"{spec.model_name}-training",
            parameters=list(params.values()),
            steps=[validate, features, train, evaluate, gate],
            sagemaker_session=session,
            pipeline_experiment_config=None,
        )
        definition = pipeline.definition()
    return json.dumps(json.loads(definition), sort_keys=True, separators=(",", ":"))


def _with_job_environment(settings: jobs.JobSettings) -> jobs.JobSettings:
    return replace(settings, environment={**JOB_ENVIRONMENT, **settings.environment})


def _parameters(spec: TrainingPipelineSpec) -> dict[str, Any]:
    from sagemaker.core.workflow.parameters import (
        ParameterFloat,
        ParameterInteger,
        ParameterString,
    )

    raw = spec.buckets["raw"]
    params: dict[str, Any] = {
        PARAM_INPUT_DATA: ParameterString(
            PARAM_INPUT_DATA, default_value=f"s3://{raw}/{spec.paths.datasets}"
        ),
        PARAM_DATASET_VERSION: ParameterString(PARAM_DATASET_VERSION, default_value="unversioned"),
        PARAM_TRIGGER_REASON: ParameterString(PARAM_TRIGGER_REASON, default_value="manual"),
        PARAM_QUALITY_FLOOR: ParameterFloat(PARAM_QUALITY_FLOOR, default_value=spec.quality_floor),
        PARAM_CHAMPION: ParameterString(
            PARAM_CHAMPION,
            default_value=f"s3://{spec.buckets['artifacts']}/{spec.paths.models}{NO_CHAMPION}",
        ),
        PARAM_MAX_DATA_AGE: ParameterInteger(
            PARAM_MAX_DATA_AGE, default_value=spec.max_data_age_days
        ),
    }
    for flag, value in sorted(spec.hyperparameters.items()):
        name = hyperparameter_parameter_name(flag)
        params[name] = ParameterString(name, default_value=str(value))
    return params


def _run_prefix(bucket: str, prefix: str) -> Any:
    """`s3://bucket/prefix/<execution id>`: runs never overwrite each other."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join

    return Join(
        on="/",
        values=[f"s3://{bucket}/{prefix.rstrip('/')}", ExecutionVariables.PIPELINE_EXECUTION_ID],
    )


def _model_artifacts(train: Any) -> Any:
    return train.properties.ModelArtifacts.S3ModelArtifacts


def _join(*values: Any) -> Any:
    from sagemaker.core.workflow.functions import Join

    return Join(on="/", values=list(values))


def _validate_step(session: Any, spec: TrainingPipelineSpec, params: dict[str, Any]) -> Any:
    """Freshness is judged against the execution's start (``Execution.StartDateTime``), not
    the container's clock: a run is judged by when it was asked for, and a replayed or
    emulated execution judges its data as the original would."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.mlops.workflow.steps import ProcessingStep

    curated = spec.buckets["curated"]
    step_args = jobs.processor(session, spec.processing, spec.output_keys["curated"]).run(
        inputs=[
            jobs.code_input(spec.bundle_uri),
            jobs.s3_input("dataset", params[PARAM_INPUT_DATA], f"{_IN}/dataset"),
        ],
        outputs=[
            jobs.s3_output(
                "accepted",
                _run_prefix(curated, f"{spec.paths.curated}accepted"),
                f"{_OUT}/accepted",
            ),
            jobs.s3_output(
                "report",
                _run_prefix(curated, f"{spec.paths.curated}validation"),
                f"{_OUT}/report",
            ),
        ],
        arguments=jobs.module_arguments(
            "ml_code.data.validate",
            "--input",
            f"{_IN}/dataset",
            "--output",
            f"{_OUT}/accepted",
            "--report",
            f"{_OUT}/report",
            "--max-age-days",
            params[PARAM_MAX_DATA_AGE].to_string(),
            "--as-of",
            ExecutionVariables.START_DATETIME,
        ),
    )
    return ProcessingStep(
        STEP_VALIDATE,
        step_args=step_args,
        description="Refuse a bad batch before anything reads it.",
    )


def _features_step(session: Any, spec: TrainingPipelineSpec, validate: Any) -> Any:
    from sagemaker.mlops.workflow.steps import ProcessingStep

    step_args = jobs.processor(session, spec.processing, spec.output_keys["curated"]).run(
        inputs=[
            jobs.code_input(spec.bundle_uri),
            jobs.s3_input("dataset", jobs.output_uri(validate, "accepted"), f"{_IN}/dataset"),
        ],
        outputs=[
            jobs.s3_output(
                "features",
                _run_prefix(spec.buckets["curated"], f"{spec.paths.curated}features"),
                f"{_OUT}/features",
            ),
        ],
        arguments=jobs.module_arguments(
            "ml_code.features.build", "--input", f"{_IN}/dataset", "--output", f"{_OUT}/features"
        ),
    )
    return ProcessingStep(
        STEP_FEATURES,
        step_args=step_args,
        description="Time-based train, validation and test splits.",
    )


def _train_step(
    session: Any, spec: TrainingPipelineSpec, params: dict[str, Any], features: Any
) -> Any:
    from sagemaker.core.shapes import StoppingCondition
    from sagemaker.core.training.configs import Compute, InputData, Networking, OutputDataConfig
    from sagemaker.mlops.workflow.steps import TrainingStep
    from sagemaker.train.model_trainer import ModelTrainer

    settings = spec.training
    splits = jobs.output_uri(features, "features")
    hyperparameters: dict[str, Any] = {
        "sagemaker_program": TRAINING_PROGRAM,
        "sagemaker_submit_directory": jobs.TRAINING_BUNDLE_PATH,
        "sagemaker_container_log_level": "20",
        "dataset-version": params[PARAM_DATASET_VERSION],
    }
    for flag in spec.hyperparameters:
        hyperparameters[flag] = params[hyperparameter_parameter_name(flag)]
    trainer = ModelTrainer(
        sagemaker_session=session,
        role=settings.role_arn,
        training_image=jobs.image_uri(settings),
        base_job_name=f"{spec.model_name}-train",
        compute=Compute(
            instance_type=settings.instance_type,
            instance_count=settings.instance_count,
            volume_size_in_gb=settings.volume_size_gb,
            volume_kms_key_id=settings.volume_kms_key_id,
        ),
        networking=Networking(
            enable_network_isolation=settings.network_isolation,
            enable_inter_container_traffic_encryption=True,
            subnets=list(settings.subnet_ids) or None,
            security_group_ids=list(settings.security_group_ids) or None,
        ),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=settings.max_runtime_seconds),
        output_data_config=OutputDataConfig(
            s3_output_path=f"s3://{spec.buckets['artifacts']}/{spec.paths.training_output}",
            kms_key_id=spec.output_keys["artifacts"],
            compression_type="GZIP",
        ),
        hyperparameters=hyperparameters,
        environment=dict(settings.environment),
    )
    step_args = without_telemetry(ModelTrainer.train)(
        trainer,
        input_data_config=[
            InputData(channel_name="train", data_source=_join(splits, "train")),
            InputData(channel_name="validation", data_source=_join(splits, "validation")),
            InputData(channel_name=jobs.TRAINING_CODE_CHANNEL, data_source=spec.bundle_uri),
        ],
    )
    return TrainingStep(
        STEP_TRAIN,
        step_args=step_args,
        description="Fit the recommender; writes model, metadata and baseline.",
    )


def _evaluate_step(
    session: Any, spec: TrainingPipelineSpec, params: dict[str, Any], features: Any, train: Any
) -> tuple[Any, Any]:
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.steps import ProcessingStep

    evaluation = PropertyFile(
        name=EVALUATION_PROPERTY_FILE, output_name="evaluation", path=EVALUATION_FILE
    )
    step_args = jobs.processor(session, spec.processing, spec.output_keys["artifacts"]).run(
        inputs=[
            jobs.code_input(spec.bundle_uri),
            jobs.s3_input("model", _model_artifacts(train), f"{_IN}/model"),
            jobs.s3_input(
                "test", _join(jobs.output_uri(features, "features"), "test"), f"{_IN}/test"
            ),
            jobs.s3_input("champion", params[PARAM_CHAMPION], f"{_IN}/champion"),
        ],
        outputs=[
            jobs.s3_output(
                "evaluation",
                _run_prefix(spec.buckets["artifacts"], spec.paths.evaluation),
                f"{_OUT}/evaluation",
            ),
        ],
        arguments=jobs.module_arguments(
            "ml_code.training.evaluate",
            "--model",
            f"{_IN}/model",
            "--test",
            f"{_IN}/test",
            "--output",
            f"{_OUT}/evaluation",
            "--champion",
            f"{_IN}/champion",
        ),
    )
    step = ProcessingStep(
        STEP_EVALUATE,
        step_args=step_args,
        property_files=[evaluation],
        description="Test-split metrics against a popularity baseline and the champion.",
    )
    return step, evaluation


def _gate_step(
    session: Any,
    spec: TrainingPipelineSpec,
    params: dict[str, Any],
    train: Any,
    evaluate: Any,
    evaluation: Any,
) -> Any:
    from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep

    ndcg = JsonGet(step_name=evaluate.name, property_file=evaluation, json_path=NDCG_PATH)
    floor = params[PARAM_QUALITY_FLOOR]
    champion = JsonGet(
        step_name=evaluate.name, property_file=evaluation, json_path=CHAMPION_NDCG_PATH
    )
    package = _package_step(session, spec, train, evaluate)
    register = _register_step(session, spec, params, evaluate, evaluation, package)
    reject = FailStep(
        STEP_REJECT,
        error_message=Join(
            on="",
            values=[
                "Not registered: test NDCG@10 ",
                ndcg,
                " must be at least the quality floor ",
                floor,
                " and the champion's NDCG@10 on the same data ",
                champion,
                ".",
            ],
        ),
    )
    return ConditionStep(
        STEP_GATE,
        conditions=[
            ConditionGreaterThanOrEqualTo(left=ndcg, right=floor),
            ConditionGreaterThanOrEqualTo(left=ndcg, right=champion),
        ],
        if_steps=[package, register],
        else_steps=[reject],
        description="Register only a model that clears the floor and beats the champion.",
    )


def _package_step(session: Any, spec: TrainingPipelineSpec, train: Any, evaluate: Any) -> Any:
    from sagemaker.mlops.workflow.steps import ProcessingStep

    artifacts = spec.buckets["artifacts"]
    entrypoint = ["/bin/sh", "-c", PACKAGE_MODEL, "package-model"]
    step_args = jobs.processor(
        session, spec.processing, spec.output_keys["artifacts"], entrypoint
    ).run(
        inputs=[
            jobs.code_input(spec.bundle_uri),
            jobs.s3_input("model", _model_artifacts(train), f"{_IN}/model"),
            jobs.s3_input(
                "evaluation", jobs.output_uri(evaluate, "evaluation"), f"{_IN}/evaluation"
            ),
        ],
        outputs=[
            jobs.s3_output(
                "model", _run_prefix(artifacts, f"{spec.paths.models}packaged"), f"{_OUT}/model"
            ),
            jobs.s3_output(
                "baseline",
                f"s3://{artifacts}/{spec.paths.baseline_key.rsplit('/', 1)[0]}",
                f"{_OUT}/baseline",
            ),
        ],
        arguments=[
            f"{_IN}/model/model.tar.gz",
            jobs.BUNDLE_PATH,
            f"{_OUT}/model",
            f"{_OUT}/baseline",
            f"{_IN}/evaluation/{EVALUATION_FILE}",
        ],
    )
    return ProcessingStep(
        STEP_PACKAGE,
        step_args=step_args,
        description="Add the serving code to model.tar.gz; publish the baseline and the "
        "evaluation monitoring judges live quality against.",
    )


def _register_step(
    session: Any,
    spec: TrainingPipelineSpec,
    params: dict[str, Any],
    evaluate: Any,
    evaluation: Any,
    package: Any,
) -> Any:
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.serve.model_builder import ModelBuilder

    def metric(path: str) -> Any:
        value = JsonGet(step_name=evaluate.name, property_file=evaluation, json_path=path)
        return Join(on="", values=[value])

    builder = ModelBuilder(
        s3_model_data_url=_join(jobs.output_uri(package, "model"), "model.tar.gz"),
        image_uri=jobs.image_uri(spec.processing, scope="inference"),
        role_arn=spec.training.role_arn,
        env_vars=dict(SERVING_ENVIRONMENT),
        instance_type=spec.inference_instance_types[0],
        sagemaker_session=session,
        dependencies={},
    )
    report = _join(jobs.output_uri(evaluate, "evaluation"), EVALUATION_FILE)
    step_args = without_telemetry(ModelBuilder.register)(
        builder,
        model_package_group_name=spec.model_package_group_name,
        content_types=list(CONTENT_TYPES),
        response_types=list(CONTENT_TYPES),
        inference_instances=list(spec.inference_instance_types),
        transform_instances=list(spec.inference_instance_types),
        model_metrics=ModelMetrics(
            model_statistics=MetricsSource(content_type="application/json", s3_uri=report)
        ),
        approval_status=spec.approval_status,
        customer_metadata_properties={
            CHAMPION_METADATA_KEY: metric(NDCG_PATH),
            "auc": metric(AUC_PATH),
            "quality_floor": Join(on="", values=[params[PARAM_QUALITY_FLOOR]]),
            "champion_ndcg_at_10": metric(CHAMPION_NDCG_PATH),
            "dataset_version": params[PARAM_DATASET_VERSION],
            LABELS_THROUGH_METADATA_KEY: metric("evaluation.labels_through"),
            "code_hash": spec.code_hash,
            "pipeline_execution_arn": ExecutionVariables.PIPELINE_EXECUTION_ARN,
        },
    )
    return ModelStep(
        STEP_REGISTER, step_args=step_args, description="A new version in the model package group."
    )
