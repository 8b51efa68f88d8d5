"""How pipeline jobs get their code and run it: one contract for every processing step.

A processing job receives the source bundle as an input and runs
`python3 -m <module> <arguments>` with the bundle on `PYTHONPATH`. Every container path a
script sees is passed in `ContainerArguments` and equals the `LocalPath` of an input or an
output, and the entrypoint itself names no path: a local executor can run the same definition
by mapping those paths to directories of its own.

Security defaults live here so no step can forget them: volumes encrypted with the platform
key and outputs with their bucket's key, inter-container traffic encrypted, network isolation
on (off only for the monitoring jobs, which must reach CloudWatch), the VPC when subnets are
given, and a hard runtime limit. Builders call these helpers inside `sdk.offline_sdk`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.pipelines.sdk import offline_sdk

PROCESSING_ROOT = "/opt/ml/processing"
CODE_DIR = f"{PROCESSING_ROOT}/input/code"
BUNDLE_PATH = f"{CODE_DIR}/sourcedir.tar.gz"
TRAINING_CODE_CHANNEL = "code"
TRAINING_BUNDLE_PATH = f"/opt/ml/input/data/{TRAINING_CODE_CHANNEL}/sourcedir.tar.gz"
"""Network-isolated training cannot download `sagemaker_submit_directory` from S3, so the
bundle arrives as a channel and the toolkit extracts it from this local path."""
IMAGE_FRAMEWORK = "sklearn"
IMAGE_VERSION = "1.9-0"
"""The SageMaker scikit-learn image matching the project's scikit-learn 1.9."""

RUN_MODULE = (
    'set -eu; bundle="$1"; shift; code="$(mktemp -d)"; tar -xzf "$bundle" -C "$code"; '
    'PYTHONPATH="$code${PYTHONPATH:+:$PYTHONPATH}" exec python3 -m "$@"'
)
"""`sh -c RUN_MODULE run-module <bundle> <module> <args...>`."""


@dataclass(frozen=True)
class JobSettings:
    """What every job of one pipeline shares."""

    region: str
    role_arn: str
    volume_kms_key_id: str
    """Job volumes (the platform key); an alias ARN keeps the definition known at preview."""
    instance_type: str
    max_runtime_seconds: int
    instance_count: int = 1
    volume_size_gb: int = 30
    image_uri: str | None = None
    """Default: the SageMaker scikit-learn image for the region."""
    network_isolation: bool = True
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)


@functools.cache
def default_image_uri(region: str, instance_type: str, scope: str = "training") -> str:
    """The SageMaker scikit-learn image for the region, from the SDK's table (read offline)."""
    with offline_sdk(region):
        from sagemaker.core import image_uris

        return image_uris.retrieve(
            IMAGE_FRAMEWORK,
            region,
            version=IMAGE_VERSION,
            py_version="py3",
            instance_type=instance_type,
            image_scope=scope,
        )


def image_uri(settings: JobSettings, scope: str = "training") -> str:
    return settings.image_uri or default_image_uri(settings.region, settings.instance_type, scope)


def processor(
    session: Any,
    settings: JobSettings,
    output_kms_key_id: str,
    entrypoint: Sequence[str] | None = None,
) -> Any:
    """A `Processor` that runs `RUN_MODULE` (or `entrypoint`) with the platform's guarantees.

    Every output of a job goes to one bucket, so `output_kms_key_id` can be that bucket's own
    key: the bucket policy refuses objects encrypted with any other.
    """
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.processing import Processor

    return Processor(
        role=settings.role_arn,
        image_uri=image_uri(settings),
        instance_count=settings.instance_count,
        instance_type=settings.instance_type,
        entrypoint=list(entrypoint or ["/bin/sh", "-c", RUN_MODULE, "run-module"]),
        volume_size_in_gb=settings.volume_size_gb,
        volume_kms_key=settings.volume_kms_key_id,
        output_kms_key=output_kms_key_id,
        max_runtime_in_seconds=settings.max_runtime_seconds,
        env=dict(settings.environment) or None,
        network_config=NetworkConfig(
            enable_network_isolation=settings.network_isolation,
            encrypt_inter_container_traffic=True,
            security_group_ids=list(settings.security_group_ids) or None,
            subnets=list(settings.subnet_ids) or None,
        ),
        sagemaker_session=session,
    )


def s3_input(name: str, s3_uri: Any, local_path: str) -> Any:
    """Download an object, or every object under a prefix, to `local_path` before the job."""
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=s3_uri,
            local_path=local_path,
            s3_data_type="S3Prefix",
            s3_input_mode="File",
            s3_data_distribution_type="FullyReplicated",
        ),
    )


def code_input(bundle_uri: str) -> Any:
    return s3_input("code", bundle_uri, CODE_DIR)


def s3_output(name: str, s3_uri: Any, local_path: str) -> Any:
    """Upload `local_path` to `s3_uri` when the job ends."""
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(
            s3_uri=s3_uri, local_path=local_path, s3_upload_mode="EndOfJob"
        ),
    )


def module_arguments(module: str, *arguments: Any) -> list[Any]:
    """`ContainerArguments` for `RUN_MODULE`: the bundle, the module, then its arguments."""
    return [BUNDLE_PATH, module, *arguments]


def output_uri(step: Any, output_name: str) -> Any:
    """The S3 URI a processing step uploaded `output_name` to, as a pipeline property."""
    return step.properties.ProcessingOutputConfig.Outputs[output_name].S3Output.S3Uri
