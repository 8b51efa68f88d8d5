"""The resource list the engine would analyze for a capture.

Besides the program's registrations the engine analyzes the root stack (its properties are the
stack outputs) and one default provider per package used without an explicit provider, named
`default_<version>` with the package's stack config as inputs. During preview a new resource's
outputs are its inputs, so `Analyze` and `AnalyzeStack` see the same properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from infra.plan.engine import ROOT_STACK_TYPE, Capture

PROVIDER_PREFIX = "pulumi:providers:"


@dataclass(frozen=True)
class EngineResource:
    urn: str
    type: str
    name: str
    custom: bool
    properties: dict[str, Any]
    parent: str = ""
    provider_urn: str = ""
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


def stack_urn(capture: Capture) -> str:
    stack, project = capture.stack, capture.project
    return f"urn:pulumi:{stack}::{project}::{ROOT_STACK_TYPE}::{project}-{stack}"


def _package_version(package: str) -> str | None:
    try:
        return metadata.version(f"pulumi_{package}")
    except metadata.PackageNotFoundError:
        return None


def _default_provider(capture: Capture, package: str) -> EngineResource:
    version = _package_version(package)
    name = f"default_{version.replace('.', '_')}" if version else "default"
    inputs: dict[str, Any] = {
        key.split(":", 1)[1]: value
        for key, value in sorted(capture.config.items())
        if key.startswith(f"{package}:")
    }
    if version:
        inputs["version"] = version
    urn = f"urn:pulumi:{capture.stack}::{capture.project}::{PROVIDER_PREFIX}{package}::{name}"
    return EngineResource(
        urn=urn, type=f"{PROVIDER_PREFIX}{package}", name=name, custom=True, properties=inputs
    )


def engine_resources(capture: Capture) -> list[EngineResource]:
    """Registration order: the stack, then each resource after the default provider it needs."""
    root = stack_urn(capture)
    found = [
        EngineResource(
            urn=root,
            type=ROOT_STACK_TYPE,
            name=f"{capture.project}-{capture.stack}",
            custom=False,
            properties=dict(capture.outputs),
        )
    ]
    providers: dict[str, EngineResource] = {}
    for r in capture.resources:
        provider_urn = ""
        if r.provider:  # a provider reference is "<urn>::<id>"
            provider_urn = (
                r.provider.rsplit("::", 1)[0] if r.provider.count("::") > 3 else r.provider
            )
        elif r.custom and not r.type.startswith(PROVIDER_PREFIX):
            package = r.type.split(":")[0]
            if package not in providers:
                providers[package] = _default_provider(capture, package)
                found.append(providers[package])
            provider_urn = providers[package].urn
        found.append(
            EngineResource(
                urn=r.urn,
                type=r.type,
                name=r.name,
                custom=r.custom,
                properties=r.inputs,
                parent=r.parent or root,
                provider_urn=provider_urn,
                dependencies=list(r.dependencies),
                property_dependencies={k: v for k, v in r.property_dependencies.items() if v},
                options=r.options,
            )
        )
    return found
