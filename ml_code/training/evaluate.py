"""Evaluate a trained model on the time-based test split against a popularity baseline.

Runs as a SageMaker processing job: the model arrives as ``model.tar.gz`` (a model directory is
accepted too), the test split as Parquet from ``ml_code.features.build``. Writes
``OUTPUT/evaluation.json`` in the SageMaker model-metrics shape, read by the pipeline's
condition step (``JsonGet``) and attached to the model package. JSON paths:

* ``binary_classification_metrics.auc.value`` (``.standard_deviation``: Hanley-McNeil error)
* ``ranking_metrics.ndcg_at_10.value``, ``ranking_metrics.precision_at_10.value``,
  ``ranking_metrics.recall_at_10.value`` (``.standard_deviation``: standard error of the mean
  over customers; ``.customer_standard_deviation``: standard deviation of the per-customer
  values; ``.count``: customers averaged over). Monitoring judges live quality against the
  serving model's NDCG@10 and its spread, so both travel with the model (the training
  pipeline publishes this file next to the baseline)
* ``baseline.ndcg_at_10.value``, ``baseline.precision_at_10.value``,
  ``baseline.recall_at_10.value``, ``baseline.auc.value``: the same metrics when candidates are
  ranked by item popularity (purchases in the last 28 days)
* ``improvement.ndcg_at_10.value``: model minus baseline NDCG@10
* ``evaluation.rows``, ``evaluation.customers``, ``evaluation.positives``, ``evaluation.k``
* ``champion.ndcg_at_10.value``: the serving champion (``--champion``) on the same test rows
  (with the same ``standard_deviation``, ``customer_standard_deviation`` and ``count``);
  0 with ``champion.present`` false when there is none yet

Ranking metrics cover each customer's candidate list (what the endpoint ranks), averaged over
customers who bought at least one candidate within the label horizon.

Script::

    python -m ml_code.training.evaluate --model /opt/ml/processing/model \
        --test /opt/ml/processing/test --output /opt/ml/processing/evaluation [--no-tracking]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a file, as SageMaker does
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import tarfile  # noqa: E402
import tempfile  # noqa: E402
from typing import Any  # noqa: E402

import joblib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

from ml_code import tracking  # noqa: E402
from ml_code.features.build import ranked_lists, read_split  # noqa: E402
from ml_code.features.definitions import (  # noqa: E402
    EVENT_TIME_COLUMN,
    LABEL_COLUMN,
    LABEL_HORIZON_DAYS,
)
from ml_code.training.metrics import per_customer_metrics  # noqa: E402
from ml_code.training.train import METADATA_FILE, MODEL_FILE, predict_scores  # noqa: E402

EVALUATION_FILE = "evaluation.json"
BASELINE_SCORE = "popularity_28d"


def _find_model_dir(path: Path) -> Path:
    matches = sorted(p.parent for p in path.rglob(MODEL_FILE))
    if not matches:
        raise FileNotFoundError(f"no {MODEL_FILE} under {path}")
    return matches[0]


def load_model(path: str | Path) -> tuple[Pipeline, dict[str, Any]]:
    """The estimator and metadata from a model directory, a ``model.tar.gz`` or a directory
    holding one (as a processing input does)."""
    path = Path(path)
    archives = [path] if path.is_file() else sorted(path.glob("*.tar.gz"))
    if archives and not (path.is_dir() and (path / MODEL_FILE).exists()):
        with tempfile.TemporaryDirectory() as tmp, tarfile.open(archives[0]) as tar:
            tar.extractall(tmp, filter="data")
            return load_model(_find_model_dir(Path(tmp)))
    model_dir = _find_model_dir(path)
    metadata_path = model_dir / METADATA_FILE
    metadata = json.loads(metadata_path.read_text()) if metadata_path.exists() else {}
    return joblib.load(model_dir / MODEL_FILE), metadata


def auc_with_error(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """ROC AUC and its Hanley-McNeil (1982) standard error."""
    positives = int(labels.sum())
    negatives = int(len(labels) - positives)
    if positives == 0 or negatives == 0:
        return {"value": float("nan"), "standard_deviation": float("nan")}
    auc = float(roc_auc_score(labels, scores))
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    ) / (positives * negatives)
    return {"value": auc, "standard_deviation": math.sqrt(max(variance, 0.0))}


def _ranking(customers: pd.Series, scores: np.ndarray, labels: np.ndarray, k: int) -> dict:
    table = per_customer_metrics(customers, scores, labels, k)
    n = max(len(table), 1)
    return {
        name: {
            "value": float(table[name].mean()),
            "standard_deviation": float(table[name].std(ddof=1) / math.sqrt(n)),
            "customer_standard_deviation": float(table[name].std(ddof=1)),
            "count": int(len(table)),
        }
        for name in table.columns
    }


def evaluate(model: Pipeline, test: pd.DataFrame, k: int = 10) -> dict[str, Any]:
    """The evaluation report (see the module docstring for its JSON paths)."""
    labels = test[LABEL_COLUMN].to_numpy()
    scores = predict_scores(model, test)
    popularity = test[BASELINE_SCORE].to_numpy(dtype="float64")
    lists = ranked_lists(test)
    ranking = _ranking(lists, scores, labels, k)
    baseline = _ranking(lists, popularity, labels, k)
    baseline["auc"] = auc_with_error(labels, popularity)
    ndcg = f"ndcg_at_{k}"
    return {
        "binary_classification_metrics": {"auc": auc_with_error(labels, scores)},
        "ranking_metrics": ranking,
        "baseline": {"name": "popularity", "score": BASELINE_SCORE, **baseline},
        "improvement": {ndcg: {"value": ranking[ndcg]["value"] - baseline[ndcg]["value"]}},
        "evaluation": {
            "rows": int(len(test)),
            "customers": int(test["customer_id"].nunique()),
            "customers_with_purchase": int(test.loc[labels > 0, "customer_id"].nunique()),
            "positives": int(labels.sum()),
            "k": k,
            "labels_through": labels_through(test),
        },
    }


def labels_through(test: pd.DataFrame) -> str | None:
    """The last day whose purchases the test labels hold (its cut-off plus the label horizon):
    a model trained on this data knows nothing of customers after that day."""
    if test.empty:
        return None
    cutoff = pd.to_datetime(test[EVENT_TIME_COLUMN]).max()
    return (cutoff + pd.Timedelta(days=LABEL_HORIZON_DAYS - 1)).date().isoformat()


def champion_report(champion: str | Path | None, test: pd.DataFrame, k: int = 10) -> dict[str, Any]:
    """The serving champion scored on the same test rows as the new model, so the gate compares
    like with like. No champion yet (no model under `champion`) scores 0: the first model only
    has to clear the quality floor."""
    ndcg = f"ndcg_at_{k}"
    try:
        model, metadata = load_model(champion) if champion else (None, {})
    except FileNotFoundError:
        model, metadata = None, {}
    if model is None:
        return {"present": False, ndcg: {"value": 0.0}}
    labels = test[LABEL_COLUMN].to_numpy()
    scores = predict_scores(model, test)
    ranking = _ranking(ranked_lists(test), scores, labels, k)
    return {
        "present": True,
        "dataset_version": metadata.get("dataset_version"),
        ndcg: ranking[ndcg],
        "auc": auc_with_error(labels, scores),
    }


def flat_metrics(report: dict[str, Any]) -> dict[str, float]:
    """Headline numbers of a report flattened for MLflow: ``test_auc``, ``baseline_ndcg_at_10``."""
    out = {"test_auc": report["binary_classification_metrics"]["auc"]["value"]}
    out.update({f"test_{k}": v["value"] for k, v in report["ranking_metrics"].items()})
    out.update(
        {f"baseline_{k}": v["value"] for k, v in report["baseline"].items() if isinstance(v, dict)}
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate a model on the test split.")
    parser.add_argument("--model", default="/opt/ml/processing/model")
    parser.add_argument("--test", default="/opt/ml/processing/test")
    parser.add_argument("--output", default="/opt/ml/processing/evaluation")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--champion", default=None, help="the serving model (dir or model.tar.gz), if any"
    )
    parser.add_argument("--no-tracking", action="store_true", help="also MLOPS_TRACKING=off")
    args = parser.parse_args(argv)
    model, metadata = load_model(args.model)
    test = read_split(args.test)
    report = evaluate(model, test, args.k)
    report["champion"] = champion_report(args.champion, test, args.k)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    path = output / EVALUATION_FILE
    path.write_text(json.dumps(report, indent=2) + "\n")
    run = metadata.get("mlflow")
    if run and tracking.tracking_enabled(args.no_tracking):
        tracking.log_evaluation(run, path, flat_metrics(report))
    print(json.dumps(flat_metrics(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
