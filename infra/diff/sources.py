"""Plans of both sides of a pull request, each made by that side's own code.

The base is checked out with `git worktree add` into a temporary folder and planned by
`python -m infra.plan.run` with the worktree as working directory and as `PYTHONPATH`, so the
base's `infra` package is imported, not the working tree's (the kit is installed editable,
and its path finder comes after `PYTHONPATH`). Comparing the base's config under the working
tree's code would hide every code change. The working tree is planned the same way from its
repository root, so both sides run in identical conditions.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from infra.plan.config import ConfigFileError, load_project
from infra.plan.runner import PlanResult, plan_stack

PLAN_WORKERS = 2


class SourceError(Exception):
    """The base cannot be checked out or the project cannot be found."""


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SourceError(f"git {' '.join(args)}: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout.strip()


def repo_root(path: Path) -> Path:
    try:
        return Path(_git(path, "rev-parse", "--show-toplevel")).resolve()
    except SourceError as exc:
        raise SourceError(f"{path} is not inside a git repository: --base needs one") from exc


@contextmanager
def worktree_at(repo: Path, ref: str) -> Iterator[Path]:
    """A detached checkout of `ref`, removed afterwards even if planning fails."""
    try:
        commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except SourceError:
        commit = ""
    if not commit:
        raise SourceError(f"unknown git ref '{ref}' (fetch it first, e.g. `git fetch origin`)")
    holder = Path(tempfile.mkdtemp(prefix="mlops-kit-base-"))
    tree = holder / "tree"
    try:
        _git(repo, "worktree", "add", "--detach", "--quiet", str(tree), commit)
        yield tree
    finally:
        subprocess.run(
            ["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(holder, ignore_errors=True)
        subprocess.run(
            ["git", "-C", str(repo), "worktree", "prune"], capture_output=True, check=False
        )


def stacks_in(project_dir: Path) -> list[str]:
    """The project's stacks, or none when this side has no project yet."""
    try:
        return load_project(project_dir).stacks()
    except ConfigFileError:
        return []


def plan_sides(
    jobs: list[tuple[str, Path, Path, str]], out_dir: Path
) -> dict[tuple[str, str], PlanResult]:
    """Plan `(side, code_root, project_dir, stack)` jobs, two processes at a time."""

    def one(job: tuple[str, Path, Path, str]) -> PlanResult:
        side, code_root, project_dir, stack = job
        target = out_dir / side
        target.mkdir(parents=True, exist_ok=True)
        return plan_stack(project_dir, stack, target / f"{stack}.json", code_root=code_root)

    with ThreadPoolExecutor(max_workers=PLAN_WORKERS) as pool:
        results = list(pool.map(one, jobs))
    return {(job[0], job[3]): result for job, result in zip(jobs, results, strict=True)}
