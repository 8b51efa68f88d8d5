"""`mlops-kit`: the kit's tooling behind one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from infra.diff.command import register as register_diff
from infra.local.command import register as register_local
from infra.plan.config import ConfigFileError, load_project
from infra.plan.render import render_plan
from infra.plan.runner import plan_stacks
from infra.policy.report import PolicyReport
from infra.policy.report import render as render_report

app = typer.Typer(
    help="mlops-kit: plan, review and run the MLOps platform offline.", no_args_is_help=True
)
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


register_diff(app)
register_local(app)


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
        typer.Option(
            "--json", help="Write the plan file (with --all or several stacks: a folder)."
        ),
    ] = None,
    project_dir: ProjectDir = Path("."),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary lines.")] = False,
    policy_config: Annotated[
        Path | None,
        typer.Option(
            "--policy-config", help="The file `pulumi preview --policy-pack-config` takes."
        ),
    ] = None,
    policy_pack: Annotated[
        Path | None, typer.Option("--policy-pack", help="Policy pack folder (default: policies/).")
    ] = None,
    resolved: Annotated[
        bool,
        typer.Option(
            "--resolved",
            help="Plan as after an update (placeholder ids and ARNs), e.g. to stand in for a "
            "deployed stack that another project reads through a StackReference.",
        ),
    ] = False,
    stack_reference: Annotated[
        list[str] | None,
        typer.Option(
            "--stack-reference",
            help="NAME=PLAN.json: answer StackReference(NAME) with that plan file's outputs.",
        ),
    ] = None,
) -> None:
    """Run the program offline under the Pulumi SDK's mock engine, as `pulumi preview` would,
    and evaluate the policy pack on it. A mandatory violation makes the command fail."""
    stacks = _stacks(project_dir, stack, all_stacks)
    several = len(stacks) > 1 or all_stacks
    out_dir = json_out if (json_out and several) else None
    extra = []
    if policy_config:
        extra += ["--policy-config", str(policy_config.resolve())]
    if policy_pack:
        extra += ["--policy-pack", str(policy_pack.resolve())]
    if resolved:
        extra.append("--resolved")
    for reference in stack_reference or []:
        name, _, path = reference.partition("=")
        extra += ["--stack-reference", f"{name}={Path(path).resolve()}"]
    results = plan_stacks(project_dir.resolve(), stacks, out_dir, extra)
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
        summary = f"{len(result.doc['resources'])} resources planned"
        policy = result.doc.get("policy")
        if policy is not None:
            report = PolicyReport.from_json(policy)
            if report.violations and (not quiet or report.mandatory_count):
                render_report(report, console)
            summary += (
                f", policy {report.pack}: {report.mandatory_count} mandatory, "
                f"{report.advisory_count} advisory"
            )
            if report.mandatory_count:
                failed += 1
                errors.print(f"[red]✗ {result.stack}[/]: {summary}")
                continue
        console.print(f"[green]✓ {result.stack}[/]: {summary}")
    if failed:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
