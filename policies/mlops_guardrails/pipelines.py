"""A SageMaker pipeline definition read as the jobs it will start.

Processing and Training steps carry CreateProcessingJob / CreateTrainingJob request shapes as
`Arguments`; Condition steps nest steps under IfSteps/ElseSteps. A `{"Get": "Parameters.X"}`
value resolves to the parameter's default (what a run without overrides uses); any other
expression is kept as `RUNTIME`, a value only known when the pipeline runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RUNTIME = "<runtime expression>"


@dataclass(frozen=True)
class Job:
    step: str
    kind: str
    instance_count: Any
    instance_type: Any
    volume_kms_key: Any
    output_kms_key: Any
    has_outputs: bool
    network_isolation: Any
    inter_container_encryption: Any
    vpc_config: Any
    max_runtime_seconds: Any


def jobs(definition: Any) -> list[Job]:
    if not isinstance(definition, dict):
        return []
    defaults = {
        p.get("Name"): p.get("DefaultValue")
        for p in definition.get("Parameters") or []
        if isinstance(p, dict)
    }
    found: list[Job] = []
    _collect(definition.get("Steps") or [], defaults, found)
    return found


def _collect(steps: list[Any], defaults: dict[str, Any], found: list[Job]) -> None:
    for step in steps:
        if not isinstance(step, dict):
            continue
        arguments = step.get("Arguments") or {}
        kind = step.get("Type")
        name = str(step.get("Name", "(unnamed)"))
        if kind == "Training":
            found.append(_training(name, arguments, defaults))
        elif kind == "Processing":
            found.append(_processing(name, arguments, defaults))
        elif kind == "Condition":
            _collect(arguments.get("IfSteps") or [], defaults, found)
            _collect(arguments.get("ElseSteps") or [], defaults, found)


def _resolve(value: Any, defaults: dict[str, Any]) -> Any:
    if isinstance(value, dict) and set(value) == {"Get"}:
        ref = str(value["Get"])
        if ref.startswith("Parameters.") and ref[len("Parameters.") :] in defaults:
            return defaults[ref[len("Parameters.") :]]
        return RUNTIME
    if isinstance(value, dict) and any(k.startswith("Std:") for k in value):
        return RUNTIME
    return value


def _at(arguments: dict[str, Any], defaults: dict[str, Any], *path: str) -> Any:
    value: Any = arguments
    for step in path:
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return _resolve(value, defaults)


def _training(name: str, a: dict[str, Any], d: dict[str, Any]) -> Job:
    return Job(
        step=name,
        kind="Training",
        instance_count=_at(a, d, "ResourceConfig", "InstanceCount"),
        instance_type=_at(a, d, "ResourceConfig", "InstanceType"),
        volume_kms_key=_at(a, d, "ResourceConfig", "VolumeKmsKeyId"),
        output_kms_key=_at(a, d, "OutputDataConfig", "KmsKeyId"),
        has_outputs=True,
        network_isolation=_at(a, d, "EnableNetworkIsolation"),
        inter_container_encryption=_at(a, d, "EnableInterContainerTrafficEncryption"),
        vpc_config=_at(a, d, "VpcConfig"),
        max_runtime_seconds=_at(a, d, "StoppingCondition", "MaxRuntimeInSeconds"),
    )


def _processing(name: str, a: dict[str, Any], d: dict[str, Any]) -> Job:
    cluster = ("ProcessingResources", "ClusterConfig")
    outputs = _at(a, d, "ProcessingOutputConfig", "Outputs")
    return Job(
        step=name,
        kind="Processing",
        instance_count=_at(a, d, *cluster, "InstanceCount"),
        instance_type=_at(a, d, *cluster, "InstanceType"),
        volume_kms_key=_at(a, d, *cluster, "VolumeKmsKeyId"),
        output_kms_key=_at(a, d, "ProcessingOutputConfig", "KmsKeyId"),
        has_outputs=bool(outputs),
        network_isolation=_at(a, d, "NetworkConfig", "EnableNetworkIsolation"),
        inter_container_encryption=_at(
            a, d, "NetworkConfig", "EnableInterContainerTrafficEncryption"
        ),
        vpc_config=_at(a, d, "NetworkConfig", "VpcConfig"),
        max_runtime_seconds=_at(a, d, "StoppingCondition", "MaxRuntimeInSeconds"),
    )
