"""The diff in a terminal: one tree per stack, risk in colour. Every value goes through
`escape`, because a plan value like `[secret]` would otherwise be read as rich markup."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from infra.diff.compare import StackDiff
from infra.diff.markdown import summary_line
from infra.diff.paths import ValueChange, describe

_STYLE = {
    "added": "green",
    "removed": "red",
    "changed": "yellow",
    "replaced": "magenta",
    "moved": "cyan",
}
_SIGN = {"added": "+", "removed": "-", "changed": "~", "replaced": "+-", "moved": "→"}
ADDED_INPUTS_SHOWN = 8


def render(diffs: list[StackDiff], console: Console) -> None:
    console.print(f"[bold]{escape(summary_line(diffs))}[/]")
    for diff in diffs:
        console.print(_tree(diff))


def _tree(diff: StackDiff) -> Tree:
    tree = Tree(f"[bold]{escape(diff.stack)}[/]: {escape(diff.summary())}")
    if diff.error:
        tree.add(f"[red]plan failed:[/] {escape(diff.error.strip()[-2000:])}")
    for note in diff.notes:
        tree.add(f"[dim]{escape(note)}[/]")
    for change in diff.resources:
        style = _STYLE[change.kind]
        label = (
            f"[{style}]{_SIGN[change.kind]} {change.kind}[/] {escape(change.type)} "
            f"[bold]{escape(change.name)}[/]"
        )
        if change.needs_aliases:
            label += " [bold red]needs aliases[/]"
        node = tree.add(label)
        if change.old_urn:
            node.add(f"was {escape(change.old_urn)}")
        if change.replace_reasons:
            node.add(
                f"[bold magenta]forces replacement:[/] {escape(', '.join(change.replace_reasons))}"
            )
        shown = change.inputs[:ADDED_INPUTS_SHOWN] if change.kind == "added" else change.inputs
        _add(node, shown)
        if len(shown) < len(change.inputs):
            node.add(f"[dim]… {len(change.inputs) - len(shown)} more inputs[/]")
        _add(node, change.options, prefix="option ")
        for note in change.notes:
            node.add(f"[dim]{escape(note)}[/]")
    for title, violations, style in (
        ("new policy violation", diff.policy_appeared, "red"),
        ("policy violation resolved", diff.policy_resolved, "green"),
    ):
        for v in violations:
            where = (v.get("urn") or "stack").rsplit("::", 1)[-1]
            tree.add(
                f"[{style}]{title}[/] {escape(str(v.get('policyName')))} "
                f"({escape(str(v.get('enforcementLevel')))}) on {escape(where)}: "
                f"{escape(str(v.get('message', '')))}"
            )
    if diff.config:
        _add(tree.add("config"), diff.config)
    if diff.outputs:
        _add(tree.add("outputs"), diff.outputs)
    return tree


def _add(node: Tree, changes: list[ValueChange], prefix: str = "") -> None:
    for change in changes:
        node.add(f"{prefix}{escape(change.path)}: {escape(describe(change))}")
