"""Training is reproducible, beats popularity, reports in the registry's shape, and recovers
from a preference shift when retrained."""

from __future__ import annotations

import datetime as dt
import json
import tarfile
from functools import reduce
from pathlib import Path

import joblib
import numpy as np
import pytest

from ml_code.data.generate import generate_world, get_scenario
from ml_code.features.build import build_training_sets, ranked_lists, read_split
from ml_code.features.definitions import MODEL_FEATURES, model_features
from ml_code.monitoring.baseline import read_baseline
from ml_code.training import evaluate as evaluation
from ml_code.training.metrics import ndcg_at_k, precision_at_k, ranking_metrics, recall_at_k
from ml_code.training.model import Hyperparameters
from ml_code.training.train import fit, parse_args, predict_scores

JSON_GET_PATHS = [
    "binary_classification_metrics.auc.value",
    "binary_classification_metrics.auc.standard_deviation",
    "ranking_metrics.ndcg_at_10.value",
    "ranking_metrics.precision_at_10.value",
    "ranking_metrics.recall_at_10.value",
    "baseline.ndcg_at_10.value",
    "baseline.auc.value",
    "improvement.ndcg_at_10.value",
]


def json_get(document: dict, path: str) -> float:
    """What a SageMaker pipeline ``JsonGet`` step returns for a dotted path."""
    return reduce(lambda node, key: node[key], path.split("."), document)


