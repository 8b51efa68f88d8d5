"""How long an offline plan takes, per stack and in total (`python benchmarks/plan.py`).

Each plan runs in its own interpreter, as `mlops-kit plan` runs it, so the figures include
imports (pulumi_aws, the sagemaker SDK for the pipeline definitions) and policy evaluation.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("dev", "staging", "prod")
REPEATS = 3


def _plan(stack: str, out: Path, *extra: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "infra.plan.run",
            "--project-dir",
            str(ROOT),
            "--stack",
            stack,
            "--out",
            str(out),
            *extra,
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'stack':<8} {'with policy (s)':>16} {'without (s)':>12} {'resources':>10}")
        for stack in STACKS:
            out = Path(tmp) / f"{stack}.json"
            with_policy = [_plan(stack, out) for _ in range(REPEATS)]
            without = [_plan(stack, out, "--no-policy") for _ in range(REPEATS)]
            resources = out.read_text().count('"urn": ')
            print(
                f"{stack:<8} {statistics.median(with_policy):>16.2f} "
                f"{statistics.median(without):>12.2f} {resources:>10}"
            )
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "infra.cli", "plan", "--all", "-q"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        print(f"mlops-kit plan --all (two stacks at a time): {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
