"""`mlops-kit local run`: watch the platform a stack would deploy do its job, on this machine.

What `make demo` runs. Exit codes: 0 after a run (whatever the story did: the summary says),
1 when the stack violates mandatory policies or cannot be run locally, 2 for bad options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from infra.local.defaults import MIN_HISTORY_DAYS  # annotations are read at module level

EXIT_REFUSED = 1
EXIT_USAGE = 2
SCENARIO_NAMES = ("preference-shift", "price-shock", "new-items", "none")

_console = Console(soft_wrap=True)
_errors = Console(stderr=True, soft_wrap=True)


def run(
    stack: str,
    project_dir: Path,
    days: int,
    history_days: int,
    shift_day: int,
    seed: int,
    scenario: str,
    bad_batch_day: int | None,
    run_dir: Path | None,
    requests_per_day: int,
) -> None:
    """The command's body, separate from typer's signature so it reads top to bottom."""
    from infra.local import report
    from infra.local.scenario import PolicyRefusal, ScenarioError, ScenarioSettings, run_scenario
    from infra.policy.report import render as render_policy

    if scenario not in SCENARIO_NAMES:
        _errors.print(f"[red]error:[/] --scenario {scenario!r}: choose one of {SCENARIO_NAMES}")
        raise typer.Exit(EXIT_USAGE)
    if bad_batch_day is not None and not 0 <= bad_batch_day < days:
        _errors.print(f"[red]error:[/] --bad-batch-day {bad_batch_day} is outside 0..{days - 1}")
        raise typer.Exit(EXIT_USAGE)
    settings = ScenarioSettings(
        project_dir=project_dir.resolve(),
        stack=stack,
        days=days,
        history_days=history_days,
        shift_day=shift_day,
        scenario=scenario,
        bad_batch_day=bad_batch_day,
        seed=seed,
        requests_per_day=requests_per_day,
        run_dir=run_dir.resolve() if run_dir else None,
    )
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} days"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=_console, transient=True) as progress:
        task = progress.add_task(f"planning stack {stack}", total=days)

        def log(message: str) -> None:
            progress.console.print(message, highlight=False)
            if message.startswith("day "):
                progress.advance(task)
            progress.update(task, description=message.split("|")[0].strip()[:48])

        try:
            record = run_scenario(settings, log=log)
        except PolicyRefusal as refusal:
            progress.stop()
            render_policy(refusal.report, _errors)
            _errors.print(f"[red]✗ refused:[/] {refusal}")
            raise typer.Exit(EXIT_REFUSED) from None
        except ScenarioError as error:
            progress.stop()
            _errors.print(f"[red]✗ cannot run stack {stack} locally:[/] {error}")
            raise typer.Exit(EXIT_REFUSED) from None
    report.print_summary(record, _console)
    _console.print(
        f"\nrun folder: [bold]{record.run_dir}[/] (summary.json, report.html, jobs/, endpoints/)"
    )


def register(app: typer.Typer) -> None:
    """Add the `local` group with its `run` command; `infra/cli.py` calls this once."""
    from infra.local.defaults import (
        DEFAULT_BAD_BATCH_DAY,
        DEFAULT_DAYS,
        DEFAULT_HISTORY_DAYS,
        DEFAULT_REQUESTS_PER_DAY,
        DEFAULT_SEED,
        DEFAULT_SHIFT_DAY,
    )

    local = typer.Typer(
        help="The embedded cloud: run the platform a stack would deploy on this machine.",
        no_args_is_help=True,
    )
    app.add_typer(local, name="local")

    @local.command("run")
    def run_command(
        stack: Annotated[str, typer.Option("--stack", "-s", help="Stack to run.")] = "dev",
        days: Annotated[
            int, typer.Option("--days", min=1, help="Simulated days after the first model.")
        ] = DEFAULT_DAYS,
        shift_day: Annotated[
            int,
            typer.Option("--shift-day", min=0, help="Simulated day on which customers change."),
        ] = DEFAULT_SHIFT_DAY,
        seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic shop.")] = (
            DEFAULT_SEED
        ),
        scenario: Annotated[
            str,
            typer.Option("--scenario", help="preference-shift, price-shock, new-items or none."),
        ] = "preference-shift",
        bad_batch_day: Annotated[
            int | None,
            typer.Option("--bad-batch-day", help="Simulated day whose data batch is corrupt."),
        ] = DEFAULT_BAD_BATCH_DAY,
        no_bad_batch: Annotated[
            bool, typer.Option("--no-bad-batch", help="Every daily batch is clean.")
        ] = False,
        history_days: Annotated[
            int,
            typer.Option(
                "--history-days", min=MIN_HISTORY_DAYS, help="Days of history before the run."
            ),
        ] = DEFAULT_HISTORY_DAYS,
        requests_per_day: Annotated[
            int, typer.Option("--requests-per-day", min=1, help="Ranking requests a day.")
        ] = DEFAULT_REQUESTS_PER_DAY,
        run_dir: Annotated[
            Path | None,
            typer.Option(
                "--run-dir", help="Where the run's files go (default: runs/<time>-<stack>)."
            ),
        ] = None,
        project_dir: Annotated[
            Path, typer.Option("--project-dir", help="Folder holding Pulumi.yaml.", file_okay=False)
        ] = Path("."),
    ) -> None:
        """Plan the stack offline, provision the embedded cloud from the plan, and simulate
        days of a shop: train, deploy, serve, notice that customers changed, retrain, recover."""
        run(
            stack,
            project_dir,
            days,
            history_days,
            shift_day,
            seed,
            scenario,
            None if no_bad_batch else bad_batch_day,
            run_dir,
            requests_per_day,
        )
