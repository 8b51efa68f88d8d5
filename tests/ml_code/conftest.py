"""Shared fixtures: small generated worlds and one trained model on the default world.

Each is built once per session; tests that change data copy it first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from ml_code.data.dataset import Dataset, write_dataset
from ml_code.data.generate import World, generate_world
from ml_code.features.build import (
    SplitPlan,
    build_training_sets,
    feature_tables,
    write_outputs,
)
from ml_code.training.model import Hyperparameters
from ml_code.training.train import train_model


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> Iterator[None]:
    """One OpenMP/BLAS thread: on a shared machine, spinning threads slow gradient boosting."""
    with threadpool_limits(1):
        yield


@pytest.fixture(autouse=True)
def _no_tracking_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach a tracking server unless they opt in with their own store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_ARN", raising=False)


@pytest.fixture(scope="session")
def small_world() -> World:
    """400 customers, 60 items, 42 days (the shortest history a training set can be built from),
    no scenario change: fast to validate and featurise."""
    return generate_world(seed=3, n_customers=400, n_items=60, days=42, scenario="none")


@pytest.fixture(scope="session")
def small_dataset_dir(small_world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(small_world.dataset(), tmp_path_factory.mktemp("small") / "dataset")


@dataclass(frozen=True)
class TrainedWorld:
    """The default world with its splits built and a model trained on them."""

    world: World
    dataset: Dataset
    splits: dict[str, pd.DataFrame]
    plan: SplitPlan
    features_dir: Path
    model_dir: Path
    hyperparameters: Hyperparameters

    @property
    def last_date(self) -> dt.date:
        return self.world.start_date + dt.timedelta(days=self.world.days - 1)


@pytest.fixture(scope="session")
def trained_default(tmp_path_factory: pytest.TempPathFactory) -> TrainedWorld:
    """Default world (1500 customers, 200 items, 60 days) through features and training."""
    root = tmp_path_factory.mktemp("default")
    world = generate_world()
    dataset = world.dataset()
    splits, plan = build_training_sets(dataset)
    as_of = dataset.last_date + dt.timedelta(days=1)
    write_outputs(splits, plan, feature_tables(dataset, as_of), root / "features")
    hp = Hyperparameters()
    train_model(root / "features" / "train", root / "features" / "validation", root / "model", hp)
    return TrainedWorld(world, dataset, splits, plan, root / "features", root / "model", hp)
