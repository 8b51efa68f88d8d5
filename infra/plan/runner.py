"""Plan stacks each in its own interpreter and read their plan files back."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.plan import document


@dataclass
class PlanResult:
    stack: str
    ok: bool
    doc: dict[str, Any] | None
    error: str


def plan_stack(
    project_dir: Path,
    stack: str,
    out: Path | None = None,
    extra: list[str] | None = None,
    code_root: Path | None = None,
) -> PlanResult:
    """`extra`: more `infra.plan.run` arguments (`--policy-config F`, `--no-policy`).
    `code_root`: plan with the kit's code from that checkout (a git worktree of another ref)
    instead of the installed one."""
    env = {**os.environ, "PYTHONPATH": str(code_root)} if code_root else None
    with tempfile.TemporaryDirectory() as tmp:
        target = out or Path(tmp) / f"{stack}.json"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "infra.plan.run",
                "--project-dir",
                str(project_dir),
                "--stack",
                stack,
                "--out",
                str(target),
                *(extra or []),
            ],
            cwd=code_root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not target.exists():
            return PlanResult(stack, False, None, (proc.stderr or proc.stdout).strip())
        return PlanResult(stack, True, document.read(target), proc.stderr.strip())


def plan_stacks(
    project_dir: Path,
    stacks: list[str],
    out_dir: Path | None = None,
    extra: list[str] | None = None,
) -> list[PlanResult]:
    """Plans run two at a time: each is its own process, so they share nothing."""

    def one(stack: str) -> PlanResult:
        out = out_dir / f"{stack}.json" if out_dir else None
        return plan_stack(project_dir, stack, out, extra)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(one, stacks))
