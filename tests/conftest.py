"""Shared fixtures: the repository root and stack plans made once per session."""

from __future__ import annotations

import os

# The workers share the cores: OpenMP pools spinning for each other's cores made a 3 s
# scikit-learn fit take 30 s when two ran at once.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import json  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

from infra.plan.runner import plan_stacks  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("dev", "staging", "prod")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def stack_plans() -> dict[str, dict[str, Any]]:
    """Preview plans of the three real stacks, each made in its own process."""
    results = plan_stacks(ROOT, list(STACKS))
    failed = {r.stack: r.error for r in results if not r.ok}
    assert not failed, json.dumps(failed, indent=2)
    return {r.stack: r.doc for r in results}
