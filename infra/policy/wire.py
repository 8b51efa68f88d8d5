"""Capture values as the engine marshals them for an analyzer.

The engine sends properties with `KeepUnknowns` and `KeepSecrets` but not `KeepResources`, so
an unknown is the unknown-string sentinel, a secret keeps its signature (pulumi_policy unwraps
it) and a resource reference becomes the referenced resource's id: unknown for a custom resource
being created, the URN for a component.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2

from infra.plan import values

SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"


def marshal(value: Any, custom_urns: frozenset[str]) -> Any:
    if value is values.UNKNOWN:
        return values.UNKNOWN_SENTINEL
    if isinstance(value, values.Secret):
        return {SIG: SECRET_SIG, "value": marshal(value.value, custom_urns)}
    if isinstance(value, values.Asset):
        sig = ASSET_SIG if value.kind == "asset" else ARCHIVE_SIG
        return {SIG: sig, "path": value.path, "hash": value.digest}
    if isinstance(value, dict):
        if set(value) == {"$ref"}:
            urn = value["$ref"]
            return values.UNKNOWN_SENTINEL if urn in custom_urns else urn
        return {k: marshal(v, custom_urns) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [marshal(v, custom_urns) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    raise TypeError(f"cannot marshal {type(value).__name__} for an analyzer")


def struct(props: dict[str, Any], custom_urns: frozenset[str]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(marshal(props, custom_urns))
    return message
