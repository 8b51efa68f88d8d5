"""The structural difference between two plans of one stack.

Resources are matched the way the engine matches them, by URN. What the engine would see as a
delete plus a create is then examined twice, because both hide an unintended replacement behind
a refactoring: the same type and name under a new URN is a *move* (a component renamed or a
child re-parented), and a removed/added pair of one type under corresponding parents whose
inputs are near-identical once the old name is read as the new one is a *renamed* child. Both
replace the resource unless the new code declares `aliases`; the diff says so.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from infra.diff import paths, replacements
from infra.diff.paths import MISSING, ValueChange

RENAME_SIMILARITY = 0.8
"""Share of input leaves that must agree (after name substitution) to call a pair a rename."""

_OPTION_KEYS = (
    "protect",
    "retainOnDelete",
    "deleteBeforeReplace",
    "ignoreChanges",
    "replaceOnChanges",
    "aliases",
    "dependsOn",
    "provider",
    "additionalSecretOutputs",
)


@dataclass
class ResourceChange:
    """One resource's fate: added, removed, changed, replaced or moved."""

    kind: str
    urn: str
    type: str
    name: str
    old_urn: str | None = None
    inputs: list[ValueChange] = field(default_factory=list)
    options: list[ValueChange] = field(default_factory=list)
    replace_reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    needs_aliases: bool = False


@dataclass
class StackDiff:
    """Everything that differs in one stack, plus why the diff could not be made, if so."""

    stack: str
    resources: list[ResourceChange] = field(default_factory=list)
    outputs: list[ValueChange] = field(default_factory=list)
    config: list[ValueChange] = field(default_factory=list)
    policy_appeared: list[dict[str, Any]] = field(default_factory=list)
    policy_resolved: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def new_mandatory(self) -> int:
        """New violations that would block `pulumi up`: these decide the review."""
        return sum(1 for v in self.policy_appeared if v.get("enforcementLevel") == "mandatory")

    def count(self, kind: str) -> int:
        return sum(1 for r in self.resources if r.kind == kind)

    @property
    def has_changes(self) -> bool:
        return bool(
            self.resources
            or self.outputs
            or self.config
            or self.policy_appeared
            or self.policy_resolved
        )

    def summary(self) -> str:
        """`1 changed, 1 replaced`: the line a reviewer scans before opening a stack's details."""
        if self.error:
            return "plan failed"
        parts = [
            f"{self.count(kind)} {kind}"
            for kind in ("added", "removed", "changed", "replaced", "moved")
            if self.count(kind)
        ]
        aliases = sum(1 for r in self.resources if r.needs_aliases)
        if aliases:
            parts.append(f"{aliases} {'needs' if aliases == 1 else 'need'} aliases")
        for count, one, many in (
            (len(self.policy_appeared), "new policy violation", "new policy violations"),
            (self.new_mandatory, "of them mandatory", "of them mandatory"),
            (len(self.policy_resolved), "policy violation resolved", "policy violations resolved"),
            (len(self.outputs), "output changed", "outputs changed"),
            (len(self.config), "config value changed", "config values changed"),
        ):
            if count:
                parts.append(f"{count} {one if count == 1 else many}")
        return ", ".join(parts) or "no changes"


def empty_plan(stack: str) -> dict[str, Any]:
    """The plan of a stack that does not exist on one side: nothing in it."""
    return {"stack": stack, "config": {}, "resources": [], "outputs": {}}


def compare(base: dict[str, Any], head: dict[str, Any], stack: str | None = None) -> StackDiff:
    diff = StackDiff(stack or head.get("stack") or base.get("stack") or "?")
    diff.config = paths.changes(base.get("config", {}), head.get("config", {}))
    diff.outputs = paths.changes(base.get("outputs", {}), head.get("outputs", {}))
    diff.resources = _resources(base.get("resources", []), head.get("resources", []))
    _policy(diff, base.get("policy"), head.get("policy"))
    return diff


def _resources(base: list[dict[str, Any]], head: list[dict[str, Any]]) -> list[ResourceChange]:
    old = {r["urn"]: r for r in base}
    new = {r["urn"]: r for r in head}
    pairs = [("same", old[u], new[u]) for u in sorted(set(old) & set(new))]
    removed = {u: old[u] for u in sorted(set(old) - set(new))}
    added = {u: new[u] for u in sorted(set(new) - set(old))}
    counterpart = {u: u for u in set(old) & set(new)}
    for new_urn, old_urn in _moves(removed, added):
        pairs.append(("moved", removed.pop(old_urn), added.pop(new_urn)))
        counterpart[new_urn] = old_urn
    for new_urn in sorted(added, key=lambda u: (_depth(u, new), u)):
        match = _rename_candidate(added[new_urn], removed, counterpart)
        if match is not None:
            pairs.append(("replaced", removed.pop(match), added.pop(new_urn)))
            counterpart[new_urn] = match
    renamed = {o: n for n, o in counterpart.items() if o != n}
    found = [c for c in (_pair(kind, a, b, renamed) for kind, a, b in pairs) if c is not None]
    found += [_alone("added", r) for r in added.values()]
    found += [_alone("removed", r) for r in removed.values()]
    return sorted(found, key=lambda c: (c.urn, c.kind))


