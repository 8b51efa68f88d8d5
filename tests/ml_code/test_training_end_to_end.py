"""The stages chained as scripts, the way SageMaker jobs run them: generate, validate, build
features, train, evaluate, with container-style paths and environment."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ml_code import tracking

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result


def test_generate_validate_build_train_evaluate_as_scripts(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SM_"))}
    env.update({"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
    processing = tmp_path / "opt" / "ml" / "processing"
    raw, accepted = processing / "input" / "raw", processing / "output" / "accepted"
    features = processing / "output" / "features"

    # Run from an unrelated directory, by file path and by module, as the containers do.
    _run(
        [
            str(ROOT / "ml_code/data/generate.py"),
            "--output",
            str(raw),
            "--customers",
            "800",
            "--items",
            "120",
            "--days",
            "45",
            "--start-date",
            "2026-01-05",
        ],
        env,
        tmp_path,
    )
    _run(
        [
            "-m",
            "ml_code.data.validate",
            "--input",
            str(raw),
            "--output",
            str(accepted),
            "--report",
            str(processing / "output" / "report"),
            "--as-of",
            "2026-02-19",
        ],
        env,
        tmp_path,
    )
    _run(
        [
            str(ROOT / "ml_code/features/build.py"),
            "--input",
            str(accepted),
            "--output",
            str(features),
        ],
        env,
        tmp_path,
    )

    model_dir, output_dir = tmp_path / "opt/ml/model", tmp_path / "opt/ml/output/data"
    train_env = env | {
        "SM_CHANNEL_TRAIN": str(features / "train"),
        "SM_CHANNEL_VALIDATION": str(features / "validation"),
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DATA_DIR": str(output_dir),
    }
    _run(
        [str(ROOT / "ml_code/training/train.py"), "--max-iter", "40", "--seed", "5"],
        train_env,
        tmp_path,
    )
    assert {p.name for p in model_dir.iterdir()} >= {
        "model.joblib",
        "metadata.json",
        "baseline.json",
    }
    subprocess.run(
        ["tar", "czf", str(tmp_path / "model.tar.gz"), "-C", str(model_dir), "."], check=True
    )
    evaluation_dir = processing / "evaluation"
    _run(
        [
            "-m",
            "ml_code.training.evaluate",
            "--model",
            str(tmp_path / "model.tar.gz"),
            "--test",
            str(features / "test"),
            "--output",
            str(evaluation_dir),
        ],
        env,
        tmp_path,
    )

    report = json.loads((evaluation_dir / "evaluation.json").read_text())
    assert (
        report["ranking_metrics"]["ndcg_at_10"]["value"]
        > report["baseline"]["ndcg_at_10"]["value"] + 0.05
    )
    assert not list(tmp_path.glob("mlruns")) and not (ROOT / "mlruns").exists()
    run = json.loads((model_dir / "metadata.json").read_text())["mlflow"]
    with sqlite3.connect(output_dir / "mlflow.db") as db:
        params = dict(
            db.execute("SELECT key, value FROM params WHERE run_uuid = ?", (run["run_id"],))
        )
        metrics = {
            k for (k,) in db.execute("SELECT key FROM metrics WHERE run_uuid = ?", (run["run_id"],))
        }
    assert params["seed"] == "5" and params["max_iter"] == "40"
    assert {"validation_auc", "test_ndcg_at_10", "baseline_ndcg_at_10"} <= metrics
    assert (output_dir / "mlartifacts").is_dir()


def test_a_failing_validation_stops_the_chain(tmp_path: Path, small_dataset_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SM_"))}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ml_code.data.validate",
            "--input",
            str(small_dataset_dir),
            "--output",
            str(tmp_path / "accepted"),
            "--report",
            str(tmp_path / "report"),
            "--as-of",
            "2030-01-01",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "freshness" in result.stderr
    assert not (tmp_path / "accepted").exists()


def test_tracking_can_be_switched_off_and_needs_the_plugin_for_a_sagemaker_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert not tracking.tracking_enabled(disabled_flag=True)
    monkeypatch.setenv("MLOPS_TRACKING", "off")
    assert not tracking.tracking_enabled()
    monkeypatch.delenv("MLOPS_TRACKING")
    assert tracking.resolve_tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    arn = "arn:aws:sagemaker:eu-west-1:111122223333:mlflow-tracking-server/team"
    monkeypatch.setenv("MLFLOW_TRACKING_ARN", arn)
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: object())
    assert tracking.resolve_tracking_uri(tmp_path) == arn  # resolved only: nothing is contacted
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="sagemaker-mlflow"):
        tracking.resolve_tracking_uri(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "file:///elsewhere")
    assert tracking.resolve_tracking_uri(tmp_path) == "file:///elsewhere"
