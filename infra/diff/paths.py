"""Where two plan values differ, as input paths a reviewer can read.

Plan files keep markers instead of values: `{"$secret": "sha256:…"}` and `{"$unknown": true}`.
A secret is compared by hash and never descended into, so no change of a secret can print part
of it. JSON held in a string (IAM policy documents, the `mlops:models` config list) is compared
structurally, so a reviewer sees `policy.Statement[1].Effect` rather than two long strings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from infra.plan import values


class _Missing:
    """The side of a change where the value does not exist (an added or removed key)."""

    def __repr__(self) -> str:
        return "(none)"


MISSING: Any = _Missing()
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INDEX = re.compile(r"\[\d+\]")


is_secret = values.is_secret_marker
is_unknown = values.is_unknown_marker


def _is_marker(value: Any) -> bool:
    return is_secret(value) or is_unknown(value)


@dataclass(frozen=True)
class ValueChange:
    """One leaf that differs; `old`/`new` are plan-file values or MISSING."""

    path: str
    old: Any
    new: Any

    @property
    def involves_secret(self) -> bool:
        return is_secret(self.old) or is_secret(self.new)

    @property
    def pattern(self) -> str:
        """The path with list indexes as `[*]`, the form the replacement table is keyed by."""
        return _INDEX.sub("[*]", self.path)

    @property
    def top_level(self) -> str:
        return re.split(r"[.\[]", self.path, maxsplit=1)[0]


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not path:
        return key
    return f"{path}.{key}" if _IDENTIFIER.match(key) else f"{path}[{json.dumps(key)}]"


def _as_json_container(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, (dict, list)) else None
    return None


def changes(old: Any, new: Any, path: str = "") -> list[ValueChange]:
    """Every leaf that differs between `old` and `new`, in a stable order."""
    if old == new:
        return []
    if _is_marker(old) or _is_marker(new) or old is MISSING or new is MISSING:
        return [ValueChange(path, old, new)]
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[ValueChange] = []
        for key in sorted(set(old) | set(new)):
            found += changes(old.get(key, MISSING), new.get(key, MISSING), join(path, key))
        return found
    if isinstance(old, list) and isinstance(new, list):
        found = []
        for i in range(max(len(old), len(new))):
            a = old[i] if i < len(old) else MISSING
            b = new[i] if i < len(new) else MISSING
            found += changes(a, b, join(path, i))
        return found
    old_doc, new_doc = _as_json_container(old), _as_json_container(new)
    if old_doc is not None and new_doc is not None:
        return changes(old_doc, new_doc, path)
    return [ValueChange(path, old, new)]


def leaves(value: Any, path: str = "") -> dict[str, Any]:
    """Flatten a value to `{path: leaf}`; markers and JSON-in-strings are leaves."""
    if isinstance(value, dict) and value and not _is_marker(value):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(leaves(item, join(path, key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, item in enumerate(value):
            out.update(leaves(item, join(path, i)))
        return out
    return {path: value}


def redact(value: Any) -> Any:
    """A value safe to print: secrets become `[secret]`, unknowns `<computed>`."""
    return "(none)" if value is MISSING else values.redacted(value)


def short_urn(urn: str) -> str:
    """`urn:pulumi:prod::mlops::A$B$aws:s3/bucket:Bucket::raw` → `aws:s3/bucket:Bucket::raw`."""
    parts = urn.split("::")
    if len(parts) < 4:
        return urn
    return f"{parts[2].rsplit('$', 1)[-1]}::{parts[3]}"


def show(value: Any, limit: int = 160) -> str:
    """One line for a value; strings quoted so `"2"` and `2` read differently, URNs shortened
    to type and name because the stack, project and parent chain are the same on both sides."""
    safe = redact(value)
    if value is MISSING or is_secret(value) or is_unknown(value):
        return str(safe)
    if isinstance(value, str) and value.startswith("urn:pulumi:"):
        return short_urn(value)
    text = json.dumps(safe, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(change: ValueChange) -> str:
    """`old → new`, with a secret only ever described, never shown (not even its hash)."""
    old, new = change.old, change.new
    if is_secret(old) and is_secret(new):
        return "[secret changed]"
    if is_secret(new):
        return "(none) → [secret]" if old is MISSING else "[value became secret]"
    if is_secret(old):
        return "[secret] → (none)" if new is MISSING else "[secret no longer secret]"
    return f"{show(old)} → {show(new)}"


def to_jsonable(change: ValueChange) -> dict[str, Any]:
    """The JSON report's form: secrets as `{"$secret": true}`, absent sides as `null`."""

    def side(value: Any) -> Any:
        if value is MISSING:
            return None
        if is_secret(value):
            return {"$secret": True}
        if isinstance(value, dict):
            return {k: side(v) for k, v in value.items()}
        if isinstance(value, list):
            return [side(v) for v in value]
        return value

    return {
        "path": change.path,
        "old": side(change.old),
        "new": side(change.new),
        "summary": describe(change),
    }
