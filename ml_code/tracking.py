"""MLflow experiment tracking for training runs, lazy and skippable.

Where runs go, first match wins:

* ``MLFLOW_TRACKING_URI`` if set (any MLflow URI);
* ``MLFLOW_TRACKING_ARN``: the ARN of a SageMaker managed MLflow tracking server. MLflow
  resolves ``arn:aws:sagemaker:...`` URIs through the ``sagemaker-mlflow`` plugin, which the
  SageMaker training image must have installed (``pip install sagemaker-mlflow``);
* otherwise a local SQLite store ``<output dir>/mlflow.db`` with artifacts in
  ``<output dir>/mlartifacts``, so nothing lands in the working directory.

Tracking is off when ``--no-tracking`` is passed or ``MLOPS_TRACKING`` is ``off``/``0``/``false``.
MLflow is imported only when a run is logged, so untracked scripts stay fast.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
DEFAULT_EXPERIMENT = "retail-recommender"
_OFF = {"0", "off", "false", "no"}


def tracking_enabled(disabled_flag: bool = False) -> bool:
    """False when the caller passed ``--no-tracking`` or ``MLOPS_TRACKING`` turns it off."""
    return not disabled_flag and os.environ.get("MLOPS_TRACKING", "on").lower() not in _OFF


def resolve_tracking_uri(output_dir: str | Path) -> str:
    """The tracking URI to use (see the module docstring for the order)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    arn = os.environ.get("MLFLOW_TRACKING_ARN")
    if arn:
        if importlib.util.find_spec("sagemaker_mlflow") is None:
            raise RuntimeError(
                f"MLFLOW_TRACKING_ARN={arn} needs the sagemaker-mlflow plugin; install it in the "
                "training image or pass --no-tracking"
            )
        return arn
    directory = Path(output_dir).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'mlflow.db'}"


def _experiment_id(mlflow: Any, tracking_uri: str, output_dir: Path) -> str:
    name = os.environ.get(EXPERIMENT_ENV, DEFAULT_EXPERIMENT)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if tracking_uri.startswith("sqlite:"):
        location = (output_dir.resolve() / "mlartifacts").as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


def log_training_run(
    *,
    output_dir: str | Path,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    tags: Mapping[str, Any],
    model_dir: str | Path,
) -> dict[str, str]:
    """Log one training run (params, metrics, lineage tags, the model directory as the
    ``model`` artifact) and return ``{"run_id", "tracking_uri", "experiment_id"}``."""
    import mlflow

    output_dir = Path(output_dir)
    uri = resolve_tracking_uri(output_dir)
    mlflow.set_tracking_uri(uri)
    experiment_id = _experiment_id(mlflow, uri, output_dir)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params(dict(params))
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.set_tags({k: "" if v is None else str(v) for k, v in tags.items()})
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
    return {"run_id": run.info.run_id, "tracking_uri": uri, "experiment_id": experiment_id}


def log_evaluation(
    run: Mapping[str, str], report_path: str | Path, flat_metrics: Mapping[str, float]
) -> None:
    """Attach an evaluation report and its headline metrics to an existing training run."""
    import mlflow

    mlflow.set_tracking_uri(run["tracking_uri"])
    client = mlflow.MlflowClient()
    for name, value in flat_metrics.items():
        client.log_metric(run["run_id"], name, float(value))
    client.log_artifact(run["run_id"], str(report_path), artifact_path="evaluation")
    client.set_tag(run["run_id"], "evaluation", json.dumps(dict(flat_metrics), sort_keys=True))
