"""The plan's Lambda functions as in-process callables, keyed by the ARN targets name them by.

moto's Lambda runs code in Docker, which a demo machine may not have; the handlers are plain
Python in this repository, so the event router calls them directly. Each call sees what the
function would see in AWS: its `environment.variables` from the plan (set for the duration of
the call, then restored) and a context object with the Lambda context's usual attributes.
Calls run one at a time, because the environment is process-wide.
"""

from __future__ import annotations

import importlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from infra.local.emulator import ACCOUNT_ID, DEFAULT_REGION
from infra.plan import values

FUNCTION_TYPE = "aws:lambda/function:Function"
_call_lock = threading.RLock()


class HandlerError(ValueError):
    """A function in the plan cannot be run locally; the message names it and why."""


@dataclass(frozen=True)
class LambdaContext:
    """The attributes of AWS's Lambda context object that handlers commonly read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str
    function_version: str = "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        """Local calls are not cut off, so the full timeout always remains."""
        return self.timeout_seconds * 1000


@dataclass(frozen=True)
class LocalFunction:
    """One plan function: `local(event)` runs its handler as Lambda would."""

    name: str
    arn: str
    handler: str
    environment: Mapping[str, str]
    memory_mb: int = 128
    timeout_seconds: int = 3

    def __call__(self, event: Any) -> Any:
        module_name, _, attribute = self.handler.rpartition(".")
        function = getattr(importlib.import_module(module_name), attribute)
        context = LambdaContext(
            self.name, self.arn, self.memory_mb, self.timeout_seconds, str(uuid.uuid4())
        )
        with _call_lock, environment(self.environment):
            return function(event, context)


@contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Set `variables` in `os.environ` for the block; restore every one afterwards."""
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def handlers_from_plan(plan: Mapping[str, Any]) -> dict[str, Callable[[Any], Any]]:
    """Function ARN -> callable for every Lambda function in the plan."""
    region = (plan.get("config") or {}).get("aws:region") or DEFAULT_REGION
    functions: dict[str, Callable[[Any], Any]] = {}
    for resource in plan.get("resources", []):
        if resource["type"] != FUNCTION_TYPE:
            continue
        local = _local_function(resource, region)
        functions[local.arn] = local
    return functions


def _local_function(resource: Mapping[str, Any], region: str) -> LocalFunction:
    inputs = resource.get("inputs") or {}
    name = _known(resource, inputs.get("name"), "name") or resource["name"]
    handler = _known(resource, inputs.get("handler"), "handler")
    if not handler or "." not in handler:
        raise HandlerError(
            f"{resource['urn']}: handler {handler!r} is not a dotted 'module.function' path"
        )
    variables = ((inputs.get("environment") or {}).get("variables")) or {}
    env = {
        key: str(_known(resource, value, f"environment.variables.{key}"))
        for key, value in variables.items()
    }
    return LocalFunction(
        name=name,
        arn=f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}",
        handler=handler,
        environment=env,
        memory_mb=int(inputs.get("memorySize") or 128),
        timeout_seconds=int(inputs.get("timeout") or 3),
    )


def _known(resource: Mapping[str, Any], value: Any, path: str) -> Any:
    if values.is_unknown_marker(value):
        raise HandlerError(
            f"{resource['urn']}: input '{path}' is unknown in the plan, so the "
            "function cannot be run locally with the value AWS would give it"
        )
    if values.is_secret_marker(value):
        raise HandlerError(
            f"{resource['urn']}: input '{path}' is a secret; plan files hold only "
            "its hash, so the function cannot be run locally"
        )
    return value
