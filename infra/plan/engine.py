"""Run a Pulumi program offline, the way the Python language host runs it, and capture it.

A recording monitor stands in for the engine: every `RegisterResource` and the stack's
`RegisterResourceOutputs` are kept with their inputs, per-property dependencies and options.
The run is a preview (`dry_run`), so values only known after an update stay unknown, as in
`pulumi preview`. One program per process: a second run in the same interpreter would reuse
the first one's imported modules.
"""

from __future__ import annotations

import asyncio
import os
import runpy
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_in_stack

from infra.plan import values
from infra.plan.config import Project, StackConfig

ROOT_STACK_TYPE = "pulumi:pulumi:Stack"
PLAN_ACCOUNT_ID = "123456789012"
"""The account id offline plans use: names built from the caller's account show this value."""


class UnmockedInvokeError(Exception):
    """An invoke the offline plan cannot answer; returning an empty value would plan nonsense."""


@dataclass
class Resource:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    property_dependencies: dict[str, list[str]]
    dependencies: list[str]
    provider: str | None
    options: dict[str, Any]


@dataclass
class Capture:
    project: str
    stack: str
    config: dict[str, Any]
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def by_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]


def urn_for(stack: str, project: str, parent_urn: str | None, type_: str, name: str) -> str:
    """The engine's rule: the parent's full type chain, except the root stack, prefixes the type."""
    qualified = type_
    if parent_urn:
        parent_type = parent_urn.split("::")[2]
        if parent_type != ROOT_STACK_TYPE:
            qualified = f"{parent_type}${type_}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


