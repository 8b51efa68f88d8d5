"""Run executions of stored SageMaker pipelines from their definitions, on this machine.

The emulator stores pipelines and executions but runs nothing. This executor takes an
execution, reads the definition and parameters the emulator stored for it, and runs each
step as SageMaker would: the container filesystem (`/opt/ml/...`) is mapped to a working
folder, inputs are downloaded from the emulator's S3 and outputs uploaded to it, the step's
script runs as a subprocess, and `Get`/`JsonGet` references resolve against what earlier steps
produced. Jobs, model packages and the execution's status are written back to the emulator.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.local.jobs_runner import JobRunner, SubprocessRunner
from infra.local.pipeline_refs import Scope, evaluate_condition, references

CONTAINER_ROOT = "/opt/ml"


class StepFailed(Exception):
    """A step ended in failure; the execution stops with this reason."""


@dataclass
class StepResult:
    name: str
    type: str
    status: str
    failure_reason: str = ""
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExecutionResult:
    execution_arn: str
    pipeline_name: str
    status: str
    failure_reason: str
    parameters: dict[str, Any]
    steps: list[StepResult]

    def step(self, name: str) -> StepResult:
        return next(s for s in self.steps if s.name == name)


def split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise StepFailed(f"'{uri}' is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def extract_s3_archive(s3: Any, uri: str, target: Path) -> Path:
    """Unpack a `.tar.gz` object (a code bundle, a model artifact) into `target`."""
    bucket, key = split_s3(uri)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        archive.extractall(target, filter="data")
    return target


def _cast(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "Integer":
        return int(float(value))
    if kind == "Float":
        return float(value)
    if kind == "Boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    return str(value)


def _hyperparameter(value: str) -> str:
    """Framework containers receive hyperparameters JSON-encoded (`'"train.py"'`)."""
    try:
        decoded = json.loads(value)
    except (TypeError, json.JSONDecodeError):
        return str(value)
    return decoded if isinstance(decoded, str) else json.dumps(decoded)


UploadListener = Callable[[str, str], None]
"""(bucket, key) of every object a step wrote, e.g. to emit S3 `Object Created` events."""


class PipelineExecutor:
    def __init__(
        self,
        s3: Any,
        sagemaker: Any,
        workdir: Path,
        *,
        region: str,
        account_id: str,
        runner: JobRunner | None = None,
        on_upload: UploadListener | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        """`clock` is the service's time: `Execution.StartDateTime` and `CurrentDateTime`
        read it, so an emulated execution at a simulated time sees that time, as the one
        SageMaker runs sees its own."""
        self.s3 = s3
        self.sagemaker = sagemaker
        self.workdir = workdir
        self.region = region
        self.account_id = account_id
        self.runner: JobRunner = runner or SubprocessRunner()
        self.on_upload = on_upload
        self.clock = clock
        self.seen: set[str] = set()
        self.results: list[ExecutionResult] = []
        self._objects: dict[tuple[str, str, str | None, int | None], bytes] = {}

    # -- the emulator's record of executions -------------------------------------------------

    def _backend_execution(self, pipeline_name: str, execution_arn: str) -> Any:
        """moto keeps executions in its backend; status changes the API cannot make go there."""
        from moto.backends import get_backend

        backend = get_backend("sagemaker")[self.account_id][self.region]
        return backend.pipelines[pipeline_name].pipeline_executions[execution_arn]

    def claim_new(self) -> list[str]:
        """Mark executions started since the last call as Executing, as the service would."""
        claimed = []
        for pipeline in self.sagemaker.list_pipelines()["PipelineSummaries"]:
            name = pipeline["PipelineName"]
            executions = self.sagemaker.list_pipeline_executions(PipelineName=name)
            for summary in executions["PipelineExecutionSummaries"]:
                arn = summary["PipelineExecutionArn"]
                if arn not in self.seen:
                    self.seen.add(arn)
                    self._backend_execution(name, arn).pipeline_execution_status = "Executing"
                    claimed.append(arn)
        return claimed

    def run_pending(self) -> list[ExecutionResult]:
        pending = []
        for pipeline in self.sagemaker.list_pipelines()["PipelineSummaries"]:
            name = pipeline["PipelineName"]
            summaries = self.sagemaker.list_pipeline_executions(PipelineName=name)
            for summary in summaries["PipelineExecutionSummaries"]:
                arn = summary["PipelineExecutionArn"]
                done = {r.execution_arn for r in self.results}
                if arn not in done:
                    pending.append(arn)
        return [self.run(arn) for arn in sorted(pending)]

    # -- one execution -----------------------------------------------------------------------

    def run(self, execution_arn: str) -> ExecutionResult:
        self.seen.add(execution_arn)
        described = self.sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
        pipeline_name = described["PipelineArn"].split("/")[-1]
        definition = json.loads(
            self.sagemaker.describe_pipeline_definition_for_execution(
                PipelineExecutionArn=execution_arn
            )["PipelineDefinition"]
        )
        given = {
            p["Name"]: p["Value"]
            for p in self.sagemaker.list_pipeline_parameters_for_execution(
                PipelineExecutionArn=execution_arn
            )["PipelineParameters"]
        }
        parameters = {
            p["Name"]: _cast(p.get("Type", "String"), given.get(p["Name"], p.get("DefaultValue")))
            for p in definition.get("Parameters", [])
        }
        execution_id = execution_arn.split("/")[-1]
        scope = Scope(
            parameters=parameters,
            execution={
                "PipelineExecutionId": execution_id,
                "PipelineExecutionArn": execution_arn,
                "PipelineName": pipeline_name,
                "PipelineArn": described["PipelineArn"],
                "StartDateTime": self.clock().isoformat(),
                "CurrentDateTime": self.clock().isoformat(),
            },
            read_json=self._read_json,
        )
        record = self._backend_execution(pipeline_name, execution_arn)
        record.pipeline_execution_status = "Executing"
        steps: list[StepResult] = []
        status, reason = "Succeeded", ""
        try:
            self._run_steps(definition["Steps"], scope, steps, execution_id)
        except StepFailed as exc:
            status, reason = "Failed", str(exc)
        record.pipeline_execution_status = status
        record.pipeline_execution_failure_reason = reason or None
        result = ExecutionResult(execution_arn, pipeline_name, status, reason, parameters, steps)
        self.results.append(result)
        run_dir = self.workdir / execution_id
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "steps.json").write_text(
            json.dumps([s.__dict__ for s in steps], indent=2, default=str)
        )
        return result

    def _run_steps(
        self, step_defs: list[dict[str, Any]], scope: Scope, out: list[StepResult], run_id: str
    ) -> None:
        for step in _ordered(step_defs):
            result = StepResult(step["Name"], step["Type"], "Executing")
            out.append(result)
            try:
                result.properties = self._run_step(step, scope, out, run_id)
                result.status = "Succeeded"
            except StepFailed as exc:
                # A condition whose branch failed still succeeded itself, as in SageMaker.
                if step["Type"] != "Condition":
                    result.status, result.failure_reason = "Failed", str(exc)
                raise
            scope.steps[step["Name"]] = result.properties

    def _run_step(
        self, step: dict[str, Any], scope: Scope, out: list[StepResult], run_id: str
    ) -> dict[str, Any]:
        kind = step["Type"]
        if kind == "Condition":
            args = step["Arguments"]
            outcome = all(evaluate_condition(c, scope) for c in args["Conditions"])
            scope.steps[step["Name"]] = {"Outcome": outcome}
            condition = next(r for r in reversed(out) if r.name == step["Name"])
            condition.status, condition.properties = "Succeeded", {"Outcome": outcome}
            branch = args["IfSteps"] if outcome else args["ElseSteps"]
            self._run_steps(branch, scope, out, run_id)
            return {"Outcome": outcome}
        if kind == "Fail":
            message = scope.resolve(step.get("Arguments", {}).get("ErrorMessage", ""))
            raise StepFailed(f"step '{step['Name']}' failed: {message}")
        args = scope.resolve(step.get("Arguments", {}))
        job_name = f"pipelines-{run_id}-{step['Name']}"[:63]
        if kind == "Processing":
            return self._processing(step, args, scope, job_name)
        if kind == "Training":
            return self._training(args, job_name)
        if kind == "RegisterModel":
            return self._register(args)
        if kind == "Model":
            name = args.get("ModelName") or job_name
            self.sagemaker.create_model(**{**args, "ModelName": name})
            return {**args, "ModelName": name}
        raise StepFailed(f"step '{step['Name']}': type '{kind}' is not run by the local executor")

    # -- step kinds ---------------------------------------------------------------------------

    def _processing(
        self, step: dict[str, Any], args: dict[str, Any], scope: Scope, job_name: str
    ) -> dict[str, Any]:
        root = self.workdir / job_name
        shutil.rmtree(root, ignore_errors=True)
        mapped = _PathMap(root)
        for item in args.get("ProcessingInputs", []):
            if "S3Input" in item:
                source = item["S3Input"]
                self._download(source["S3Uri"], mapped(source["LocalPath"]))
        for script in root.rglob("*.sh"):
            script.write_text(script.read_text().replace(CONTAINER_ROOT, str(root / "opt/ml")))
        app = args["AppSpecification"]
        command = [*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])]
        outputs = args.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for output in outputs:
            mapped(output["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
        self._execute(
            step["Name"], [mapped.arg(c) for c in command], root, args.get("Environment", {})
        )
        for output in outputs:
            target = output["S3Output"]
            self._upload(mapped(target["LocalPath"]), target["S3Uri"])
        files = {}
        for spec in step.get("PropertyFiles", []):
            (output,) = [o for o in outputs if o["OutputName"] == spec["OutputName"]]
            path = mapped(output["S3Output"]["LocalPath"]) / spec["FilePath"]
            if not path.exists():
                raise StepFailed(
                    f"step '{step['Name']}' declared property file '{spec['PropertyFileName']}' "
                    f"at {spec['FilePath']} but did not write it"
                )
            files[spec["PropertyFileName"]] = json.loads(path.read_text())
        scope.property_files[step["Name"]] = files
        self._record_job("processing", {**args, "ProcessingJobName": job_name})
        return {**args, "ProcessingJobName": job_name, "ProcessingJobStatus": "Completed"}

    def _training(self, args: dict[str, Any], job_name: str) -> dict[str, Any]:
        root = self.workdir / job_name
        shutil.rmtree(root, ignore_errors=True)
        mapped = _PathMap(root)
        hyper = {k: _hyperparameter(v) for k, v in args.get("HyperParameters", {}).items()}
        program = hyper.pop("sagemaker_program", None)
        submit = hyper.pop("sagemaker_submit_directory", None)
        if not program or not submit:
            raise StepFailed(
                f"training job {job_name}: only script mode (sagemaker_program and "
                "sagemaker_submit_directory hyperparameters) runs locally"
            )
        code = mapped("/opt/ml/code")
        env = {
            "SM_MODEL_DIR": str(mapped("/opt/ml/model")),
            "SM_OUTPUT_DATA_DIR": str(mapped("/opt/ml/output/data")),
            "SM_HPS": json.dumps(hyper),
            "PYTHONPATH": str(code),
        }
        for channel in args.get("InputDataConfig", []):
            local = mapped(f"/opt/ml/input/data/{channel['ChannelName']}")
            self._download(channel["DataSource"]["S3DataSource"]["S3Uri"], local)
            env[f"SM_CHANNEL_{channel['ChannelName'].upper()}"] = str(local)
        # Network-isolated jobs get their code as an input channel, so the submit directory
        # may be a path inside the container rather than an S3 URI; both are tarballs.
        if submit.startswith(CONTAINER_ROOT):
            self._extract_file(mapped(submit), code)
        else:
            extract_s3_archive(self.s3, submit, code)
        for path in (env["SM_MODEL_DIR"], env["SM_OUTPUT_DATA_DIR"]):
            Path(path).mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, str(code / program)]
        for key, value in sorted(hyper.items()):
            if not key.startswith("sagemaker_"):
                argv += [f"--{key}", value]
        self._execute(job_name, argv, code, {**args.get("Environment", {}), **env})
        output_path = args["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        artifact = f"{output_path}/{job_name}/output/model.tar.gz"
        bucket, key = split_s3(artifact)
        self.s3.put_object(Bucket=bucket, Key=key, Body=_tar_gz(Path(env["SM_MODEL_DIR"])))
        if self.on_upload is not None:
            self.on_upload(bucket, key)
        self._record_job("training", {**args, "TrainingJobName": job_name})
        return {
            **args,
            "TrainingJobName": job_name,
            "TrainingJobStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": artifact},
        }

    def _register(self, args: dict[str, Any]) -> dict[str, Any]:
        request = {k: v for k, v in args.items() if k not in ("ModelPackageName",)}
        response = self.sagemaker.create_model_package(**request)
        return {**args, "ModelPackageArn": response["ModelPackageArn"]}

    # -- plumbing -----------------------------------------------------------------------------

    def _execute(self, name: str, argv: list[str], cwd: Path, env: Mapping[str, str]) -> None:
        if argv and Path(argv[0]).name in ("python", "python3"):
            argv = [sys.executable, *argv[1:]]
        full_env = {**os.environ, **{k: str(v) for k, v in env.items()}}
        full_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{full_env.get('PATH', '')}"
        cwd.mkdir(parents=True, exist_ok=True)
        log = cwd.parent / f"{name}.log"
        code = self.runner.run(argv, cwd, full_env, log)
        if code != 0:
            tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-5:])
            raise StepFailed(f"step '{name}' exited with code {code}: {tail}")

    def _record_job(self, kind: str, request: dict[str, Any]) -> None:
        """Leave the job in the emulator too, so `describe_*_job` sees what ran."""
        try:
            if kind == "processing":
                self.sagemaker.create_processing_job(**request)
            else:
                self.sagemaker.create_training_job(**request)
        except Exception:  # noqa: BLE001 - moto validates less than AWS; the run is what matters
            pass

    def _download(self, uri: str, target: Path) -> None:
        bucket, key = split_s3(uri)
        target.mkdir(parents=True, exist_ok=True)
        paginator = self.s3.get_paginator("list_objects_v2")
        found = False
        for page in paginator.paginate(Bucket=bucket, Prefix=key):
            for obj in page.get("Contents", []):
                found = True
                if obj["Key"] == key:
                    relative = Path(key).name
                else:
                    relative = obj["Key"][len(key) :].lstrip("/")
                destination = target / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(self._object(bucket, obj))
        if not found:
            raise StepFailed(f"input {uri} is empty or missing")

    def _object(self, bucket: str, listed: Mapping[str, Any]) -> bytes:
        """An object's bytes: one GET the first time (download_file would add a HEAD and a
        transfer manager per file), then from memory while its ETag and size are unchanged.
        Jobs re-read the same dataset partitions and capture files run after run, and every
        GET crosses the emulator's HTTP server."""
        identity = (bucket, listed["Key"], listed.get("ETag"), listed.get("Size"))
        data = self._objects.get(identity)
        if data is None:
            data = self.s3.get_object(Bucket=bucket, Key=listed["Key"])["Body"].read()
            self._objects[identity] = data
        return data

    def _upload(self, source: Path, uri: str) -> None:
        bucket, prefix = split_s3(uri)
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            key = f"{prefix.rstrip('/')}/{path.relative_to(source).as_posix()}"
            self.s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
            if self.on_upload is not None:
                self.on_upload(bucket, key)

    def _extract_file(self, path: Path, target: Path) -> None:
        if not path.is_file():
            raise StepFailed(f"code archive {path} was not delivered by any input channel")
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path, mode="r:gz") as archive:
            archive.extractall(target, filter="data")

    def _read_json(self, uri: str) -> Any:
        bucket, key = split_s3(uri)
        return json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())


