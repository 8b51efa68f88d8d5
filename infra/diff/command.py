"""`mlops-kit diff`: what a branch changes in each stack, for a reviewer.

Two inputs are accepted: a git ref (`--base origin/main`), whose stacks are planned with the
ref's own code and compared with the working tree's, or two plan files written by
`mlops-kit plan --json`. The exit code is 0 with or without changes so CI can post the report
either way; `--exit-code` makes changes exit 1, and a plan that fails exits 2.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from infra.diff import markdown, report_json, sources, terminal
from infra.diff.compare import StackDiff, compare, empty_plan
from infra.plan import document

FORMATS = ("terminal", "markdown", "json")
PROMOTION_ORDER = ("dev", "staging", "prod")
EXIT_CHANGES = 1
EXIT_ERROR = 2

_errors = Console(stderr=True, soft_wrap=True)


def diff(
    base: str | None,
    plan_a: Path | None,
    plan_b: Path | None,
    stack: list[str] | None,
    all_stacks: bool,
    fmt: str,
    project_dir: Path,
    out: Path | None,
    exit_code: bool = False,
) -> int:
    """Compare, render in `fmt` to `out` (or stdout) and return the process exit code."""
    if fmt not in FORMATS:
        return _fail(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    if (plan_a is None) != (plan_b is None):
        return _fail("pass two plan files (BASE.json HEAD.json), or --base REF")
    if plan_a is not None and plan_b is not None:
        if base:
            return _fail("pass either --base REF or two plan files, not both")
        try:
            diffs = [compare(document.read(plan_a), document.read(plan_b))]
        except (OSError, ValueError) as exc:
            return _fail(f"cannot read plan file: {exc}")
    elif base:
        if stack and all_stacks:
            return _fail("pass either --stack NAME or --all, not both")
        try:
            diffs = against_ref(base, project_dir, stack or [])
        except sources.SourceError as exc:
            return _fail(str(exc))
    else:
        return _fail("pass --base REF (e.g. --base origin/main) or two plan files")
    _write(diffs, fmt, out)
    if any(d.error for d in diffs):
        return EXIT_ERROR
    if exit_code and any(d.has_changes for d in diffs):
        return EXIT_CHANGES
    return 0


def _fail(message: str) -> int:
    _errors.print(f"[red]error:[/] {message}", markup=True, highlight=False)
    return EXIT_ERROR


def ordered(stacks: set[str]) -> list[str]:
    """Stacks in promotion order (dev, staging, prod), others after them by name."""
    known = [s for s in PROMOTION_ORDER if s in stacks]
    return known + sorted(stacks - set(known))


def against_ref(ref: str, project_dir: Path, wanted: list[str]) -> list[StackDiff]:
    """Plan the stacks at `ref` and in the working tree; every stack of either side by default."""
    project_dir = project_dir.resolve()
    root = sources.repo_root(project_dir)
    head_stacks = sources.stacks_in(project_dir)
    if not (project_dir / "Pulumi.yaml").exists():
        raise sources.SourceError(f"no Pulumi.yaml in {project_dir}: pass --project-dir")
    with sources.worktree_at(root, ref) as tree, tempfile.TemporaryDirectory() as tmp:
        base_project = tree / project_dir.relative_to(root)
        base_stacks = sources.stacks_in(base_project)
        selected = wanted or ordered(set(head_stacks) | set(base_stacks))
        jobs = [("base", tree, base_project, s) for s in selected if s in base_stacks]
        jobs += [("head", root, project_dir, s) for s in selected if s in head_stacks]
        results = sources.plan_sides(jobs, Path(tmp))
    diffs = []
    for stack in selected:
        old, new = results.get(("base", stack)), results.get(("head", stack))
        if old is None and new is None:
            diffs.append(
                StackDiff(
                    stack,
                    error=f"no stack '{stack}' at {ref} or in the working "
                    f"tree (stacks: {', '.join(head_stacks)})",
                )
            )
            continue
        failed = [(side, r) for side, r in ((ref, old), ("working tree", new)) if r and not r.ok]
        if failed:
            error = "\n".join(f"{side}: {r.error}" for side, r in failed)
            diffs.append(StackDiff(stack, error=error))
            continue
        result = compare(
            old.doc if old else empty_plan(stack), new.doc if new else empty_plan(stack), stack
        )
        if old is None:
            result.notes.append(f"new stack: it does not exist at {ref}")
        if new is None:
            result.notes.append("stack removed: its config file is gone from the working tree")
        diffs.append(result)
    return diffs


def _write(diffs: list[StackDiff], fmt: str, out: Path | None) -> None:
    if fmt == "terminal":
        if out is None:
            terminal.render(diffs, Console())
            return
        with out.open("w") as handle:
            terminal.render(diffs, Console(file=handle, width=120, color_system=None))
        return
    text = markdown.render(diffs) if fmt == "markdown" else report_json.render(diffs)
    if out is None:
        sys.stdout.write(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)


def register(app: typer.Typer) -> None:
    """Add `diff` to the given app; `infra/cli.py` calls this once."""

    @app.command("diff")
    def diff_command(
        plans: Annotated[
            list[Path] | None,
            typer.Argument(help="Two plan files to compare instead of --base: BASE HEAD."),
        ] = None,
        base: Annotated[
            str | None, typer.Option("--base", help="Git ref to compare with, e.g. origin/main.")
        ] = None,
        stack: Annotated[
            list[str] | None, typer.Option("--stack", "-s", help="Stack to compare (repeatable).")
        ] = None,
        all_stacks: Annotated[
            bool, typer.Option("--all", help="Every stack of either side (the default).")
        ] = False,
        fmt: Annotated[
            str, typer.Option("--format", "-f", help="terminal, markdown (PR comment) or json.")
        ] = "terminal",
        project_dir: Annotated[
            Path, typer.Option("--project-dir", help="Folder holding Pulumi.yaml.", file_okay=False)
        ] = Path("."),
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="Write the report here, not stdout.")
        ] = None,
        exit_code: Annotated[
            bool, typer.Option("--exit-code", help="Exit 1 when anything changed.")
        ] = False,
    ) -> None:
        """Show what a branch changes per stack: resources, inputs, options, policy, exports."""
        files = plans or []
        if len(files) not in (0, 2):
            raise typer.Exit(_fail(f"pass two plan files, got {len(files)}"))
        plan_a, plan_b = (files[0], files[1]) if files else (None, None)
        raise typer.Exit(
            diff(base, plan_a, plan_b, stack, all_stacks, fmt, project_dir, out, exit_code)
        )


def _standalone() -> typer.Typer:
    """`python -m infra.diff.command`: the same command without the rest of the CLI."""
    app = typer.Typer(add_completion=False)

    @app.callback()
    def _root() -> None:
        """mlops-kit diff."""

    register(app)
    return app


if __name__ == "__main__":
    _standalone()()
