"""The SageMaker SDK, used offline: no AWS call, no machine-specific default, no telemetry.

The SDK is written for notebooks that talk to AWS. Building a pipeline definition needs none of
that, so the builders enter `offline_sdk(region)` which, for its duration only:

* gives the SDK a region before it is imported (it creates a boto3 client at import time) and
  turns off the EC2 metadata lookup boto3 would otherwise make to find credentials;
* points the SDK's defaults files (`~/.config/sagemaker/config.yaml`, or an `s3://` override)
  at an empty file, so a developer's defaults (a bucket, a role, tags) can never leak into a
  definition and no defaults file is fetched from S3;
* skips the IAM role lookups (`SAGEMAKER_VALIDATE_ROLE=false`): roles are passed as full ARNs;
* silences log records up to WARNING and Python warnings, which the SDK emits for
  interactive use, and undoes the `logging.basicConfig(level=INFO)` it runs at import, which
  would otherwise make every library in the program log at INFO to stderr.

The SDK's only telemetry opt-out is a defaults document, which it then re-validates against
its JSON schema on every setting it reads (seconds per build). Instead, `without_telemetry`
calls the two SDK methods that report telemetry (`ModelTrainer.train`,
`ModelBuilder.register`) underneath their telemetry decorator.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def offline_sdk(region: str) -> Iterator[None]:
    """Environment, logging and warnings for building definitions; all restored on exit."""
    overrides = {
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION") or region,
        "AWS_EC2_METADATA_DISABLED": "true",
        "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": os.devnull,
        "SAGEMAKER_USER_CONFIG_OVERRIDE": os.devnull,
        "SAGEMAKER_VALIDATE_ROLE": "false",
    }
    saved_env = {key: os.environ.get(key) for key in overrides}
    root = logging.getLogger()
    saved_root = (root.level, list(root.handlers))
    saved_disable = logging.root.manager.disable
    os.environ.update(overrides)
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        logging.disable(saved_disable)
        root.setLevel(saved_root[0])
        root.handlers[:] = saved_root[1]


def pipeline_session(region: str) -> Any:
    """A `PipelineSession` that records job requests and can never sign one.

    Its boto3 session carries placeholder credentials, so building never walks the credential
    chain (profiles, SSO, credential processes); a request sent by mistake fails to authenticate
    rather than acting on an account. Call inside `offline_sdk`.
    """
    import boto3
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    boto_session = boto3.Session(
        region_name=region,
        aws_access_key_id="offline-definition-build",
        aws_secret_access_key="offline-definition-build",
    )
    return PipelineSession(boto_session=boto_session, default_bucket="unused-every-uri-is-explicit")


def without_telemetry(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method` beneath the SDK's telemetry decorator (see the module docstring).

    Refuses a method whose outermost wrapper is not that decorator, so an SDK upgrade that
    moves it fails the build loudly instead of reporting to AWS from a plan.
    """
    inner = getattr(method, "__wrapped__", None)
    code = getattr(method, "__code__", None)
    telemetry = os.path.join("telemetry", "telemetry_logging.py")
    if inner is None or code is None or not code.co_filename.endswith(telemetry):
        raise RuntimeError(
            f"{method.__qualname__} is no longer wrapped by the SageMaker SDK's telemetry "
            "decorator; review infra/pipelines/sdk.py for this SDK version."
        )
    return inner