def _pair(
    kind: str, old: dict[str, Any], new: dict[str, Any], renamed: dict[str, str]
) -> ResourceChange | None:
    if kind != "same":
        return _paired(kind, old, new, renamed)
    inputs = paths.changes(old.get("inputs", {}), new.get("inputs", {}))
    options = _option_changes(old, new, renamed)
    if not inputs and not options:
        return None
    change = ResourceChange(
        "changed", new["urn"], new["type"], new["name"], inputs=inputs, options=options
    )
    _assess(change, new)
    if change.replace_reasons:
        change.kind = "replaced"
    return change


def _option_changes(
    old: dict[str, Any], new: dict[str, Any], renamed: dict[str, str]
) -> list[ValueChange]:
    """Option differences, reading URNs of moved or renamed resources as their new URNs, so a
    dependency that was only renamed is not reported again on every dependent."""

    def translated(value: Any) -> Any:
        if isinstance(value, list):
            return sorted(renamed.get(v, v) if isinstance(v, str) else v for v in value)
        return renamed.get(value, value) if isinstance(value, str) else value

    a, b = old.get("options", {}), new.get("options", {})
    found = []
    for key in _OPTION_KEYS:
        before, after = a.get(key, MISSING), b.get(key, MISSING)
        if isinstance(before, list) and isinstance(after, list):
            gone = set(translated(before)) - set(after)
            came = set(after) - set(translated(before))
            found += [ValueChange(key, v, MISSING) for v in sorted(gone)]
            found += [ValueChange(key, MISSING, v) for v in sorted(came)]
        elif translated(before) != after:
            found.append(ValueChange(key, before, after))
    return found


def _assess(change: ResourceChange, new: dict[str, Any]) -> None:
    own = new.get("options", {}).get("replaceOnChanges", [])
    change.replace_reasons = replacements.replace_reasons(
        change.type, [c.path for c in change.inputs], own
    )
    notes: list[str] = []
    for c in change.inputs:
        for note in replacements.callouts(change.type, c.pattern):
            notes.append(f"{c.path}: {note}")
    for c in change.options:
        if c.path == "protect" and c.new is False:
            notes.append("protect removed: the resource can now be deleted by an update")
        if c.path == "retainOnDelete" and c.new is False:
            notes.append("retainOnDelete removed: deleting it from code deletes it in AWS")
    if change.replace_reasons:
        how = (
            "deleted after"
            if not new.get("options", {}).get("deleteBeforeReplace")
            else "deleted before"
        )
        notes.append(f"replacement: a new resource is created and the old one {how} it")
        if new.get("options", {}).get("protect"):
            notes.append("the resource is protected: the replacement will fail until unprotected")
    change.notes = list(dict.fromkeys(change.notes + notes))


