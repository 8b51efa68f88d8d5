"""The recommender estimator: categorical encoding plus a histogram gradient-boosted classifier.

Categories are encoded against the fixed vocabularies of the feature contract, so the fitted
model accepts plain strings or pandas categoricals and scores an unseen value as missing rather
than failing. Everything stays in scikit-learn, which the SageMaker scikit-learn container ships.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from ml_code.features.definitions import CATEGORY_VOCABULARIES, MODEL_FEATURES, model_features


@dataclass(frozen=True)
class Hyperparameters:
    """Training knobs; CLI flags are these names with dashes (``--learning-rate``)."""

    learning_rate: float = 0.1
    max_iter: int = 60
    max_depth: int = 6
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    seed: int = 42

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def categorical_columns() -> list[str]:
    return [f.name for f in model_features() if f.kind == "categorical"]


def build_model(hp: Hyperparameters) -> Pipeline:
    """An unfitted pipeline consuming a DataFrame with MODEL_FEATURES columns."""
    categorical = categorical_columns()
    numeric = [name for name in MODEL_FEATURES if name not in categorical]
    encoder = OrdinalEncoder(
        categories=[list(CATEGORY_VOCABULARIES[name]) for name in categorical],
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
        dtype=np.float64,
    )
    columns = ColumnTransformer(
        [("categorical", encoder, categorical), ("numeric", "passthrough", numeric)],
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    classifier = HistGradientBoostingClassifier(
        learning_rate=hp.learning_rate,
        max_iter=hp.max_iter,
        max_depth=hp.max_depth,
        max_leaf_nodes=hp.max_leaf_nodes,
        min_samples_leaf=hp.min_samples_leaf,
        l2_regularization=hp.l2_regularization,
        categorical_features=categorical,
        early_stopping=False,
        random_state=hp.seed,
    )
    return Pipeline([("columns", columns), ("classifier", classifier)])