class PlanMocks(pulumi.runtime.Mocks):
    """Preview semantics: a new resource's outputs are its inputs; everything else is unknown."""

    def __init__(
        self,
        region: str,
        preview: bool = True,
        stack_outputs: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.region = region
        self.preview = preview
        self.stack_outputs = stack_outputs or {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        if args.typ == "pulumi:pulumi:StackReference":
            return self._stack_reference(args)
        if self.preview:
            return "", dict(args.inputs)
        service = args.typ.split(":")[1].split("/")[0]
        resource_id = f"{args.name}-id"
        arn = f"arn:aws:{service}:{self.region}:{PLAN_ACCOUNT_ID}:{args.name}"
        if args.typ == "aws:s3/bucket:Bucket" and "bucket" in args.inputs:
            resource_id = args.inputs["bucket"]
            arn = f"arn:aws:s3:::{resource_id}"
        state = {"arn": arn, "keyId": resource_id, "name": args.name, **args.inputs}
        return resource_id, state

    def _stack_reference(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        """Another stack's outputs come from its own offline plan. A referenced stack is a
        deployed one, so pass a plan made with `--resolved`; a preview plan's unknowns stay
        unknown (and make every output read from it unknown, as the SDK does)."""
        name = args.inputs.get("name") or args.resource_id or args.name
        if name not in self.stack_outputs:
            raise UnmockedInvokeError(
                f"StackReference '{name}' cannot be read offline: plan that stack first and pass "
                f"its plan file with --stack-reference {name}=PLAN.json"
            )
        outputs = _wire(self.stack_outputs[name])
        return name, {"name": name, "outputs": outputs, "secretOutputNames": []}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        answers = {
            "aws:index/getCallerIdentity:getCallerIdentity": {
                "accountId": PLAN_ACCOUNT_ID,
                "arn": f"arn:aws:iam::{PLAN_ACCOUNT_ID}:user/plan",
                "userId": "AIDAPLAN",
                "id": PLAN_ACCOUNT_ID,
            },
            "aws:index/getRegion:getRegion": {
                "name": self.region,
                "region": self.region,
                "id": self.region,
                "endpoint": f"ec2.{self.region}.amazonaws.com",
                "description": self.region,
            },
            "aws:index/getPartition:getPartition": {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsSuffix": "com.amazonaws",
                "id": "aws",
            },
        }
        if args.token not in answers:
            raise UnmockedInvokeError(
                f"invoke '{args.token}' cannot be answered offline; plan programs may only call "
                f"{', '.join(sorted(answers))}"
            )
        return answers[args.token]


class RecordingMonitor(mocks.MockMonitor):
    """Records registrations the way the engine receives them, with the engine's URNs."""

    def __init__(self, mock: PlanMocks, project: str, stack: str) -> None:
        super().__init__(mock)
        self.project = project
        self.stack = stack
        self.recorded: list[Resource] = []
        self.stack_outputs: dict[str, Any] = {}
        self.invoke_error: Exception | None = None

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        return urn_for(self.stack, self.project, parent or None, type_, name)

    def Invoke(self, request: Any) -> Any:
        try:
            return super().Invoke(request)
        except UnmockedInvokeError as exc:
            self.invoke_error = exc
            raise

    def RegisterResource(self, request: resource_pb2.RegisterResourceRequest) -> Any:
        response = super().RegisterResource(request)
        if request.type != ROOT_STACK_TYPE:
            self.recorded.append(self._record(request, response.urn))
        return response

    def RegisterResourceOutputs(self, request: resource_pb2.RegisterResourceOutputsRequest) -> Any:
        if request.urn.split("::")[2] == ROOT_STACK_TYPE:
            self.stack_outputs = values.from_struct(request.outputs)
        return super().RegisterResourceOutputs(request)

    def _record(self, request: resource_pb2.RegisterResourceRequest, urn: str) -> Resource:
        parent = request.parent or None
        if parent and parent.split("::")[2] == ROOT_STACK_TYPE:
            parent = None
        aliases = sorted(set(request.aliasURNs) | {_alias(a) for a in request.aliases})
        options = {
            "protect": bool(request.protect),
            "retainOnDelete": bool(request.retainOnDelete),
            "deleteBeforeReplace": bool(request.deleteBeforeReplace),
            "ignoreChanges": sorted(request.ignoreChanges),
            "replaceOnChanges": sorted(request.replaceOnChanges),
            "aliases": aliases,
            "dependsOn": sorted(request.dependencies),
            "provider": request.provider or None,
            "additionalSecretOutputs": sorted(request.additionalSecretOutputs),
        }
        return Resource(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=parent,
            custom=bool(request.custom),
            inputs=values.from_struct(request.object),
            property_dependencies={
                k: sorted(v.urns) for k, v in sorted(request.propertyDependencies.items())
            },
            dependencies=sorted(request.dependencies),
            provider=request.provider or None,
            options=options,
        )


def _wire(value: Any) -> Any:
    """A plan file's values as the engine would send them (unknowns as its sentinel)."""
    if value is values.UNKNOWN:
        return values.UNKNOWN_SENTINEL
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def _alias(alias: Any) -> str:
    if alias.urn:
        return alias.urn
    parts = [f"{f.name}={v}" for f, v in alias.spec.ListFields() if f.name != "noParent"]
    return ",".join(sorted(parts))


def capture_program(
    project: Project,
    stack: str,
    config: StackConfig,
    *,
    preview: bool = True,
    stack_outputs: dict[str, dict[str, Any]] | None = None,
) -> Capture:
    """Run the project's program for `stack` in this process under the recording monitor."""
    program = project.main / "__main__.py" if project.main.is_dir() else project.main
    sys.path.insert(0, str(program.parent))
    cwd = Path.cwd()
    os.chdir(project.root)
    try:
        return capture_function(
            lambda: runpy.run_path(str(program), run_name="__main__"),
            project=project.name,
            stack=stack,
            config=config.values,
            secret_keys=config.secret_keys,
            preview=preview,
            stack_outputs=stack_outputs,
        )
    finally:
        os.chdir(cwd)


def capture_function(
    program: Callable[[], Any],
    *,
    project: str = "mlops",
    stack: str = "dev",
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
    preview: bool = True,
    stack_outputs: dict[str, dict[str, Any]] | None = None,
) -> Capture:
    """Run `program` inside a fresh root stack, as the language host runs `__main__.py`.

    With `preview=False` every resource gets an id and an ARN as after an update, so tests can
    read documents that embed ARNs (a bucket policy naming its KMS key) in full.
    """
    config = dict(config or {})
    secret_keys = list(secret_keys or [])
    region = config.get("aws:region", "us-east-1")
    monitor = RecordingMonitor(PlanMocks(region, preview, stack_outputs), project, stack)
    run_settings = mocks.MockSettings(
        monitor=monitor,
        monitor_features=set(monitor.GetDeploymentInfo(None).supportedFeatures),
        engine=mocks.MockEngine(None),
        project=project,
        stack=stack,
        dry_run=preview,
        organization="organization",
        callbacks=None,
    )
    pulumi_settings.configure(run_settings)
    set_all_config(config, secret_keys)
    os.environ.setdefault("AWS_REGION", region)
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(run_in_stack(program))
    except Exception:
        if monitor.invoke_error is not None:
            raise monitor.invoke_error from None
        raise
    finally:
        loop.close()
    shown_config = {k: (values.Secret(v) if k in secret_keys else v) for k, v in config.items()}
    return Capture(
        project=project,
        stack=stack,
        config=shown_config,
        resources=monitor.recorded,
        outputs=monitor.stack_outputs,
    )