def test_ranking_metrics_match_a_hand_computed_example() -> None:
    customers = ["a", "a", "a", "b", "b", "c"]
    scores = [0.9, 0.5, 0.1, 0.2, 0.8, 0.3]
    bought = [0, 1, 1, 1, 0, 0]  # c bought nothing: excluded from the averages
    assert precision_at_k(customers, scores, bought, k=2) == pytest.approx(0.5)
    assert recall_at_k(customers, scores, bought, k=2) == pytest.approx((0.5 + 1.0) / 2)
    ndcg_a = (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    ndcg_b = (1 / np.log2(3)) / 1
    assert ndcg_at_k(customers, scores, bought, k=2) == pytest.approx((ndcg_a + ndcg_b) / 2)
    assert ranking_metrics(customers, scores, bought, k=2)["ndcg_at_2"] == pytest.approx(
        (ndcg_a + ndcg_b) / 2
    )


def test_same_data_and_seed_give_identical_predictions(trained_default) -> None:
    train = read_split(trained_default.features_dir / "train")
    test = read_split(trained_default.features_dir / "test")
    saved = joblib.load(trained_default.model_dir / "model.joblib")
    refit = fit(train, trained_default.hyperparameters)
    assert np.array_equal(predict_scores(saved, test), predict_scores(refit, test))
    assert predict_scores(saved, test).tobytes() == predict_scores(refit, test).tobytes()


def test_model_directory_holds_model_metadata_and_drift_baseline(trained_default) -> None:
    metadata = json.loads((trained_default.model_dir / "metadata.json").read_text())
    assert metadata["features"] == list(MODEL_FEATURES)
    assert metadata["hyperparameters"] == trained_default.hyperparameters.to_dict()
    assert len(metadata["lineage"]["code_hash"]) == 64
    baseline = read_baseline(trained_default.model_dir / "baseline.json")
    assert set(baseline["features"]) == {f.name for f in model_features()}


def test_model_beats_the_popularity_baseline_on_the_default_world(trained_default) -> None:
    model, _ = evaluation.load_model(trained_default.model_dir)
    report = evaluation.evaluate(model, read_split(trained_default.features_dir / "test"))
    model_ndcg = json_get(report, "ranking_metrics.ndcg_at_10.value")
    baseline_ndcg = json_get(report, "baseline.ndcg_at_10.value")
    assert model_ndcg > baseline_ndcg + 0.1
    assert json_get(report, "binary_classification_metrics.auc.value") > 0.75


def test_evaluation_carries_the_per_customer_spread_and_count_monitoring_judges_against(
    trained_default,
) -> None:
    model, _ = evaluation.load_model(trained_default.model_dir)
    test = read_split(trained_default.features_dir / "test")
    report = evaluation.evaluate(model, test)
    ndcg = report["ranking_metrics"]["ndcg_at_10"]
    assert ndcg["count"] > 0
    assert ndcg["customer_standard_deviation"] == pytest.approx(
        ndcg["standard_deviation"] * np.sqrt(ndcg["count"])
    )
    assert 0 < ndcg["customer_standard_deviation"] < 0.5


def test_evaluation_json_answers_every_documented_json_get_path(
    trained_default, tmp_path: Path
) -> None:
    archive = tmp_path / "model" / "model.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for path in trained_default.model_dir.iterdir():
            tar.add(path, arcname=path.name)
    code = evaluation.main(
        [
            "--model",
            str(archive.parent),
            "--test",
            str(trained_default.features_dir / "test"),
            "--output",
            str(tmp_path),
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "evaluation.json").read_text())
    values = {path: json_get(report, path) for path in JSON_GET_PATHS}
    assert all(isinstance(v, float) and np.isfinite(v) for v in values.values())
    assert values["improvement.ndcg_at_10.value"] == pytest.approx(
        values["ranking_metrics.ndcg_at_10.value"] - values["baseline.ndcg_at_10.value"]
    )


def test_hyperparameters_arrive_as_sagemaker_style_arguments(monkeypatch) -> None:
    monkeypatch.setenv("SM_CHANNEL_TRAIN", "/data/train")
    monkeypatch.setenv("SM_MODEL_DIR", "/model")
    args = parse_args(
        [
            "--learning-rate",
            "0.2",
            "--max-iter",
            "7",
            "--seed",
            "3",
            "--sagemaker_region",
            "eu-west-1",
            "--no-tracking",
            "True",
        ]
    )
    assert (args.learning_rate, args.max_iter, args.seed) == (0.2, 7, 3)
    assert (args.train, args.model_dir, args.no_tracking) == ("/data/train", "/model", True)


SHIFT_DAY = 42
POST_CUTOFF = SHIFT_DAY + 7  # a week of cut-offs from the shift on, trained and tested on them


@pytest.fixture(scope="module")
def shifted_world():
    scenario = get_scenario("preference-shift", shift_day=SHIFT_DAY)
    return generate_world(n_customers=600, days=POST_CUTOFF + 7, scenario=scenario)


def test_preference_shift_hurts_the_old_model_and_retraining_recovers(shifted_world) -> None:
    dataset = shifted_world.dataset()
    day = lambda n: shifted_world.start_date + dt.timedelta(days=n)  # noqa: E731
    hp = Hyperparameters()
    before, _ = build_training_sets(dataset, cutoff=day(SHIFT_DAY - 7))
    old = fit(before["train"], hp)
    after, plan = build_training_sets(dataset, cutoff=day(POST_CUTOFF))
    assert min(plan.train_cutoffs) >= shifted_world.shift_date  # it learns from new labels only
    new = fit(after["train"], hp)

    def ndcg(model, rows, segment: str | None = None) -> float:
        if segment is not None:
            rows = rows[rows["segment"] == segment]
        return ndcg_at_k(ranked_lists(rows), predict_scores(model, rows), rows["label"])

    # The old model degrades once customers change; a retrain on the week after the shift
    # beats it on the same rows and brings ranking back to its pre-shift level (features
    # alone cannot: no feature holds a customer's price sensitivity).
    assert ndcg(old, after["test"]) < ndcg(old, before["test"]) - 0.05
    assert ndcg(new, after["test"]) > ndcg(old, after["test"]) + 0.05
    assert ndcg(new, after["test"]) > ndcg(old, before["test"]) - 0.03


def test_the_champion_is_scored_on_the_same_test_rows_as_the_new_model(trained_default):
    test = trained_default.splits["test"]
    model, _ = evaluation.load_model(trained_default.model_dir)
    report = evaluation.evaluate(model, test)
    champion = evaluation.champion_report(trained_default.model_dir, test)
    assert champion["present"] is True
    assert champion["ndcg_at_10"]["value"] == pytest.approx(
        report["ranking_metrics"]["ndcg_at_10"]["value"]
    )


def test_no_champion_yet_scores_zero_so_the_first_model_only_meets_the_floor(
    trained_default, tmp_path
):
    placeholder = tmp_path / "champion"
    placeholder.mkdir()
    (placeholder / "README").write_text("No champion yet.\n")
    champion = evaluation.champion_report(placeholder, trained_default.splits["test"])
    assert champion == {"present": False, "ndcg_at_10": {"value": 0.0}}
