"""`mlops-kit`: the kit's tooling behind one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from infra.plan.config import ConfigFileError, load_project
from infra.plan.render import render_plan
from infra.plan.runner import plan_stacks

app = typer.Typer(help="mlops-kit: plan, review and run the MLOps platform offline.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True, soft_wrap=True)

@app.callback()
def main() -> None:
    """Plan, review and run the MLOps platform offline."""


ProjectDir = Annotated[
    Path, typer.Option("--project-dir", help="Folder holding Pulumi.yaml.", file_okay=False)
]


def _stacks(project_dir: Path, stack: list[str] | None, all_stacks: bool) -> list[str]:
    try:
        project = load_project(project_dir.resolve())
    except ConfigFileError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    found = project.stacks()
    if all_stacks:
        return found
    if not stack:
        errors.print(f"[red]error:[/] pass --stack NAME or --all (stacks: {', '.join(found)})")
        raise typer.Exit(2)
    return stack


@app.command()
def plan(
    stack: Annotated[list[str] | None, typer.Option("--stack", "-s", help="Stack to plan.")] = None,
    all_stacks: Annotated[bool, typer.Option("--all", help="Plan every stack in stacks/.")] = False,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Write the plan file (with --all or several stacks: a folder)."),
    ] = None,
    project_dir: ProjectDir = Path("."),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary lines.")] = False,
) -> None:
    """Run the program offline under the Pulumi SDK's mock engine, as `pulumi preview` would."""
    stacks = _stacks(project_dir, stack, all_stacks)
    several = len(stacks) > 1 or all_stacks
    out_dir = json_out if (json_out and several) else None
    results = plan_stacks(project_dir.resolve(), stacks, out_dir)
    failed = 0
    for result in results:
        if not result.ok or result.doc is None:
            failed += 1
            errors.print(f"[red]✗ {result.stack}[/]: {result.error}")
            continue
        if json_out and not several:
            from infra.plan import document

            document.write(result.doc, json_out)
        if not quiet:
            render_plan(result.doc, console)
        console.print(f"[green]✓ {result.stack}[/]: {len(result.doc['resources'])} resources planned")
    if failed:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
