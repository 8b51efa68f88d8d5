"""The diff as a pull-request comment: one summary line, then a collapsible section per stack.

Every value is put in a code span, so `<computed>` or a value holding HTML cannot break the
comment, and the comment stays under GitHub's 65,536-character limit by dropping the inputs of
added resources first (they are in the plan, and `pulumi preview` shows them in full).
"""

from __future__ import annotations

from typing import Any

from infra.diff.compare import ResourceChange, StackDiff
from infra.diff.paths import ValueChange, describe

GITHUB_COMMENT_LIMIT = 65_000
ADDED_INPUTS_SHOWN = 8
_ICON = {"added": "🟢", "removed": "🔴", "changed": "🟡", "replaced": "♻️", "moved": "🔀"}


def summary_line(diffs: list[StackDiff]) -> str:
    return " · ".join(f"{d.stack}: {d.summary()}" for d in diffs) or "no stacks"


def code(text: str) -> str:
    """A code span that survives backticks in the text."""
    text = text.replace("\n", " ")
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def render(diffs: list[StackDiff], title: str = "Plan diff") -> str:
    full = _render(diffs, title, ADDED_INPUTS_SHOWN)
    if len(full) <= GITHUB_COMMENT_LIMIT:
        return full
    short = _render(diffs, title, 0)
    if len(short) <= GITHUB_COMMENT_LIMIT:
        return short
    note = "\n\n_Truncated: run `mlops-kit diff` locally for the full report._\n"
    return short[: GITHUB_COMMENT_LIMIT - len(note)] + note


def _render(diffs: list[StackDiff], title: str, added_inputs: int) -> str:
    lines = [summary_line(diffs), "", f"### {title}", ""]
    for diff in diffs:
        lines += _stack(diff, added_inputs)
    return "\n".join(lines).rstrip() + "\n"


def _stack(diff: StackDiff, added_inputs: int) -> list[str]:
    risky = (
        diff.error
        or diff.policy_appeared
        or any(r.kind in ("replaced", "moved", "removed") for r in diff.resources)
    )
    opening = "<details open>" if risky else "<details>"
    lines = [f"{opening}<summary><b>{diff.stack}</b>: {diff.summary()}</summary>", ""]
    if diff.error:
        lines += ["**The plan failed:**", "", "```", diff.error.strip()[-3000:], "```", ""]
    lines += [f"> {note}" for note in diff.notes]
    if diff.notes:
        lines.append("")
    if diff.resources:
        lines += ["#### Resources", ""]
        for change in diff.resources:
            lines += _resource(change, added_inputs)
        lines.append("")
    lines += _policy(diff)
    lines += _values("Config", diff.config)
    lines += _values("Stack outputs", diff.outputs)
    if not diff.has_changes and not diff.error:
        lines += ["No changes.", ""]
    lines += ["</details>", ""]
    return lines


def _resource(change: ResourceChange, added_inputs: int) -> list[str]:
    head = f"- {_ICON[change.kind]} **{change.kind}** {code(change.type)} {code(change.name)}"
    if change.needs_aliases:
        head += " ⚠️ **needs `aliases`**"
    lines = [head]
    if change.old_urn:
        lines.append(f"  - was {code(change.old_urn)}")
    if change.replace_reasons:
        reasons = ", ".join(code(p) for p in change.replace_reasons)
        lines.append(f"  - ⚠️ **forces replacement:** {reasons}")
    inputs = change.inputs
    if change.kind == "added":
        inputs = inputs[:added_inputs]
    lines += [f"  - {code(c.path)}: {code(describe(c))}" for c in inputs]
    if len(inputs) < len(change.inputs):
        lines.append(f"  - … {len(change.inputs) - len(inputs)} more inputs")
    lines += [f"  - option {code(c.path)}: {code(describe(c))}" for c in change.options]
    lines += [f"  - ℹ️ {note}" for note in change.notes]
    return lines


def _violation(v: dict[str, Any]) -> str:
    where = v.get("urn") or "stack"
    return (
        f"- **{v.get('policyName', '?')}** ({v.get('enforcementLevel', '?')}) on "
        f"{code(where.rsplit('::', 1)[-1])}: {v.get('message', '')}"
    )


def _policy(diff: StackDiff) -> list[str]:
    lines: list[str] = []
    if diff.policy_appeared:
        lines += ["#### New policy violations", ""]
        lines += [_violation(v) for v in diff.policy_appeared] + [""]
    if diff.policy_resolved:
        lines += ["#### Policy violations resolved", ""]
        lines += [_violation(v) for v in diff.policy_resolved] + [""]
    return lines


def _values(title: str, changes: list[ValueChange]) -> list[str]:
    if not changes:
        return []
    return [f"#### {title}", "", *(f"- {code(c.path)}: {code(describe(c))}" for c in changes), ""]
