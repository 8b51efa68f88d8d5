"""Run a policy pack's analyzer in this process, calling it exactly as the engine does.

`PolicyPack(...)` serves its analyzer over gRPC and blocks forever. Importing the pack's
`__main__` with pulumi_policy's server registration replaced by a capture gives the analyzer
servicer itself; it is then driven with the engine's requests: GetAnalyzerInfo, Configure,
ConfigureStack, Analyze per resource, AnalyzeStack over all of them.
"""

from __future__ import annotations

import runpy
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import policy as pulumi_policy_module

from infra.policy import wire
from infra.policy.resources import EngineResource

_LOAD_LOCK = threading.Lock()

LEVEL_NAMES = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.REMEDIATE: "remediate",
    analyzer_pb2.DISABLED: "disabled",
}
LEVEL_VALUES = {name: value for value, name in LEVEL_NAMES.items()}


class _Captured(Exception):
    def __init__(self, servicer: Any) -> None:
        super().__init__("analyzer captured")
        self.servicer = servicer


class PackLoadError(RuntimeError):
    """The pack's __main__ did not construct a PolicyPack."""


@contextmanager
def _pack_on_path(pack_dir: Path) -> Iterator[None]:
    """The pack's directory first on sys.path, and its modules forgotten afterwards, so two
    packs (or two versions of one) never share imported rule modules."""
    before = set(sys.modules)
    sys.path.insert(0, str(pack_dir))
    try:
        yield
    finally:
        sys.path.remove(str(pack_dir))
        for name in set(sys.modules) - before:
            origin = getattr(sys.modules[name], "__file__", None) or ""
            if origin.startswith(str(pack_dir)):
                del sys.modules[name]


def load_servicer(pack_dir: Path) -> Any:
    """The pack's `AnalyzerServicer`, constructed by its own `__main__` but never served."""

    def capture(servicer: Any, _server: Any) -> None:
        raise _Captured(servicer)

    fake_grpc = SimpleNamespace(server=lambda *args, **kwargs: None)
    fake_stubs = SimpleNamespace(add_AnalyzerServicer_to_server=capture)
    main = pack_dir / "__main__.py"
    with (
        _LOAD_LOCK,
        _pack_on_path(pack_dir),
        mock.patch.object(pulumi_policy_module, "grpc", fake_grpc),
        mock.patch.object(pulumi_policy_module, "analyzer_pb2_grpc", fake_stubs),
    ):
        try:
            runpy.run_path(str(main), run_name="__main__")
        except _Captured as captured:
            return captured.servicer
    raise PackLoadError(f"{main} finished without constructing a PolicyPack")


def policy_infos(info: analyzer_pb2.AnalyzerInfo) -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "description": p.description,
            "enforcementLevel": LEVEL_NAMES[p.enforcementLevel],
            "remediation": p.remediation_steps,
            "schema": json_format.MessageToDict(p.configSchema.properties),
            "required": list(p.configSchema.required),
        }
        for p in info.policies
    ]


def initial_config(info: analyzer_pb2.AnalyzerInfo) -> dict[str, dict[str, Any]]:
    result = {}
    for name, config in info.initialConfig.items():
        entry = json_format.MessageToDict(config.properties)
        entry["enforcementLevel"] = LEVEL_NAMES[config.enforcementLevel]
        result[name] = entry
    return result


def configure_request(config: dict[str, dict[str, Any]]) -> analyzer_pb2.ConfigureAnalyzerRequest:
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, entry in config.items():
        properties = struct_pb2.Struct()
        properties.update(entry["properties"])
        request.policyConfig[name].CopyFrom(
            analyzer_pb2.PolicyConfig(
                enforcementLevel=LEVEL_VALUES[entry["enforcementLevel"]], properties=properties
            )
        )
    return request


def _options(r: EngineResource) -> analyzer_pb2.AnalyzerResourceOptions:
    o = r.options
    return analyzer_pb2.AnalyzerResourceOptions(
        protect=bool(o.get("protect")),
        ignoreChanges=list(o.get("ignoreChanges", [])),
        deleteBeforeReplace=bool(o.get("deleteBeforeReplace")),
        deleteBeforeReplaceDefined=bool(o.get("deleteBeforeReplace")),
        additionalSecretOutputs=list(o.get("additionalSecretOutputs", [])),
        aliases=list(o.get("aliases", [])),
        parent=r.parent,
    )


class Requests:
    """The engine's requests for one stack's resources."""

    def __init__(self, resources: list[EngineResource]) -> None:
        self.resources = resources
        self.by_urn = {r.urn: r for r in resources}
        self.custom_urns = frozenset(r.urn for r in resources if r.custom)

    def _provider(self, r: EngineResource) -> analyzer_pb2.AnalyzerProviderResource | None:
        provider = self.by_urn.get(r.provider_urn)
        if provider is None:
            return None
        return analyzer_pb2.AnalyzerProviderResource(
            type=provider.type,
            urn=provider.urn,
            name=provider.name,
            properties=wire.struct(provider.properties, self.custom_urns),
        )

    def analyze(self, r: EngineResource) -> analyzer_pb2.AnalyzeRequest:
        return analyzer_pb2.AnalyzeRequest(
            type=r.type,
            urn=r.urn,
            name=r.name,
            properties=wire.struct(r.properties, self.custom_urns),
            options=_options(r),
            provider=self._provider(r),
        )

    def analyze_stack(self) -> analyzer_pb2.AnalyzeStackRequest:
        return analyzer_pb2.AnalyzeStackRequest(
            resources=[
                analyzer_pb2.AnalyzerResource(
                    type=r.type,
                    urn=r.urn,
                    name=r.name,
                    properties=wire.struct(r.properties, self.custom_urns),
                    options=_options(r),
                    provider=self._provider(r),
                    parent=r.parent,
                    dependencies=r.dependencies,
                    propertyDependencies={
                        k: analyzer_pb2.AnalyzerPropertyDependencies(urns=v)
                        for k, v in r.property_dependencies.items()
                    },
                )
                for r in self.resources
            ]
        )


EMPTY = empty_pb2.Empty()