def _moves(removed: dict[str, Any], added: dict[str, Any]) -> list[tuple[str, str]]:
    """Same type and name, new URN: unique on both sides, or it is not the same resource."""

    def index(side: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
        keyed: dict[tuple[str, str], list[str]] = {}
        for urn, res in side.items():
            keyed.setdefault((res["type"], res["name"]), []).append(urn)
        return keyed

    old, new = index(removed), index(added)
    return [
        (new[key][0], old[key][0])
        for key in sorted(set(old) & set(new))
        if len(old[key]) == 1 and len(new[key]) == 1
    ]


def _depth(urn: str, resources: dict[str, Any]) -> int:
    depth, parent = 0, resources[urn].get("parent")
    while parent in resources:
        depth, parent = depth + 1, resources[parent].get("parent")
    return depth


def _rename_candidate(
    new: dict[str, Any], removed: dict[str, Any], counterpart: dict[str, str]
) -> str | None:
    parent = counterpart.get(new.get("parent"), new.get("parent")) if new.get("parent") else None
    best: tuple[float, float, str] | None = None
    for urn, old in removed.items():
        if old["type"] != new["type"] or old.get("parent") != parent:
            continue
        score = similarity(old, new)
        if score < RENAME_SIMILARITY:
            continue
        ratio = difflib.SequenceMatcher(None, old["name"], new["name"]).ratio()
        if best is None or (score, ratio) > best[:2]:
            best = (score, ratio, urn)
    return best[2] if best else None


def similarity(old: dict[str, Any], new: dict[str, Any]) -> float:
    """Agreeing input leaves over all leaves, reading the old logical name as the new one.

    Physical names derive from logical names (`mlops-prod-raw` → `mlops-prod-raw-1234…`), so a
    renamed child differs exactly where its name appears; substituting the name removes that.
    """
    substitutions = [(old["name"], new["name"]), _stems(old["name"], new["name"])]

    def normalized(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        for before, after in substitutions:
            if len(before) >= 3:
                value = value.replace(before, after)
        return value

    a = {k: normalized(v) for k, v in paths.leaves(old.get("inputs", {})).items()}
    b = paths.leaves(new.get("inputs", {}))
    keys = set(a) | set(b)
    if not keys:
        return 1.0
    return sum(1 for k in keys if k in a and k in b and a[k] == b[k]) / len(keys)


def _stems(old: str, new: str) -> tuple[str, str]:
    """The names without their common `-suffix`: `x-raw-key-alias` → `x-raw`, because inputs
    spell a name's tail differently (`alias/x-raw-key`) while its stem stays the same."""
    size = 0
    while size < min(len(old), len(new)) and old[-1 - size] == new[-1 - size]:
        size += 1
    suffix = old[len(old) - size :]
    suffix = suffix[suffix.index("-") :] if "-" in suffix else ""
    if not suffix:
        return old, new
    return old[: -len(suffix)], new[: -len(suffix)]


def _aliased(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether the new resource's aliases cover the old identity (a URN or an alias spec)."""
    for alias in new.get("options", {}).get("aliases", []):
        if alias == old["urn"]:
            return True
        if "=" in alias and not alias.startswith("urn:"):
            spec = dict(part.split("=", 1) for part in alias.split(",") if "=" in part)
            name_ok = spec.get("name", new["name"]) == old["name"]
            parent_ok = spec.get("parentUrn", new.get("parent") or "") == (old.get("parent") or "")
            if name_ok and parent_ok:
                return True
    return False


def _paired(
    kind: str, old: dict[str, Any], new: dict[str, Any], renamed: dict[str, str]
) -> ResourceChange:
    change = ResourceChange(
        kind,
        new["urn"],
        new["type"],
        new["name"],
        old_urn=old["urn"],
        inputs=paths.changes(old.get("inputs", {}), new.get("inputs", {})),
        options=[c for c in _option_changes(old, new, renamed) if c.path != "aliases"],
    )
    _assess(change, new)
    if _aliased(old, new):
        change.kind = "moved" if not change.replace_reasons else "replaced"
        change.notes.insert(0, f"aliased to {old['urn']}: the engine keeps the same resource")
        return change
    change.needs_aliases = True
    what = (
        "re-parented or its parent renamed" if kind == "moved" else f"renamed from '{old['name']}'"
    )
    same_parent = old.get("parent") == new.get("parent")
    alias = f'name="{old["name"]}"' if same_parent else f'urn="{old["urn"]}"'
    change.notes.insert(
        0,
        f"{what}: without `aliases` the engine deletes the old resource and creates a new one; "
        f"keep it with `aliases=[pulumi.Alias({alias})]` in its ResourceOptions",
    )
    change.kind = "replaced" if kind == "replaced" else "moved"
    return change


def _alone(kind: str, res: dict[str, Any]) -> ResourceChange:
    change = ResourceChange(kind, res["urn"], res["type"], res["name"])
    options = res.get("options", {})
    if kind == "removed" and options.get("protect"):
        change.notes.append("protected: the update fails until `protect` is removed first")
    if kind == "removed" and options.get("retainOnDelete"):
        change.notes.append("retainOnDelete: removed from the stack but kept in AWS")
    if kind == "added":
        change.inputs = paths.changes({}, res.get("inputs", {}))
    return change


def _policy(diff: StackDiff, base: dict[str, Any] | None, head: dict[str, Any] | None) -> None:
    def keyed(policy: dict[str, Any] | None) -> dict[tuple[str, str], dict[str, Any]]:
        return {
            (v.get("policyName", ""), v.get("urn") or ""): v
            for v in (policy or {}).get("violations", [])
        }

    old, new = keyed(base), keyed(head)
    diff.policy_appeared = [new[k] for k in sorted(set(new) - set(old))]
    diff.policy_resolved = [old[k] for k in sorted(set(old) - set(new))]
    if head is not None and base is None and new:
        diff.notes.append("the base plan has no policy verdicts: every current violation is new")
