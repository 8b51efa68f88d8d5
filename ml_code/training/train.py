"""Train the recommender on the SageMaker training contract.

Reads the ``train`` and ``validation`` channels (``SM_CHANNEL_TRAIN``/``SM_CHANNEL_VALIDATION``,
Parquet files written by ``ml_code.features.build``) and writes to ``SM_MODEL_DIR``:

* ``model.joblib``: the fitted pipeline; ``predict_proba`` takes a DataFrame of MODEL_FEATURES;
* ``metadata.json``: features, hyperparameters, validation metrics and lineage (dataset version,
  code hash, git commit, data hashes, MLflow run), stored by the registry as customer metadata;
* ``baseline.json``: statistics of the training features for the drift monitor.

Hyperparameters arrive as ``--name value`` arguments, as SageMaker passes them. The same data
and ``--seed`` give identical predictions, which is what lets a model be rebuilt from its
lineage record.

Script::

    SM_CHANNEL_TRAIN=.../train SM_CHANNEL_VALIDATION=.../validation SM_MODEL_DIR=.../model \
    python -m ml_code.training.train --learning-rate 0.1 --max-iter 60 --seed 42 \
        [--dataset-version ds-...] [--no-tracking]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a file, as SageMaker does
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
from typing import Any  # noqa: E402

import joblib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import sklearn  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

import ml_code  # noqa: E402
from ml_code import lineage, tracking  # noqa: E402
from ml_code.features.build import ranked_lists, read_split  # noqa: E402
from ml_code.features.definitions import (  # noqa: E402
    LABEL_COLUMN,
    MODEL_FEATURES,
    model_features,
    model_frame,
)
from ml_code.monitoring.baseline import compute_baseline, write_baseline  # noqa: E402
from ml_code.training.metrics import ranking_metrics  # noqa: E402
from ml_code.training.model import Hyperparameters, build_model, categorical_columns  # noqa: E402

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
BASELINE_FILE = "baseline.json"
PACKAGE_DIR = Path(ml_code.__file__).resolve().parent


def fit(train: pd.DataFrame, hp: Hyperparameters) -> Pipeline:
    """Fit the recommender on labelled rows."""
    return build_model(hp).fit(model_frame(train), train[LABEL_COLUMN].to_numpy())


def predict_scores(model: Pipeline, rows: pd.DataFrame) -> np.ndarray:
    """Purchase probability of each row (any frame holding the MODEL_FEATURES columns)."""
    return model.predict_proba(model_frame(rows))[:, 1]


def validation_metrics(model: Pipeline, validation: pd.DataFrame) -> dict[str, float]:
    scores = predict_scores(model, validation)
    labels = validation[LABEL_COLUMN].to_numpy()
    metrics = {"validation_auc": float(roc_auc_score(labels, scores))}
    ranking = ranking_metrics(ranked_lists(validation), scores, labels)
    metrics.update({f"validation_{k}": v for k, v in ranking.items()})
    return metrics


def _split_hashes(directory: str | Path) -> dict[str, str]:
    return {p.name: lineage.sha256_file(p) for p in sorted(Path(directory).glob("*.parquet"))}


def train_model(
    train_dir: str | Path,
    validation_dir: str | Path,
    model_dir: str | Path,
    hp: Hyperparameters,
    *,
    output_data_dir: str | Path | None = None,
    dataset_version: str | None = None,
    dataset_manifest: str | None = None,
    track: bool = False,
) -> dict[str, Any]:
    """Train, write the model directory and return its metadata."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    train = read_split(train_dir)
    validation = read_split(validation_dir)
    model = fit(train, hp)
    metrics = validation_metrics(model, validation)

    joblib.dump(model, model_dir / MODEL_FILE)
    features = model_features()
    # Every candidate row of the training cut-offs (validation customers too): the population
    # the endpoint scores; customer_id delimits the clusters (one per customer and cut-off).
    scored = pd.concat([train, validation], ignore_index=True)
    write_baseline(compute_baseline(scored, features), model_dir / BASELINE_FILE)
    metadata: dict[str, Any] = {
        "model_file": MODEL_FILE,
        "features": list(MODEL_FEATURES),
        "categorical_features": categorical_columns(),
        "hyperparameters": hp.to_dict(),
        "metrics": metrics,
        "training_rows": int(len(train)),
        "training_positives": int(train[LABEL_COLUMN].sum()),
        "lineage": {
            "dataset_version": dataset_version,
            "dataset_manifest": dataset_manifest,
            "code_hash": lineage.code_hash(PACKAGE_DIR),
            "git_commit": lineage.git_commit(PACKAGE_DIR),
            "train_files_sha256": _split_hashes(train_dir),
            "validation_files_sha256": _split_hashes(validation_dir),
        },
        "framework": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "pandas": pd.__version__,
            "numpy": np.__version__,
        },
        "mlflow": None,
    }
    if track:
        output = Path(output_data_dir or model_dir.parent / "output")
        tags = {f"lineage.{k}": v for k, v in metadata["lineage"].items() if isinstance(v, str)}
        metadata["mlflow"] = tracking.log_training_run(
            output_dir=output,
            params=hp.to_dict(),
            metrics=metrics,
            tags=tags,
            model_dir=model_dir,
        )
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    return metadata


def _flag(value: str) -> bool:
    return value.lower() in {"1", "true", "yes", "on"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description="Train the retail recommender.")
    defaults = Hyperparameters()
    for hp_field in dataclasses.fields(Hyperparameters):
        parser.add_argument(
            f"--{hp_field.name.replace('_', '-')}",
            type=type(getattr(defaults, hp_field.name)),
            default=getattr(defaults, hp_field.name),
        )
    parser.add_argument("--train", default=env("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    parser.add_argument(
        "--validation", default=env("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation")
    )
    parser.add_argument("--model-dir", default=env("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument(
        "--output-data-dir", default=env("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data")
    )
    parser.add_argument("--dataset-version", default=env("DATASET_VERSION"))
    parser.add_argument("--dataset-manifest", default=env("DATASET_MANIFEST_URI"))
    parser.add_argument(
        "--no-tracking",
        nargs="?",
        const=True,
        default=False,
        type=_flag,
        help="skip MLflow (also MLOPS_TRACKING=off)",
    )
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"ignoring unknown arguments: {unknown}", file=sys.stderr)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    hp = Hyperparameters(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(Hyperparameters)}
    )
    metadata = train_model(
        args.train,
        args.validation,
        args.model_dir,
        hp,
        output_data_dir=args.output_data_dir,
        dataset_version=args.dataset_version,
        dataset_manifest=args.dataset_manifest,
        track=tracking.tracking_enabled(args.no_tracking),
    )
    print(json.dumps({"metrics": metadata["metrics"], "mlflow": metadata["mlflow"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
