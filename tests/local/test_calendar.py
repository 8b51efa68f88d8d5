"""A local run tells the same story whatever the real date: the calendar is simulated.

Shoppers' activity follows the weekday and validation judges freshness by a date, so a run that
read the wall clock anywhere would change with the day it is run on (it did: the suite failed
on a Friday). Each run here is `mlops-kit local run` in its own process with the wall clock
moved by freezegun before anything is imported, so moto, the jobs and the handlers all see it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FROZEN_CLI = """
import sys
import freezegun
import pyarrow.parquet, sklearn.ensemble  # C extensions first: they must see the real datetime
import infra.local.scenario
from infra.cli import app
freezegun.freeze_time(sys.argv[1], tick=True).start()
sys.argv = ["mlops-kit", *sys.argv[2:]]
app()
"""
STORY_FIELDS = (
    "date",
    "requests",
    "statuses",
    "batch",
    "dataset_version",
    "drift_max_psi",
    "ndcg_at_10",
    "serving_version",
)


def _story_on(real_date: str, run_dir: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        "-c",
        FROZEN_CLI,
        real_date,
        "local",
        "run",
        "--stack",
        "dev",
        "--days",
        "2",
        "--no-bad-batch",
        "--run-dir",
        str(run_dir),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((run_dir / "summary.json").read_text())


@pytest.fixture(scope="module")
def two_dates(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    # a Friday and a Tuesday, months apart
    return [_story_on(day, tmp_path_factory.mktemp(day)) for day in ("2026-12-04", "2027-03-02")]


def test_the_story_is_the_same_on_any_real_date(two_dates: list[dict[str, Any]]) -> None:
    friday, tuesday = two_dates
    assert friday["start_date"] == tuesday["start_date"] == "2026-01-07"
    assert [{k: d[k] for k in STORY_FIELDS} for d in friday["days"]] == [
        {k: d[k] for k in STORY_FIELDS} for d in tuesday["days"]
    ]
    first = [(m["version"], m["ndcg_at_10"], m["dataset_version"]) for m in friday["models"]]
    again = [(m["version"], m["ndcg_at_10"], m["dataset_version"]) for m in tuesday["models"]]
    assert first == again
    assert first and first[0][1] > 0.3  # the first model trained, validated and served


def test_the_first_training_run_judged_its_data_fresh_on_the_simulated_date(
    two_dates: list[dict[str, Any]],
) -> None:
    for record in two_dates:
        (initial,) = [e for e in record["executions"] if e["trigger"] == "initial"]
        assert initial["status"] == "Succeeded" and initial["steps"]["Validate"] == "Succeeded"