class _PathMap:
    """`/opt/ml/...` inside the container is `<root>/opt/ml/...` here."""

    def __init__(self, root: Path):
        self.root = root

    def __call__(self, container_path: str) -> Path:
        if not container_path.startswith(CONTAINER_ROOT):
            raise StepFailed(f"container path '{container_path}' is outside {CONTAINER_ROOT}")
        return self.root / container_path.lstrip("/")

    def arg(self, value: Any) -> str:
        text = str(value)
        return text.replace(CONTAINER_ROOT, str(self.root / "opt/ml"))


def _tar_gz(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(folder.rglob("*")):
            archive.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buffer.getvalue()


def _ordered(step_defs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Definition order, moved only as far as `DependsOn` and `Get` references require."""
    names = {s["Name"] for s in step_defs}
    needs = {
        s["Name"]: {
            *[d for d in s.get("DependsOn", []) if d in names],
            *[
                r.split(".")[1].split("[")[0]
                for r in references(s.get("Arguments", {}))
                if r.startswith("Steps.") and r.split(".")[1].split("[")[0] in names
            ],
        }
        for s in step_defs
    }
    ordered: list[dict[str, Any]] = []
    placed: set[str] = set()
    remaining = list(step_defs)
    while remaining:
        ready = [s for s in remaining if needs[s["Name"]] <= placed]
        if not ready:
            cycle = ", ".join(s["Name"] for s in remaining)
            raise StepFailed(f"steps {cycle} depend on each other in a cycle")
        ordered.append(ready[0])
        placed.add(ready[0]["Name"])
        remaining.remove(ready[0])
    return ordered
