"""How a plan looks in a terminal: the resource tree, counts by type, and the exports."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from infra.plan import values


def _show(value: Any) -> str:
    shown = values.redacted(value)
    if isinstance(shown, (dict, list)):
        return json.dumps(shown, sort_keys=True, default=str)
    return str(shown)


def render_plan(doc: dict[str, Any], console: Console) -> None:
    resources = doc["resources"]
    children: dict[str | None, list[dict[str, Any]]] = {}
    for res in resources:
        children.setdefault(res["parent"], []).append(res)
    tree = Tree(f"[bold]{doc['project']}-{doc['stack']}[/] (pulumi:pulumi:Stack)")

    def add(node: Tree, parent: str | None) -> None:
        for res in sorted(children.get(parent, []), key=lambda r: (r["type"], r["name"])):
            flags = " [yellow]protected[/]" if res["options"]["protect"] else ""
            style = "cyan" if res["custom"] else "magenta"
            branch = node.add(f"[{style}]{res['type']}[/] {res['name']}{flags}")
            add(branch, res["urn"])

    add(tree, None)
    console.print(tree)
    counts = Counter(r["type"] for r in resources)
    table = Table(title=f"{doc['stack']}: {len(resources)} resources")
    table.add_column("type")
    table.add_column("count", justify="right")
    for type_, count in sorted(counts.items()):
        table.add_row(type_, str(count))
    console.print(table)
    outputs = Table(title=f"{doc['stack']}: outputs")
    outputs.add_column("name")
    outputs.add_column("value", overflow="fold")
    for name, value in sorted(doc["outputs"].items()):
        outputs.add_row(escape(name), escape(_show(value)))
    console.print(outputs)
