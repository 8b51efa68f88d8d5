"""TrainingPipeline under mocks, and the source bundle it uploads: one test per guarantee."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from infra.components.platform_refs import PlatformRefs
from infra.components.training_pipeline import TrainingPipeline, TrainingPipelineArgs
from infra.pipelines import training
from infra.pipelines.source_bundle import SOURCE_DIR, build_source_bundle
from infra.plan.engine import Capture, Resource, capture_function
from infra.plan.values import UNKNOWN, Asset
from ml_code import lineage
from tests.infra.platform import (
    ACCOUNT,
    ARTIFACTS_KEY,
    CURATED_KEY,
    DATA_CLASSES,
    PLATFORM_KEY,
    alias_of,
    platform_refs,
)
from tests.infra.resolved import resolved

ALLOWED_ON_EVERY_RESOURCE = {
    "ecr:GetAuthorizationToken",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeDhcpOptions",
    "cloudwatch:PutMetricData",
}
"""Actions AWS offers no resource-level permission for."""
PLATFORM_ALIAS = alias_of(PLATFORM_KEY)


def bucket(data_class: str, prefix: str = "mlops-dev") -> str:
    return f"{prefix}-{data_class}-{ACCOUNT}"


def platform_for(environment: str, **overrides: Any) -> PlatformRefs:
    """Prod runs in subnets, as the prod stacks of teams with a VPC do."""
    if environment == "prod":
        overrides = {
            "subnet_ids": ("subnet-a", "subnet-b"),
            "security_group_ids": ("sg-1",),
            **overrides,
        }
    return platform_refs(environment, **overrides)


def pipeline_args(environment: str = "dev", **overrides: Any) -> TrainingPipelineArgs:
    values: dict[str, Any] = dict(
        platform=platform_for(environment),
        model_name="recommender",
        model_package_group_name=f"mlops-{environment}-recommender",
        quality_floor=0.3,
        training_instance_type="ml.m5.2xlarge",
        max_runtime_seconds=7200,
        hyperparameters={"learning-rate": 0.05},
        tags={"Team": "personalization"},
    )
    values.update(overrides)
    return TrainingPipelineArgs(**values)


def build(environment: str = "dev", **overrides: Any) -> Capture:
    def program() -> None:
        pipeline = TrainingPipeline("recommender-training", pipeline_args(environment, **overrides))
        pulumi.export("bundle_key", pipeline.bundle_key)
        pulumi.export("bundle_sha256", pipeline.bundle.sha256)
        pulumi.export("code_hash", pipeline.bundle.code_hash)
        for output in ("pipeline_name", "pipeline_arn", "execution_role_arn"):
            pulumi.export(output, getattr(pipeline, output))

    return resolved(program, environment)


@pytest.fixture(scope="module")
def dev() -> Capture:
    return build("dev")


@pytest.fixture(scope="module")
def prod() -> Capture:
    return build("prod")


def the(capture: Capture, type_: str, name: str | None = None) -> Resource:
    (found,) = [r for r in capture.by_type(type_) if name is None or r.name == name]
    return found


def definition(capture: Capture) -> dict[str, Any]:
    return json.loads(the(capture, "aws:sagemaker/pipeline:Pipeline").inputs["pipelineDefinition"])


def policies(capture: Capture) -> dict[str, dict[str, Any]]:
    """Inline policy documents by role: execution, processing, training."""
    return {
        p.name.removeprefix("recommender-training-").removesuffix("-role-policy"): json.loads(
            p.inputs["policy"]
        )
        for p in capture.by_type("aws:iam/rolePolicy:RolePolicy")
    }


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return document["Statement"]


def resources_of(document: dict[str, Any], service: str) -> set[str]:
    return {
        r for s in statements(document) for r in s["Resource"] if r.startswith(f"arn:aws:{service}")
    }


def key_aliases(document: dict[str, Any], sid: str | None = None) -> set[str]:
    """Aliases of the keys a policy may use; every KMS grant is by alias on this account."""
    found: set[str] = set()
    for statement in statements(document):
        if not any(a.startswith("kms:") for a in statement["Action"]):
            continue
        assert statement["Resource"] == [f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*"]
        if sid is None or statement["Sid"] == sid:
            found |= set(statement["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"])
    return found


def test_outputs_name_the_pipeline_after_the_model_and_environment(dev):
    assert dev.outputs["pipeline_name"] == "mlops-dev-recommender-training"
    assert dev.outputs["pipeline_arn"] == (
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:pipeline/mlops-dev-recommender-training"
    )
    assert dev.outputs["execution_role_arn"] == (
        f"arn:aws:iam::{ACCOUNT}:role/mlops-dev-recommender-training-pipeline"
    )


def test_pipeline_runs_as_its_execution_role_with_the_built_definition(dev):
    pipeline = the(dev, "aws:sagemaker/pipeline:Pipeline")
    assert pipeline.inputs["pipelineName"] == "mlops-dev-recommender-training"
    assert pipeline.inputs["pipelineDisplayName"] == "mlops-dev-recommender-training"
    assert pipeline.inputs["roleArn"] == dev.outputs["execution_role_arn"]
    steps = [s["Name"] for s in definition(dev)["Steps"]]
    assert steps == [
        training.STEP_VALIDATE,
        training.STEP_FEATURES,
        training.STEP_TRAIN,
        training.STEP_EVALUATE,
        training.STEP_GATE,
    ]
    role_urns = {r.urn for r in dev.by_type("aws:iam/role:Role")}
    assert role_urns <= set(pipeline.options["dependsOn"]), "roles must exist before the pipeline"


def test_source_bundle_is_keyed_by_code_hash_and_encrypted_with_the_artifacts_bucket_key(prod):
    source = the(prod, "aws:s3/bucketObjectv2:BucketObjectv2", "recommender-training-source")
    code_hash = prod.outputs["code_hash"]
    assert source.inputs["bucket"] == bucket("artifacts", "mlops-prod")
    assert source.inputs["key"] == f"code/recommender/{code_hash[:16]}/sourcedir.tar.gz"
    assert source.inputs["serverSideEncryption"] == "aws:kms"
    assert source.inputs["kmsKeyId"] == ARTIFACTS_KEY
    asset = source.inputs["source"]
    assert isinstance(asset, Asset) and asset.digest == f"sha256:{prod.outputs['bundle_sha256']}"
    uri = f"s3://{bucket('artifacts', 'mlops-prod')}/{source.inputs['key']}"
    code_inputs = [
        i["S3Input"]["S3Uri"]
        for s in _processing_steps(definition(prod))
        for i in s["Arguments"]["ProcessingInputs"]
        if i["InputName"] == "code"
    ]
    assert code_inputs and set(code_inputs) == {uri}


def _processing_steps(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for step in document["Steps"]:
        if step["Type"] == "Condition":
            found += _processing_steps({"Steps": step["Arguments"]["IfSteps"]})
        elif step["Type"] == "Processing":
            found.append(step)
    return found


def test_definition_uses_the_platform_key_aliases_and_the_configured_jobs(dev):
    document = definition(dev)
    (train,) = [s for s in document["Steps"] if s["Type"] == "Training"]
    assert train["Arguments"]["ResourceConfig"]["InstanceType"] == "ml.m5.2xlarge"
    assert train["Arguments"]["ResourceConfig"]["VolumeKmsKeyId"] == PLATFORM_ALIAS
    assert train["Arguments"]["OutputDataConfig"]["KmsKeyId"] == alias_of(ARTIFACTS_KEY)
    assert train["Arguments"]["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}
    output_keys = set()
    for step in _processing_steps(document):
        output_keys.add(step["Arguments"]["ProcessingOutputConfig"]["KmsKeyId"])
        assert step["Arguments"]["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == (
            PLATFORM_ALIAS
        )
        assert step["Arguments"]["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}
        assert step["Arguments"]["RoleArn"].endswith(":role/mlops-dev-recommender-processing")
    assert output_keys == {alias_of(CURATED_KEY), alias_of(ARTIFACTS_KEY)}
    assert train["Arguments"]["RoleArn"].endswith(":role/mlops-dev-recommender-training")
    defaults = {p["Name"]: p.get("DefaultValue") for p in document["Parameters"]}
    assert defaults[training.PARAM_QUALITY_FLOOR] == 0.3
    assert defaults["LearningRate"] == "0.05"


def test_definition_and_policies_are_known_at_preview_even_before_the_kms_keys_exist():
    """A first preview knows no key ARN; documents use only names and key aliases."""

    def program() -> None:
        key = aws.kms.Key("platform-key")
        platform = platform_refs(
            kms_key_arn=key.arn, bucket_key_arns=dict.fromkeys(DATA_CLASSES, key.arn)
        )
        TrainingPipeline("recommender-training", pipeline_args(platform=platform))

    capture = capture_function(
        program, config={"aws:region": "us-east-1", "mlops:environment": "dev"}, preview=True
    )
    pipeline = the(capture, "aws:sagemaker/pipeline:Pipeline")
    assert pipeline.inputs["pipelineDefinition"] is not UNKNOWN
    assert json.loads(pipeline.inputs["pipelineDefinition"])["Steps"]
    for policy in capture.by_type("aws:iam/rolePolicy:RolePolicy"):
        assert policy.inputs["policy"] is not UNKNOWN, policy.name
    source = the(capture, "aws:s3/bucketObjectv2:BucketObjectv2", "recommender-training-source")
    assert source.inputs["kmsKeyId"] is UNKNOWN


@pytest.mark.parametrize(
    ("environment", "status"), [("dev", "Approved"), ("prod", "PendingManualApproval")]
)
def test_prod_registers_for_manual_approval_and_dev_approves_automatically(
    request, environment, status
):
    capture = request.getfixturevalue(environment)
    gate = [s for s in definition(capture)["Steps"] if s["Type"] == "Condition"][0]
    (register,) = [s for s in gate["Arguments"]["IfSteps"] if s["Type"] == "RegisterModel"]
    assert register["Arguments"]["ModelApprovalStatus"] == status
    assert register["Arguments"]["ModelPackageGroupName"] == f"mlops-{environment}-recommender"


def test_automatic_approval_in_prod_is_refused_without_the_explicit_opt_in():
    with pytest.raises(ValueError, match="allow_automatic_approval_in_prod=True"):
        resolved(lambda: TrainingPipeline("t", pipeline_args("prod", approval_mode="automatic")))


def test_each_role_names_only_its_own_buckets_prefixes_and_keys(prod):
    docs = policies(prod)
    raw, curated, artifacts = (
        f"arn:aws:s3:::{bucket(c, 'mlops-prod')}" for c in ("raw", "curated", "artifacts")
    )
    code = f"{artifacts}/{prod.outputs['bundle_key']}"
    models = f"{artifacts}/models/recommender"
    assert resources_of(docs["processing"], "s3") == {
        raw,
        curated,
        artifacts,
        code,
        f"{raw}/datasets/recommender/*",
        f"{curated}/models/recommender/*",
        f"{models}/training/*",
        f"{models}/evaluation/*",
        f"{models}/packaged/*",
        f"{models}/champion-none/*",
        f"{models}/baseline/latest/*",
    }
    assert resources_of(docs["training"], "s3") == {
        curated,
        artifacts,
        code,
        f"{curated}/models/recommender/features/*",
        f"{models}/training/*",
    }
    assert resources_of(docs["execution"], "s3") == {f"{models}/evaluation/*"}
    # The platform key encrypts the raw bucket in this fixture, and every job volume.
    assert key_aliases(docs["processing"]) == {"alias/platform", "alias/curated", "alias/artifacts"}
    assert key_aliases(docs["training"]) == {"alias/platform", "alias/curated", "alias/artifacts"}
    assert key_aliases(docs["execution"]) == {"alias/platform", "alias/artifacts"}
    assert key_aliases(docs["processing"], "EncryptOutputs") == {"alias/curated", "alias/artifacts"}
    assert key_aliases(docs["training"], "EncryptOutputs") == {"alias/artifacts"}


def test_a_first_run_has_a_champion_placeholder_with_no_model_in_it(prod):
    placeholder = the(
        prod, "aws:s3/bucketObjectv2:BucketObjectv2", "recommender-training-no-champion"
    )
    assert placeholder.inputs["key"] == "models/recommender/champion-none/README"
    assert placeholder.inputs["serverSideEncryption"] == "aws:kms"
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition(prod)["Parameters"]}
    bucket_name = bucket("artifacts", "mlops-prod")
    assert defaults["ChampionModelUri"] == f"s3://{bucket_name}/models/recommender/champion-none/"


def test_object_writes_stay_inside_the_models_own_prefixes(prod):
    for role, document in policies(prod).items():
        for statement in statements(document):
            if "s3:PutObject" in statement["Action"]:
                for resource in statement["Resource"]:
                    assert "/models/recommender/" in resource, (role, resource)


def test_execution_role_runs_only_its_steps_jobs_and_passes_only_the_job_roles(dev):
    document = policies(dev)["execution"]
    by_sid = {s["Sid"]: s for s in statements(document)}
    sagemaker = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}"
    assert by_sid["RunProcessingJobsOfItsSteps"]["Resource"] == [
        f"{sagemaker}:processing-job/pipelines-*-{step.lower()}-*"
        for step in training.PROCESSING_STEPS
    ]
    assert by_sid["RunTrainingJobsOfItsSteps"]["Resource"] == [
        f"{sagemaker}:training-job/pipelines-*-train-*"
    ]
    passing = by_sid["PassJobRolesToSageMaker"]
    assert passing["Action"] == ["iam:PassRole"]
    assert passing["Resource"] == [
        f"arn:aws:iam::{ACCOUNT}:role/mlops-dev-recommender-processing",
        f"arn:aws:iam::{ACCOUNT}:role/mlops-dev-recommender-training",
    ]
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert by_sid["RegisterVersionsInItsGroup"]["Resource"] == [
        f"{sagemaker}:model-package/mlops-dev-recommender/*"
    ]


def test_no_statement_allows_wildcard_actions_or_any_action_on_every_resource(dev, prod):
    for capture in (dev, prod):
        for role, document in policies(capture).items():
            for statement in statements(document):
                assert statement["Effect"] == "Allow"
                for action in statement["Action"]:
                    assert action != "*" and not action.endswith(":*"), (role, action)
                if "*" in statement["Resource"]:
                    assert set(statement["Action"]) <= ALLOWED_ON_EVERY_RESOURCE, (role, statement)


def test_roles_are_named_for_the_model_and_trust_only_sagemaker_in_this_account(dev):
    names = {r.inputs["name"] for r in dev.by_type("aws:iam/role:Role")}
    assert names == {
        "mlops-dev-recommender-training-pipeline",
        "mlops-dev-recommender-processing",
        "mlops-dev-recommender-training",
    }
    for role in dev.by_type("aws:iam/role:Role"):
        (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert trust["Principal"] == {"Service": ["sagemaker.amazonaws.com"]}
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_job_roles_may_attach_interfaces_only_in_the_platform_subnets_when_it_has_some(dev, prod):
    subnets = {f"arn:aws:ec2:us-east-1:{ACCOUNT}:subnet/subnet-{s}" for s in "ab"}
    for role in ("processing", "training"):
        by_sid = {s["Sid"]: s for s in statements(policies(prod)[role])}
        assert subnets <= set(by_sid["ManageJobNetworkInterfaces"]["Resource"])
        assert "ManageJobNetworkInterfaces" not in {
            s["Sid"] for s in statements(policies(dev)[role])
        }


def test_every_taggable_resource_carries_its_name_the_model_and_platform_tags(dev):
    tagged = [r for r in dev.resources if "tags" in r.inputs]
    assert {r.type for r in tagged} == {
        "aws:iam/role:Role",
        "aws:sagemaker/pipeline:Pipeline",
        "aws:s3/bucketObjectv2:BucketObjectv2",
    }
    for resource in tagged:
        tags = resource.inputs["tags"]
        assert tags["Name"] == resource.name
        assert tags["Model"] == "recommender" and tags["Team"] == "personalization"
        assert tags["Environment"] == "dev" and tags["Project"] == "mlops"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"quality_floor": 1.5}, "quality_floor is 1.5"),
        ({"max_runtime_seconds": 0}, "max_runtime_seconds is 0"),
        ({"training_instance_count": 0}, "training_instance_count is 0"),
        ({"hyperparameters": {"Learning Rate": 1}}, "'Learning Rate' is not a train.py flag"),
        ({"model_name": "a-model-name-long-enough-to-overflow-iam"}, "IAM allows 64"),
    ],
)
def test_invalid_arguments_are_refused_naming_the_value_received(overrides, message):
    with pytest.raises(ValueError, match=message):
        resolved(lambda: TrainingPipeline("t", pipeline_args("dev", **overrides)))


def _package(root: Path) -> Path:
    package = root / "ml_code"
    (package / "training").mkdir(parents=True)
    (package / "__init__.py").write_text('"""pkg"""\n')
    (package / "training" / "__init__.py").write_text("")
    (package / "training" / "train.py").write_text("print('train')\n")
    (package / "run.sh").write_text("#!/bin/sh\n")
    (package / "run.sh").chmod(0o755)
    return package


def test_bundle_is_byte_identical_across_builds_and_left_untouched_when_unchanged(tmp_path):
    package = _package(tmp_path / "src")
    first = build_source_bundle(package, tmp_path / "build")
    data, stamp = first.path.read_bytes(), first.path.stat().st_mtime_ns
    os.utime(package / "__init__.py", (1_000_000, 1_000_000))
    second = build_source_bundle(package, tmp_path / "build")
    assert second == first
    assert second.path.read_bytes() == data and second.path.stat().st_mtime_ns == stamp


def test_bundle_changes_when_a_file_changes_but_not_for_caches_or_bytecode(tmp_path):
    package = _package(tmp_path / "src")
    before = build_source_bundle(package, tmp_path / "build")
    (package / "training" / "__pycache__").mkdir()
    (package / "training" / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\x00")
    (package / "stale.pyc").write_bytes(b"\x00")
    assert build_source_bundle(package, tmp_path / "build") == before
    (package / "training" / "train.py").write_text("print('train v2')\n")
    after = build_source_bundle(package, tmp_path / "build")
    assert after.sha256 != before.sha256 and after.code_hash != before.code_hash
    assert after.key != before.key


def test_bundle_entries_carry_no_time_owner_or_umask_of_the_machine_that_built_them(tmp_path):
    package = _package(tmp_path / "src")
    bundle = build_source_bundle(package, tmp_path / "build")
    raw = bundle.path.read_bytes()
    assert raw[4:8] == b"\x00\x00\x00\x00", "gzip header mtime must be 0"
    assert raw[3] & 0x08 == 0, "gzip header must carry no file name"
    with tarfile.open(bundle.path) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert [m.name for m in members] == [
        "inference.py",
        "ml_code/__init__.py",
        "ml_code/run.sh",
        "ml_code/training/__init__.py",
        "ml_code/training/train.py",
    ]
    for member in members:
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (
            0,
            0,
            0,
            "",
            "",
        )
        assert member.mode == (0o755 if member.name.endswith(".sh") else 0o644)
    assert gzip.decompress(raw)  # a valid gzip stream


def test_code_hash_is_the_one_trained_models_record_in_their_lineage(tmp_path):
    package = _package(tmp_path / "src")
    assert build_source_bundle(package, tmp_path / "build").code_hash == lineage.code_hash(package)
    copy = shutil.copytree(
        SOURCE_DIR,
        tmp_path / "real" / "ml_code",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    assert build_source_bundle(copy, tmp_path / "build").code_hash == lineage.code_hash(copy)


def test_bundle_serving_entry_point_re_exports_the_inference_handler(tmp_path):
    bundle = build_source_bundle(SOURCE_DIR, tmp_path / "build")
    with tarfile.open(bundle.path) as tar:
        shim = tar.extractfile("inference.py").read().decode()  # type: ignore[union-attr]
        names = set(tar.getnames())
    assert "from ml_code.serving.inference import" in shim
    assert "ml_code/serving/inference.py" in names and "ml_code/training/train.py" in names


def test_a_directory_that_is_not_a_package_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no __init__.py"):
        build_source_bundle(tmp_path, tmp_path / "build")
