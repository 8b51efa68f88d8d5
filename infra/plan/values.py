"""Property values as the engine passes them, and their JSON form in a plan file.

The engine speaks protobuf Structs with "signature" objects for secrets, unknowns, assets and
resource references. In memory a plan keeps `Secret` and `UNKNOWN` so policies can see secret
values unwrapped and unknowns as unknowns; on disk a secret becomes only a hash, so a plan file
can be shared in a pull request without leaking it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format, struct_pb2

UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
_SIG = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
_ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
_OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"


class _Unknown:
    """A value the engine will only know after the update (shown as `<computed>`)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<computed>"


UNKNOWN = _Unknown()


@dataclass(frozen=True)
class Secret:
    """A secret value; only its hash ever leaves the process."""

    value: Any

    def digest(self) -> str:
        blob = json.dumps(to_json(self.value, reveal=True), sort_keys=True).encode()
        return "sha256:" + hashlib.sha256(blob).hexdigest()

    def __repr__(self) -> str:
        return "[secret]"


@dataclass(frozen=True)
class Asset:
    """A file asset or archive, identified by the content hash of what it points at."""

    kind: str
    path: str
    digest: str


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return decode(json_format.MessageToDict(struct))


def decode(value: Any) -> Any:
    """Turn engine wire values (after MessageToDict) into plain Python with markers."""
    if isinstance(value, str):
        return UNKNOWN if value == UNKNOWN_SENTINEL else value
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    sig = value.get(_SIG)
    if sig == _SECRET_SIG:
        return Secret(decode(value.get("value")))
    if sig in (_ASSET_SIG, _ARCHIVE_SIG):
        return _asset(sig, value)
    if sig == _RESOURCE_SIG:
        return {"$ref": value.get("urn", "")}
    if sig == _OUTPUT_SIG:
        if "value" not in value:
            return UNKNOWN
        inner = decode(value["value"])
        return Secret(inner) if value.get("secret") else inner
    return {k: decode(v) for k, v in value.items()}


def _asset(sig: str, value: dict[str, Any]) -> Asset:
    kind = "asset" if sig == _ASSET_SIG else "archive"
    if "path" in value:
        path = Path(value["path"])
        digest = _file_digest(path) if path.exists() else "missing"
        return Asset(kind, _project_relative(path), digest)
    if "text" in value:
        return Asset(kind, "<text>", "sha256:" + hashlib.sha256(value["text"].encode()).hexdigest())
    if "assets" in value:
        inner = json.dumps(to_json(decode(value["assets"]), reveal=False), sort_keys=True)
        return Asset(kind, "<assets>", "sha256:" + hashlib.sha256(inner.encode()).hexdigest())
    return Asset(kind, value.get("uri", "<unknown>"), "uri")


def _project_relative(path: Path) -> str:
    """Plans run from the project root: paths inside it are kept relative, so a plan file
    names the same file on every machine."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(child.relative_to(path)).encode())
            h.update(child.read_bytes())
    else:
        h.update(path.read_bytes())
    return "sha256:" + h.hexdigest()


def to_json(value: Any, *, reveal: bool = False) -> Any:
    """The plan-file form: secrets as hashes unless `reveal`, unknowns as `{"$unknown": true}`."""
    if value is UNKNOWN:
        return {"$unknown": True}
    if isinstance(value, Secret):
        return to_json(value.value, reveal=True) if reveal else {"$secret": value.digest()}
    if isinstance(value, Asset):
        return {"$" + value.kind: {"path": value.path, "digest": value.digest}}
    if isinstance(value, dict):
        return {k: to_json(v, reveal=reveal) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v, reveal=reveal) for v in value]
    return value


def is_secret_marker(value: Any) -> bool:
    """A secret as a plan file holds it: `{"$secret": "sha256:…"}`."""
    return isinstance(value, dict) and set(value) == {"$secret"}


def is_unknown_marker(value: Any) -> bool:
    """An unknown as a plan file holds it: `{"$unknown": true}`."""
    return isinstance(value, dict) and value == {"$unknown": True}


def redacted(value: Any) -> Any:
    """A plan-file value safe to print: secrets become `[secret]` (not even their hash),
    unknowns `<computed>`."""
    if is_secret_marker(value):
        return "[secret]"
    if is_unknown_marker(value):
        return "<computed>"
    if isinstance(value, dict):
        return {k: redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


def from_json(value: Any) -> Any:
    """Read a plan file's values back; secrets stay hashes (their clear value was never written)."""
    if isinstance(value, dict):
        if is_unknown_marker(value):
            return UNKNOWN
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def unwrap(value: Any) -> Any:
    """Secrets unwrapped, unknowns kept: the view a policy gets."""
    if isinstance(value, Secret):
        return unwrap(value.value)
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value
