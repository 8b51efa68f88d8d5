"""Pipeline definitions as SageMaker will receive them: offline, deterministic, well-formed.

Definitions are built once per module with sockets blocked, then read as plain JSON. Step
arguments are validated with botocore's own request shapes after every pipeline reference is
replaced by a value of the type the API expects there.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import importlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import botocore.session
import pytest
from botocore.validate import ParamValidator

from infra.pipelines import jobs, monitoring, training
from ml_code.handlers import retrain

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
ALIAS = f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/mlops-dev-platform-key"
BUCKET_ALIASES = {
    c: f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/mlops-dev-{c}-key"
    for c in ("curated", "artifacts", "reports")
}
BUCKETS = {
    c: f"mlops-dev-{c}-{ACCOUNT}" for c in ("raw", "curated", "artifacts", "capture", "reports")
}
BUNDLE_URI = f"s3://{BUCKETS['artifacts']}/code/0123456789abcdef/sourcedir.tar.gz"
EXECUTION_VARIABLES = {
    "PipelineExecutionId",
    "PipelineExecutionArn",
    "PipelineName",
    "PipelineArn",
    "StartDateTime",
    "CurrentDateTime",
}
STEP_SHAPES = {
    "Processing": ("CreateProcessingJob", "DescribeProcessingJob", "ProcessingJobName"),
    "Training": ("CreateTrainingJob", "DescribeTrainingJob", "TrainingJobName"),
    "RegisterModel": ("CreateModelPackage", "DescribeModelPackage", None),
}


def job_settings(role: str, **overrides: Any) -> jobs.JobSettings:
    values: dict[str, Any] = dict(
        region="us-east-1",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/mlops-dev-recommender-{role}",
        volume_kms_key_id=ALIAS,
        instance_type="ml.m5.large",
        max_runtime_seconds=5400,
    )
    values.update(overrides)
    return jobs.JobSettings(**values)


def training_spec(**overrides: Any) -> training.TrainingPipelineSpec:
    values: dict[str, Any] = dict(
        model_name="recommender",
        region="us-east-1",
        bundle_uri=BUNDLE_URI,
        code_hash="0123456789abcdef" * 4,
        buckets=BUCKETS,
        output_keys={c: BUCKET_ALIASES[c] for c in ("curated", "artifacts")},
        processing=job_settings("processing"),
        training=job_settings("training", instance_type="ml.m5.xlarge", instance_count=2),
        model_package_group_name="mlops-dev-recommender",
        approval_status="Approved",
        quality_floor=0.25,
        hyperparameters={"learning-rate": "0.05", "max-iter": "200"},
    )
    values.update(overrides)
    return training.TrainingPipelineSpec(**values)


def monitoring_spec(**overrides: Any) -> monitoring.MonitoringPipelineSpec:
    values: dict[str, Any] = dict(
        layout=monitoring.MonitoringLayout("recommender", "mlops-dev-recommender"),
        region="us-east-1",
        bundle_uri=BUNDLE_URI,
        buckets=BUCKETS,
        reports_kms_key_id=BUCKET_ALIASES["reports"],
        settings=job_settings("monitoring", max_runtime_seconds=1800),
        drift_threshold=0.15,
    )
    values.update(overrides)
    return monitoring.MonitoringPipelineSpec(**values)


@contextlib.contextmanager
def network_blocked() -> Iterator[list[str]]:
    """Every connection, name lookup or thread start attempted inside is refused and recorded."""
    attempts: list[str] = []

    def refuse(what: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{what}{args[1:] if what == 'connect' else args[:1]}")
            raise OSError(f"network blocked in test: {what}")

        return call

    start = threading.Thread.start

    def record_thread(thread: threading.Thread) -> None:
        attempts.append(f"thread {thread.name}")
        start(thread)

    with (
        mock.patch.object(socket.socket, "connect", refuse("connect")),
        mock.patch.object(socket, "getaddrinfo", refuse("getaddrinfo")),
        mock.patch.object(threading.Thread, "start", record_thread),
    ):
        yield attempts


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    with network_blocked() as attempts:
        definitions = {
            "dev": training.build_training_definition(training_spec()),
            "prod": training.build_training_definition(
                training_spec(
                    approval_status="PendingManualApproval",
                    processing=job_settings(
                        "processing",
                        subnet_ids=("subnet-a", "subnet-b"),
                        security_group_ids=("sg-1",),
                    ),
                    training=job_settings(
                        "training",
                        subnet_ids=("subnet-a", "subnet-b"),
                        security_group_ids=("sg-1",),
                    ),
                )
            ),
            "monitoring": monitoring.build_monitoring_definition(monitoring_spec()),
        }
    return {
        "text": definitions,
        "json": {k: json.loads(v) for k, v in definitions.items()},
        "attempts": list(attempts),
    }


@pytest.fixture(scope="module")
def dev(built: dict[str, Any]) -> dict[str, Any]:
    return built["json"]["dev"]


def all_steps(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """Top-level steps and those inside condition branches."""
    found = []
    for step in definition["Steps"]:
        found.append(step)
        if step["Type"] == "Condition":
            found += all_steps({"Steps": step["Arguments"]["IfSteps"]})
            found += all_steps({"Steps": step["Arguments"]["ElseSteps"]})
    return found


def steps_of(definition: dict[str, Any], *types: str) -> list[dict[str, Any]]:
    return [s for s in all_steps(definition) if s["Type"] in types]


def step(definition: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [s for s in all_steps(definition) if s["Name"] == name]
    return found


def is_reference(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 1
        and next(iter(value)) in ("Get", "Std:Join", "Std:JsonGet")
    )


def references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if set(value) == {"Get"}:
            yield value["Get"]
        for inner in value.values():
            yield from references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from references(inner)


def path_tokens(path: str) -> list[str | int]:
    tokens: list[str | int] = []
    for name, index, key in re.findall(r"([A-Za-z0-9_]+)|\[(\d+)\]|\['([^']*)'\]", path):
        tokens.append(name or (int(index) if index else key))
    return tokens


SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")


def placeholder(shape: Any) -> Any:
    return {
        "string": "placeholder",
        "integer": 1,
        "long": 1,
        "float": 1.0,
        "double": 1.0,
        "boolean": True,
    }[shape.type_name]


def substitute(value: Any, shape: Any) -> Any:
    """`value` with each pipeline reference replaced by a placeholder of `shape`'s type."""
    if is_reference(value):
        return placeholder(shape)
    if shape.type_name == "structure" and isinstance(value, dict):
        return {
            k: substitute(v, shape.members[k]) if k in shape.members else v
            for k, v in value.items()
        }
    if shape.type_name == "list" and isinstance(value, list):
        return [substitute(v, shape.member) for v in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {k: substitute(v, shape.value) for k, v in value.items()}
    return value


def test_building_every_definition_makes_no_network_call_and_starts_no_thread(built):
    assert built["attempts"] == []


def test_definition_is_byte_identical_in_a_fresh_process_offline_and_with_machine_defaults(
    built, tmp_path
):
    """A new interpreter with another hash seed, sockets blocked before the SDK is imported,
    and SageMaker SDK defaults files that would add tags to every job if they were read."""
    defaults = tmp_path / "sagemaker-defaults.yaml"
    defaults.write_text(
        "SchemaVersion: '1.0'\n"
        "SageMaker:\n"
        "  ProcessingJob:\n"
        "    Tags: [{Key: machine-default, Value: leaked}]\n"
        "  TrainingJob:\n"
        "    Tags: [{Key: machine-default, Value: leaked}]\n"
    )
    script = (
        "import socket, sys\n"
        "attempts = []\n"
        "def refuse(*a, **k):\n"
        "    attempts.append(repr(a[1:]))\n"
        "    raise OSError('blocked')\n"
        "socket.socket.connect = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "import hashlib, json\n"
        "from tests.infra.test_pipeline_definition import training_spec\n"
        "from infra.pipelines.training import build_training_definition\n"
        "text = build_training_definition(training_spec())\n"
        "print(json.dumps({'sha256': hashlib.sha256(text.encode()).hexdigest(),"
        " 'attempts': attempts}))\n"
    )
    env = {
        **os.environ,
        "PYTHONHASHSEED": "12345",
        "PYTHONPATH": str(ROOT),
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(defaults),
        "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": str(defaults),
    }
    env.pop("AWS_REGION", None)
    env.pop("AWS_DEFAULT_REGION", None)
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["attempts"] == []
    assert report["sha256"] == hashlib.sha256(built["text"]["dev"].encode()).hexdigest()


def test_definitions_are_serialised_with_sorted_keys_and_no_whitespace(built):
    for text in built["text"].values():
        assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize("name", ["dev", "prod", "monitoring"])
def test_every_reference_points_at_a_parameter_step_property_or_file_that_exists(built, name):
    definition = built["json"][name]
    parameters = {p["Name"] for p in definition["Parameters"]}
    steps = {s["Name"]: s for s in all_steps(definition)}
    for path in references(definition):
        root, *rest = path_tokens(path)
        if root == "Parameters":
            assert rest == [rest[0]] and rest[0] in parameters, path
        elif root == "Execution":
            assert rest[0] in EXECUTION_VARIABLES, path
        else:
            assert root == "Steps" and rest[0] in steps, path
            target = steps[rest[0]]
            if rest[1] == "PropertyFiles":
                files = {f["PropertyFileName"] for f in target.get("PropertyFiles", [])}
                assert rest[2] in files, path
            else:
                _assert_property_exists(target, rest[1:], path)


def _assert_property_exists(target: dict[str, Any], tokens: list[Any], path: str) -> None:
    """Walk the Describe* response shape, and the step's own lists for items named in it."""
    shape = SAGEMAKER.operation_model(STEP_SHAPES[target["Type"]][1]).output_shape
    mirror: Any = target["Arguments"]
    for token in tokens:
        if shape.type_name == "list":
            assert isinstance(token, str), path
            named = [
                i
                for i in mirror
                if token in (i.get("OutputName"), i.get("InputName"), i.get("ChannelName"))
            ]
            assert named, f"{path}: the step has no item named '{token}'"
            shape, mirror = shape.member, named[0]
        else:
            assert token in shape.members, f"{path}: no '{token}' in {shape.name}"
            shape = shape.members[token]
            mirror = mirror.get(token, {}) if isinstance(mirror, dict) else {}
    assert shape.type_name == "string", path


@pytest.mark.parametrize("name", ["dev", "prod", "monitoring"])
def test_step_arguments_validate_against_botocore_request_shapes(built, name):
    validated = 0
    for found in steps_of(built["json"][name], *STEP_SHAPES):
        operation, _, job_name = STEP_SHAPES[found["Type"]]
        shape = SAGEMAKER.operation_model(operation).input_shape
        params = substitute(found["Arguments"], shape)
        if job_name:
            params[job_name] = f"pipelines-abc123-{found['Name'].lower()}-xyz"
        report = ParamValidator().validate(params, shape)
        assert not report.has_errors(), f"{found['Name']}: {report.generate_report()}"
        validated += 1
    assert validated == {"dev": 6, "prod": 6, "monitoring": 2}[name]


def _bucket_of(uri: Any) -> str:
    """The bucket of an output URI, static or `Std:Join` of a static prefix and run id."""
    text = uri if isinstance(uri, str) else uri["Std:Join"]["Values"][0]
    return text.removeprefix("s3://").split("/", 1)[0]


@pytest.mark.parametrize("name", ["dev", "prod", "monitoring"])
def test_volumes_use_the_platform_key_and_outputs_the_key_of_the_one_bucket_they_land_in(
    built, name
):
    """Bucket policies refuse objects encrypted with another key than the bucket's own."""
    key_of_bucket = {BUCKETS[c]: alias for c, alias in BUCKET_ALIASES.items()}
    definition = built["json"][name]
    for found in steps_of(definition, "Processing"):
        arguments = found["Arguments"]
        assert arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == ALIAS
        outputs = arguments["ProcessingOutputConfig"]
        (bucket,) = {_bucket_of(o["S3Output"]["S3Uri"]) for o in outputs["Outputs"]}
        assert outputs["KmsKeyId"] == key_of_bucket[bucket], found["Name"]
    for found in steps_of(definition, "Training"):
        assert found["Arguments"]["ResourceConfig"]["VolumeKmsKeyId"] == ALIAS
        output = found["Arguments"]["OutputDataConfig"]
        assert output["KmsKeyId"] == key_of_bucket[_bucket_of(output["S3OutputPath"])]


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_training_pipeline_jobs_are_network_isolated_and_encrypt_traffic_between_instances(
    built, name
):
    definition = built["json"][name]
    for found in steps_of(definition, "Processing"):
        network = found["Arguments"]["NetworkConfig"]
        assert network["EnableNetworkIsolation"] is True, found["Name"]
        assert network["EnableInterContainerTrafficEncryption"] is True, found["Name"]
    (train,) = steps_of(definition, "Training")
    assert train["Arguments"]["EnableNetworkIsolation"] is True
    assert train["Arguments"]["EnableInterContainerTrafficEncryption"] is True


def test_monitoring_jobs_are_network_isolated_and_encrypt_traffic_between_instances(built):
    for found in steps_of(built["json"]["monitoring"], "Processing"):
        network = found["Arguments"]["NetworkConfig"]
        assert network == {
            "EnableInterContainerTrafficEncryption": True,
            "EnableNetworkIsolation": True,
        }
        assert found["Arguments"]["Environment"]["AWS_DEFAULT_REGION"] == "us-east-1"


def test_jobs_run_in_the_platform_subnets_when_it_has_some(built):
    vpc = {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-a", "subnet-b"]}
    for found in steps_of(built["json"]["prod"], "Processing"):
        assert found["Arguments"]["NetworkConfig"]["VpcConfig"] == vpc
    (train,) = steps_of(built["json"]["prod"], "Training")
    assert train["Arguments"]["VpcConfig"] == vpc
    for found in steps_of(built["json"]["dev"], "Processing", "Training"):
        assert "VpcConfig" not in found["Arguments"] and "VpcConfig" not in found["Arguments"].get(
            "NetworkConfig", {}
        )


@pytest.mark.parametrize(("name", "seconds"), [("dev", 5400), ("monitoring", 1800)])
def test_every_job_stops_after_the_configured_runtime(built, name, seconds):
    for found in steps_of(built["json"][name], "Processing", "Training"):
        assert found["Arguments"]["StoppingCondition"] == {"MaxRuntimeInSeconds": seconds}


RENDERED_EXECUTION_VARIABLES = {
    "StartDateTime": "2026-12-04T09:30:00.123Z",
    "PipelineExecutionId": "abc123def456",
}
"""As SageMaker renders execution variables: times in ISO 8601 with a `Z`."""


def _resolve(value: Any, parameters: dict[str, Any], evaluation: dict[str, Any]) -> Any:
    """The few expressions the gate uses, evaluated as the pipeline service would."""
    if isinstance(value, dict) and "Get" in value:
        root, name = value["Get"].split(".", 1)
        if root == "Execution":
            return RENDERED_EXECUTION_VARIABLES[name]
        assert root == "Parameters", value
        return parameters[name]
    if isinstance(value, dict) and "Std:JsonGet" in value:
        spec = value["Std:JsonGet"]
        evaluation_file = (
            f"{training.STEP_EVALUATE}.PropertyFiles.{training.EVALUATION_PROPERTY_FILE}"
        )
        assert spec["PropertyFile"] == {"Get": f"Steps.{evaluation_file}"}
        document: Any = evaluation
        for key in spec["Path"].split("."):
            document = document[key]
        return document
    if isinstance(value, dict) and "Std:Join" in value:
        join = value["Std:Join"]
        return join["On"].join(str(_resolve(v, parameters, evaluation)) for v in join["Values"])
    return value


@pytest.mark.parametrize(
    ("ndcg", "floor", "champion", "registered"),
    [
        (0.35, 0.30, 0.34, True),
        (0.30, 0.30, 0.30, True),
        (0.29, 0.30, 0.00, False),
        (0.40, 0.30, 0.41, False),
    ],
)
def test_gate_registers_only_a_model_at_or_above_both_the_floor_and_the_champion(
    dev, ndcg, floor, champion, registered
):
    """The champion's figure is its score on the same test rows, from the same evaluation."""
    gate = step(dev, training.STEP_GATE)["Arguments"]
    parameters = {training.PARAM_QUALITY_FLOOR: floor}
    evaluation = {
        "ranking_metrics": {"ndcg_at_10": {"value": ndcg}},
        "champion": {"ndcg_at_10": {"value": champion}},
    }
    assert {c["Type"] for c in gate["Conditions"]} == {"GreaterThanOrEqualTo"}
    passed = all(
        _resolve(c["LeftValue"], parameters, evaluation)
        >= _resolve(c["RightValue"], parameters, evaluation)
        for c in gate["Conditions"]
    )
    assert passed is registered
    assert [s["Name"] for s in gate["IfSteps"]] == [training.STEP_PACKAGE, training.STEP_REGISTER]
    (reject,) = gate["ElseSteps"]
    assert reject["Type"] == "Fail"
    message = _resolve(reject["Arguments"]["ErrorMessage"], parameters, evaluation)
    assert all(str(figure) in message for figure in (ndcg, floor, champion))


def test_quality_floor_defaults_to_the_configured_value_and_the_champion_to_none(dev):
    defaults = {p["Name"]: p.get("DefaultValue") for p in dev["Parameters"]}
    assert defaults[training.PARAM_QUALITY_FLOOR] == 0.25
    assert defaults[training.PARAM_CHAMPION].endswith(f"/models/recommender/{training.NO_CHAMPION}")


def test_evaluate_scores_the_champion_given_to_the_execution_on_the_same_test_rows(dev):
    evaluate = step(dev, training.STEP_EVALUATE)["Arguments"]
    inputs = {i["InputName"]: i["S3Input"] for i in evaluate["ProcessingInputs"]}
    assert inputs["champion"]["S3Uri"] == {"Get": f"Parameters.{training.PARAM_CHAMPION}"}
    arguments = evaluate["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--champion") + 1] == inputs["champion"]["LocalPath"]


def test_retrain_handler_parameters_and_champion_metadata_key_exist_in_the_definition(dev):
    parameters = {p["Name"] for p in dev["Parameters"]}
    assert {retrain.TRIGGER_REASON_PARAMETER, retrain.CHAMPION_MODEL_PARAMETER} <= parameters
    metadata = step(dev, training.STEP_REGISTER)["Arguments"]["CustomerMetadataProperties"]
    ndcg = metadata[training.CHAMPION_METADATA_KEY]["Std:Join"]["Values"][0]["Std:JsonGet"]
    assert ndcg["Path"] == training.NDCG_PATH
    champion = metadata["champion_ndcg_at_10"]["Std:Join"]["Values"][0]["Std:JsonGet"]
    assert champion["Path"] == training.CHAMPION_NDCG_PATH
    for key, value in metadata.items():
        assert re.fullmatch(r"[A-Za-z0-9_.:/=+\-@ ]{1,128}", key)
        if isinstance(value, str):
            assert re.fullmatch(r"[A-Za-z0-9_.:/=+\-@ ]{1,256}", value), key


@pytest.mark.parametrize(
    ("name", "status"), [("dev", "Approved"), ("prod", "PendingManualApproval")]
)
def test_registration_uses_the_approval_status_of_the_environment(built, name, status):
    register = step(built["json"][name], training.STEP_REGISTER)["Arguments"]
    assert register["ModelApprovalStatus"] == status


def test_registered_model_serves_code_from_its_own_archive_with_metrics_from_evaluation(dev):
    register = step(dev, training.STEP_REGISTER)["Arguments"]
    (container,) = register["InferenceSpecification"]["Containers"]
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["ModelDataUrl"]["Std:Join"]["Values"][0] == {
        "Get": f"Steps.{training.STEP_PACKAGE}.ProcessingOutputConfig.Outputs['model']"
        ".S3Output.S3Uri"
    }
    statistics = register["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["S3Uri"]["Std:Join"]["Values"][-1] == training.EVALUATION_FILE


def test_every_job_runs_the_source_bundle(built):
    for definition in built["json"].values():
        for found in steps_of(definition, "Processing"):
            inputs = {i["InputName"]: i["S3Input"] for i in found["Arguments"]["ProcessingInputs"]}
            assert inputs["code"]["S3Uri"] == BUNDLE_URI
            assert inputs["code"]["LocalPath"] == jobs.CODE_DIR
            assert jobs.BUNDLE_PATH in found["Arguments"]["AppSpecification"]["ContainerArguments"]
    (train,) = steps_of(built["json"]["dev"], "Training")
    channels = {c["ChannelName"]: c for c in train["Arguments"]["InputDataConfig"]}
    assert channels["code"]["DataSource"]["S3DataSource"]["S3Uri"] == BUNDLE_URI
    assert train["Arguments"]["HyperParameters"]["sagemaker_submit_directory"] == (
        jobs.TRAINING_BUNDLE_PATH
    )
    program = train["Arguments"]["HyperParameters"]["sagemaker_program"]
    assert (ROOT / program).is_file()


def test_every_container_path_a_script_receives_is_an_input_or_output_location(built):
    """What lets a local executor run the same definition by remapping these paths."""
    for definition in built["json"].values():
        for found in steps_of(definition, "Processing"):
            arguments = found["Arguments"]
            locations = [i["S3Input"]["LocalPath"] for i in arguments["ProcessingInputs"]]
            locations += [
                o["S3Output"]["LocalPath"] for o in arguments["ProcessingOutputConfig"]["Outputs"]
            ]
            for value in arguments["AppSpecification"]["ContainerArguments"]:
                if isinstance(value, str) and value.startswith("/opt/ml"):
                    assert any(value == loc or value.startswith(f"{loc}/") for loc in locations), (
                        found["Name"],
                        value,
                    )
            assert not any(
                "/opt/ml" in part for part in arguments["AppSpecification"]["ContainerEntrypoint"]
            )


def test_hyperparameters_reach_train_py_under_its_own_flag_names(dev):
    from ml_code.training.model import Hyperparameters

    flags = {f.name.replace("_", "-") for f in dataclasses.fields(Hyperparameters)}
    flags |= {"dataset-version"}
    (train,) = steps_of(dev, "Training")
    given = {k for k in train["Arguments"]["HyperParameters"] if not k.startswith("sagemaker_")}
    assert given == {"learning-rate", "max-iter", "dataset-version"}
    assert given <= flags
    assert train["Arguments"]["HyperParameters"]["learning-rate"] == {
        "Get": "Parameters.LearningRate"
    }


class _Parsed(Exception):
    pass


def _parser_of(module_name: str) -> argparse.ArgumentParser:
    """The script's own argument parser, taken from its `main` before it parses anything."""
    module = importlib.import_module(module_name)
    captured: list[argparse.ArgumentParser] = []

    def capture(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        captured.append(self)
        raise _Parsed

    with (
        mock.patch.object(argparse.ArgumentParser, "parse_args", capture),
        contextlib.suppress(_Parsed),
    ):
        module.main([])
    return captured[0]


def test_processing_scripts_accept_the_arguments_the_pipelines_pass(built):
    for definition in built["json"].values():
        defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
        for found in steps_of(definition, "Processing"):
            bundle, *command = found["Arguments"]["AppSpecification"]["ContainerArguments"]
            if found["Name"] == training.STEP_PACKAGE:
                continue
            module, *arguments = [_resolve(a, defaults, {}) for a in command]
            parser = _parser_of(module)
            parser.allow_abbrev = False
            parser.parse_args([str(a) for a in arguments])


def test_building_with_a_hyperparameter_that_is_not_a_flag_name_is_refused():
    with pytest.raises(ValueError, match="'learning_rate!' is not a train.py flag name"):
        training.build_training_definition(training_spec(hyperparameters={"learning_rate!": "1"}))
    with pytest.raises(ValueError, match="would shadow the pipeline parameter 'QualityFloor'"):
        training.check_hyperparameters({"quality-floor": "1"})
