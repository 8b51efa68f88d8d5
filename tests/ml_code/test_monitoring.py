"""Baselines, drift and model-quality jobs on small captured windows made in the tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from moto.server import ThreadedMotoServer

from ml_code.data.schema import CATEGORIES, SEGMENTS
from ml_code.features.definitions import (
    CATEGORY_VOCABULARIES,
    MODEL_FEATURES,
    PRICE_BANDS,
    model_features,
)
from ml_code.monitoring import drift, quality
from ml_code.monitoring.baseline import (
    compute_baseline,
    merge_baselines,
    read_baseline,
    write_baseline,
)
from ml_code.monitoring.metrics import (
    DIMENSION_ENDPOINT,
    DIMENSION_FEATURE,
    DIMENSION_MODEL,
    FEATURE_DRIFT_MAX_PSI,
    FEATURE_DRIFT_PSI,
    GROUND_TRUTH_COVERAGE,
    MODEL_AUC,
    MODEL_NDCG_AT_10,
    MODEL_PRECISION_AT_10,
    NAMESPACE,
    QUALITY_SHORTFALL_Z,
)
from ml_code.serving.capture import DirectoryCaptureWriter, capture_record

JSON = "application/json"
START = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
SHIFTED = ("price", "segment")


def feature_rows(n: int, seed: int, shifted: bool = False) -> pd.DataFrame:
    """Model rows from one fixed distribution; ``shifted`` moves price up and segment mix."""
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame(
        {
            "segment": rng.choice(SEGMENTS, n, p=[0.1, 0.3, 0.6] if shifted else [0.5, 0.3, 0.2]),
            "recency_days": rng.exponential(6.0, n).round(2),
            "frequency_28d": rng.poisson(2.0, n),
            "monetary_28d": rng.gamma(2.0, 30.0, n).round(2),
            "avg_purchase_price": rng.lognormal(3.0, 0.4, n).round(2),
            "views_28d": rng.poisson(12.0, n),
            "category": rng.choice(CATEGORIES, n),
            "price": (rng.lognormal(3.0, 0.5, n) * (1.8 if shifted else 1.0)).round(2),
            "price_band": rng.choice(PRICE_BANDS, n),
            "popularity_7d": rng.poisson(3.0, n),
            "popularity_28d": rng.poisson(11.0, n),
            "conversion_rate_28d": rng.beta(2.0, 30.0, n),
            "item_age_days": rng.integers(1, 365, n),
            "category_affinity": rng.beta(2.0, 8.0, n),
            "recent_category_affinity": rng.beta(2.0, 8.0, n),
            "price_ratio": rng.lognormal(0.0, 0.3, n),
        }
    )
    return rows[list(MODEL_FEATURES)]


def training_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows as training holds them: categoricals over the feature vocabularies."""
    return rows.astype({c: pd.CategoricalDtype(v) for c, v in CATEGORY_VOCABULARIES.items()})


def write_window(root: Path, rows: pd.DataFrame, per_request: int = 100) -> None:
    """Capture files of score requests holding ``rows``, one request per ``per_request`` rows."""
    writer = DirectoryCaptureWriter(root, "recs-dev", "AllTraffic", max_records=3)
    for n, start in enumerate(range(0, len(rows), per_request)):
        chunk = rows.iloc[start : start + per_request]
        body = json.dumps({"instances": json.loads(chunk.to_json(orient="records"))})
        output = json.dumps({"scores": [0.5] * len(chunk)})
        writer.write(
            capture_record(
                request_body=body.encode(),
                request_content_type=JSON,
                response_body=output.encode(),
                response_content_type=JSON,
                inference_time=START + timedelta(minutes=20 * n),
            )
        )
    writer.close()


@pytest.fixture(scope="module")
def baseline_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "baseline.json"
    write_baseline(
        compute_baseline(training_frame(feature_rows(3000, seed=1)), model_features()), path
    )
    return path


# ---- baseline --------------------------------------------------------------------------------


def test_baseline_of_two_shards_merges_into_the_baseline_of_their_union() -> None:
    rows = training_frame(feature_rows(1000, seed=2))
    rows.loc[rows.index[::97], "recency_days"] = np.nan  # missing values merge too
    features = model_features()
    reference = compute_baseline(rows.iloc[:200], features)  # edges from a sample, as a job would
    union = compute_baseline(rows, features, reference=reference)
    merged = merge_baselines(
        compute_baseline(rows.iloc[:600], features, reference=reference),
        compute_baseline(rows.iloc[600:], features, reference=reference),
    )
    sums = ("sum", "sum_squares", "mean", "std")  # floats: equal up to summation order
    for name, stats in union["features"].items():
        got = merged["features"][name]
        assert {k: v for k, v in got.items() if k not in sums} == {
            k: v for k, v in stats.items() if k not in sums
        }, name
        for key in sums if stats["kind"] == "numeric" else ():
            assert got[key] == pytest.approx(stats[key], rel=1e-12), (name, key)
    assert merged["row_count"] == union["row_count"] == 1000
    assert union["features"]["recency_days"]["missing"] == 11


def test_baseline_bins_are_training_deciles_with_open_outer_bins() -> None:
    values = pd.DataFrame({"price": np.arange(1.0, 101.0)})
    (price,) = [f for f in model_features() if f.name == "price"]
    stats = compute_baseline(values, [price])["features"]["price"]
    assert stats["bin_edges"][0] == 1.0 and stats["bin_edges"][-1] > 100.0
    assert stats["bin_counts"][0] == stats["bin_counts"][-1] == 0  # outer bins: beyond training
    assert stats["bin_counts"][1:-1] == [10] * 10
    assert stats["quantiles"]["probabilities"][5] == pytest.approx(0.5)
    assert stats["mean"] == pytest.approx(50.5)


def test_shards_binned_differently_refuse_to_merge_and_say_how_to_fix() -> None:
    features = model_features()
    a = compute_baseline(training_frame(feature_rows(300, seed=3)), features)
    b = compute_baseline(training_frame(feature_rows(300, seed=4)), features)
    with pytest.raises(ValueError, match="reference="):
        merge_baselines(a, b)


def test_baseline_file_round_trips_and_other_files_are_refused(
    baseline_path: Path, tmp_path: Path
) -> None:
    baseline = read_baseline(baseline_path)
    write_baseline(baseline, tmp_path / "copy.json")
    assert read_baseline(tmp_path / "copy.json") == baseline
    (tmp_path / "other.json").write_text('{"features": {}}')
    with pytest.raises(ValueError, match="not a mlops-kit/baseline v2 file"):
        read_baseline(tmp_path / "other.json")
    # A model trained before v2 keeps being monitored, its rows standing in for clusters.
    v1 = {k: v for k, v in baseline.items() if k != "clusters"} | {"version": 1}
    write_baseline(v1, tmp_path / "v1.json")
    assert drift.compute_drift(v1, [feature_rows(200, seed=7)])["max_psi"] is not None
    assert read_baseline(tmp_path / "v1.json")["version"] == 1


# ---- drift -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def windows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("capture")
    same, moved = root / "same", root / "moved"
    write_window(same, feature_rows(1500, seed=10))
    shifted = feature_rows(1500, seed=11, shifted=True)
    unshifted = feature_rows(1500, seed=11)
    write_window(
        moved, shifted.assign(**{c: unshifted[c] for c in MODEL_FEATURES if c not in SHIFTED})
    )
    return {"same": same, "moved": moved}


def test_drift_flags_exactly_the_shifted_features(
    baseline_path: Path, windows: dict[str, Path], tmp_path: Path
) -> None:
    report = drift.run(baseline_path, windows["moved"], tmp_path)
    assert report["rows"] == 1500
    assert report["drifted_features"] == sorted(SHIFTED)
    assert report["max_psi"] == max(report["features"][c]["psi"] for c in SHIFTED)
    price = report["features"]["price"]
    assert price["ks_statistic"] > 0.2 and price["ks_pvalue"] < 1e-6
    assert json.loads((tmp_path / "drift_report.json").read_text()) == report


def test_drift_leaves_a_window_from_the_training_distribution_alone(
    baseline_path: Path, windows: dict[str, Path], tmp_path: Path
) -> None:
    report = drift.run(baseline_path, windows["same"], tmp_path)
    assert report["drift_detected"] is False and report["drifted_features"] == []
    assert report["max_psi"] < 0.05
    assert report["window"]["records"] == 15 and report["window"]["skipped_records"] == 0
    assert report["window"]["start"] == START.isoformat()


def test_drift_window_days_reads_only_the_requests_captured_in_it(
    baseline_path: Path, windows: dict[str, Path], tmp_path: Path
) -> None:
    # write_window stamps request n at START + 20 n minutes: 15 requests over 4 h 40 min.
    end = START + timedelta(hours=2)  # requests 0..5 are before it
    report = drift.run(
        baseline_path, windows["moved"], tmp_path, window_end=end, window_days=1 / 24
    )
    assert report["window"]["records"] == 3  # 60, 80 and 100 minutes after START
    assert report["rows"] == 300
    assert report["window"]["start"] == (START + timedelta(hours=1)).isoformat()
    with pytest.raises(ValueError, match="window-days"):
        drift.run(baseline_path, windows["moved"], tmp_path, window_days=0)


def test_drift_of_too_few_requests_is_reported_but_not_published(
    baseline_path: Path, windows: dict[str, Path], tmp_path: Path
) -> None:
    common = {"endpoint": "recs-dev", "model": "recs"}
    small = drift.run(baseline_path, windows["moved"], tmp_path, min_requests=16, **common)
    assert small["too_few_requests"] and small["drifted_features"] == sorted(SHIFTED)
    assert small["cloudwatch"]["MetricData"] == []
    enough = drift.run(baseline_path, windows["moved"], tmp_path, min_requests=15, **common)
    assert not enough["too_few_requests"] and enough["cloudwatch"]["MetricData"]


def test_drift_fed_in_small_chunks_equals_one_pass(
    baseline_path: Path, windows: dict[str, Path], tmp_path: Path
) -> None:
    end = datetime(2026, 3, 1, tzinfo=UTC)
    one_pass = drift.run(
        baseline_path, windows["moved"], tmp_path / "a", chunk_rows=10**9, window_end=end
    )
    chunked = drift.run(
        baseline_path, windows["moved"], tmp_path / "b", chunk_rows=150, window_end=end
    )
    assert chunked == one_pass
    baseline = read_baseline(baseline_path)
    rows = feature_rows(900, seed=12, shifted=True)
    whole = drift.compute_drift(baseline, [rows])
    pieces = drift.compute_drift(baseline, (rows.iloc[i : i + 64] for i in range(0, 900, 64)))
    assert pieces == whole
    shard_a, shard_b = drift.DriftAccumulator(baseline), drift.DriftAccumulator(baseline)
    shard_a.update(rows.iloc[:300])
    shard_b.update(rows.iloc[300:])
    shard_a.merge(shard_b)  # shards of one window, e.g. one per processing instance
    assert drift.drift_report(shard_a) == whole


def test_drift_counts_ranking_requests_and_skips_lines_it_cannot_read(
    baseline_path: Path, tmp_path: Path
) -> None:
    capture = tmp_path / "capture"
    record = _rank_capture("r1", [(f"i{j}", 0.9 - j / 10) for j in range(3)], n_candidates=4)
    (capture / "x").mkdir(parents=True)
    (capture / "x" / "a.jsonl").write_text(json.dumps(record) + "\n{not json\n")
    report = drift.run(baseline_path, capture, tmp_path / "out")
    assert report["rows"] == 4  # every candidate the model scored, pair features included
    assert report["window"]["skipped_records"] == 1
    assert report["features"]["category_affinity"]["missing_share"] == 0.0


# ---- model quality ---------------------------------------------------------------------------


def customer() -> dict[str, Any]:
    record: dict[str, Any] = {
        "customer_id": "c1",
        "segment": "regular",
        "recency_days": 3.0,
        "frequency_28d": 1,
        "monetary_28d": 45.0,
        "avg_purchase_price": 16.0,
        "views_7d": 4,
        "views_28d": 11,
    }
    for category in CATEGORIES:
        record[f"affinity_{category}"] = record[f"recent_affinity_{category}"] = 0.125
    return record


def item(j: int) -> dict[str, Any]:
    return {
        "item_id": f"i{j}",
        "category": CATEGORIES[j % len(CATEGORIES)],
        "price": 5.0 + 3 * j,
        "price_band": "mid",
        "popularity_7d": j % 5,
        "popularity_28d": 2 * j,
        "conversion_rate_28d": 0.05,
        "item_age_days": 10 + j,
    }


def _rank_capture(
    inference_id: str | None,
    served: list[tuple[str, float]],
    n_candidates: int,
    first: int = 0,
    at: datetime = START,
) -> dict[str, Any]:
    request = {
        "customer": customer(),
        "k": len(served),
        "candidates": [item(j) for j in range(first, first + n_candidates)],
    }
    response = {
        "customer_id": "c1",
        "items": [
            {"item_id": i, "score": s, "rank": r} for r, (i, s) in enumerate(served, start=1)
        ],
    }
    return capture_record(
        request_body=json.dumps(request).encode(),
        request_content_type=JSON,
        response_body=json.dumps(response).encode(),
        response_content_type=JSON,
        inference_time=at,
        inference_id=inference_id,
    )


def _score_capture(inference_id: str | None, scores: list[float]) -> dict[str, Any]:
    rows = json.loads(feature_rows(len(scores), seed=5).to_json(orient="records"))
    return capture_record(
        request_body=json.dumps(rows).encode(),
        request_content_type=JSON,
        response_body=json.dumps({"scores": scores}).encode(),
        response_content_type=JSON,
        inference_time=START,
        inference_id=inference_id,
    )


def _truth(inference_id: str, labels: str) -> dict[str, Any]:
    return {
        "groundTruthData": {"data": labels, "encoding": "CSV"},
        "eventMetadata": {"eventId": f"gt-{inference_id}", "inferenceId": inference_id},
        "eventVersion": "0",
    }


def _jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture(scope="module")
def labelled_window(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("quality")
    _jsonl(
        root / "capture/recs-dev/AllTraffic/2026/11/25/06/a.jsonl",
        [
            _score_capture("s1", [0.9, 0.2, 0.6, 0.4]),
            # r1: candidates i0..i3, top 3 returned; i1 was never shown
            _rank_capture("r1", [("i2", 0.8), ("i0", 0.5), ("i3", 0.3)], n_candidates=4),
            # r2: candidates i4..i6, all returned
            _rank_capture("r2", [("i5", 0.7), ("i4", 0.6), ("i6", 0.1)], n_candidates=3, first=4),
            _score_capture(None, [0.5]),  # no inference id: can never be labelled
            _score_capture("s2", [0.5]),  # ground truth not arrived yet
        ],
    )
    _jsonl(
        root / "truth/2026/11/25/07/b.jsonl",
        [
            _truth("s1", "1,0,0,1"),
            _truth("r1", "0,1,1,0"),  # labels of i0, i1, i2, i3 in request order
            _truth("r2", "1,0,0"),  # i4, i5, i6
            _truth("unknown", "1"),  # an inference outside the window: ignored
        ],
    )
    return root / "capture", root / "truth"


def test_quality_job_matches_hand_computed_auc_ndcg_and_precision(
    labelled_window: tuple[Path, Path], tmp_path: Path
) -> None:
    capture, truth = labelled_window
    report = quality.run(capture, truth, tmp_path)
    # AUC over scored rows. Positives: s1 0.9, 0.4; r1 i2 0.8; r2 i4 0.6.
    # Negatives: s1 0.2, 0.6; r1 i0 0.5, i3 0.3; r2 i5 0.7, i6 0.1 (r1's i1 has no score).
    # Pairs won: 0.9 -> 6, 0.4 -> 3 (0.2, 0.3, 0.1), 0.8 -> 6, 0.6 -> 4 + 0.5 tie with 0.6;
    # AUC = 19.5 / (4 * 6) = 0.8125.
    assert report["auc"] == pytest.approx(19.5 / 24)
    # Shown order r1: i2 (1), i0 (0), i3 (0), then i1 (1) unshown -> positions 1 and 4 relevant.
    # precision@10 = 2/10; NDCG = (1/log2(2) + 1/log2(5)) / (1/log2(2) + 1/log2(3)) = 0.8772.
    # r2: i5 (0), i4 (1), i6 (0) -> precision 1/10; NDCG = (1/log2(3)) / 1 = 0.6309.
    ndcg_r1 = (1 + 1 / np.log2(5)) / (1 + 1 / np.log2(3))
    ndcg_r2 = 1 / np.log2(3)
    assert report["precision_at_10"] == pytest.approx((0.2 + 0.1) / 2)
    assert report["ndcg_at_10"] == pytest.approx((ndcg_r1 + ndcg_r2) / 2)
    assert report["ndcg_at_10"] == pytest.approx(0.754072, abs=1e-6)
    # 3 of 5 captured inferences have ground truth.
    assert report["ground_truth_coverage"] == pytest.approx(0.6)
    assert report["labelled_rows"] == 4 + 3 + 3 and report["labelled_rankings"] == 2
    assert json.loads((tmp_path / "quality_report.json").read_text()) == report


def test_quality_scores_the_day_whose_labels_are_complete(
    labelled_window: tuple[Path, Path], tmp_path: Path
) -> None:
    capture, truth = labelled_window
    # Everything was captured at START: a run six days later with a six-day label delay
    # looks at exactly that day; a run a day later at none of it.
    day_after = START.replace(hour=0, minute=0) + timedelta(days=1)
    on_time = quality.run(
        capture,
        truth,
        tmp_path / "a",
        window_end=day_after + timedelta(days=6),
        label_delay_days=6,
        window_days=1,
    )
    assert on_time["captured_inferences"] == 5 and on_time["ground_truth_coverage"] == 0.6
    late = quality.run(
        capture,
        truth,
        tmp_path / "b",
        window_end=day_after + timedelta(days=7),
        label_delay_days=6,
        window_days=1,
    )
    assert late["captured_inferences"] == 0 and late["ndcg_at_10"] is None


def test_quality_reads_csv_captures(tmp_path: Path) -> None:
    rows = feature_rows(4, seed=6).to_csv(index=False).encode()
    record = capture_record(
        request_body=rows,
        request_content_type="text/csv",
        response_body=b"score\n0.9\n0.2\n0.7\n0.4\n",
        response_content_type="text/csv",
        inference_time=START,
        inference_id="csv-1",
    )
    _jsonl(tmp_path / "c/a.jsonl", [record])
    _jsonl(tmp_path / "t/a.jsonl", [_truth("csv-1", "1,0,0,1")])
    report = quality.run(tmp_path / "c", tmp_path / "t", tmp_path / "out")
    # positives 0.9, 0.4 vs negatives 0.2, 0.7: pairs won 2 + 1 of 4
    assert report["auc"] == pytest.approx(0.75)
    assert report["labelled_rankings"] == 0 and report["ndcg_at_10"] is None


def test_ground_truth_with_the_wrong_number_of_labels_is_counted_not_used(tmp_path: Path) -> None:
    _jsonl(tmp_path / "c/a.jsonl", [_score_capture("s1", [0.9, 0.1])])
    _jsonl(tmp_path / "t/a.jsonl", [_truth("s1", "1,0,1")])
    report = quality.run(tmp_path / "c", tmp_path / "t", tmp_path / "out")
    assert report["label_count_mismatches"] == 1
    assert report["auc"] is None and report["ground_truth_coverage"] == 0.0


def _ranked_days(root: Path, labels_by_day: dict[int, list[str]]) -> tuple[Path, Path]:
    """Ranking requests of three candidates, all returned in order i0, i1, i2, captured
    `day` days after START, each labelled by one CSV string; returns (capture, truth)."""
    captures, truths = [], []
    for day, labels in labels_by_day.items():
        for n, label in enumerate(labels):
            inference_id = f"d{day}-{n}"
            served = [("i0", 0.9), ("i1", 0.5), ("i2", 0.1)]
            captures.append(_rank_capture(inference_id, served, 3, at=START + timedelta(days=day)))
            truths.append(_truth(inference_id, label))
    _jsonl(root / "capture/a.jsonl", captures)
    _jsonl(root / "truth/b.jsonl", truths)
    return root / "capture", root / "truth"


def _reference(directory: Path, ndcg: dict[str, Any]) -> Path:
    _jsonl(directory / "evaluation.json", [{"ranking_metrics": {"ndcg_at_10": ndcg}}])
    return directory


NDCG_SECOND = 1 / np.log2(3)  # the purchase ranked second


def test_quality_pools_the_window_days_ending_where_labels_are_complete(tmp_path: Path) -> None:
    # Day -3 falls outside a three-day window; days -2, -1 and 0 are in it.
    capture, truth = _ranked_days(
        tmp_path, {-3: ["1,0,0"], -2: ["1,0,0"], -1: ["0,1,0"], 0: ["0,1,0", "0,0,0"]}
    )
    window_end = START.replace(hour=0) + timedelta(days=1 + 6)
    report = quality.run(
        capture,
        truth,
        tmp_path / "out",
        window_end=window_end,
        label_delay_days=6,
        window_days=3,
        min_labelled=1,
    )
    assert report["captured_inferences"] == 4 and report["window_days"] == 3
    assert report["rankings_with_purchase"] == 3
    assert report["ndcg_at_10"] == pytest.approx((1 + 2 * NDCG_SECOND) / 3)
    assert report["ndcg_at_10_standard_deviation"] == pytest.approx(
        np.std([1, NDCG_SECOND, NDCG_SECOND], ddof=1)
    )


def test_no_labels_yet_is_insufficient_data_published_as_nothing_and_the_job_succeeds(
    tmp_path: Path,
) -> None:
    capture, _ = _ranked_days(tmp_path, {0: ["1,0,0"] * 12})
    (tmp_path / "empty").mkdir()
    code = quality.main(
        [
            "--capture",
            str(capture),
            "--ground-truth",
            str(tmp_path / "empty"),
            "--output",
            str(tmp_path / "out"),
            "--endpoint",
            "recs-dev",
            "--model",
            "recs",
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "out" / quality.REPORT_FILE).read_text())
    assert report["status"] == quality.INSUFFICIENT_DATA == "insufficient data"
    assert "0 ranking(s) with a purchase" in report["reason"]
    published = {d["MetricName"] for d in report["cloudwatch"]["MetricData"]}
    assert published == {GROUND_TRUTH_COVERAGE}


def test_fewer_labelled_rankings_than_the_minimum_publish_no_quality(tmp_path: Path) -> None:
    capture, truth = _ranked_days(tmp_path, {0: ["1,0,0"] * 9 + ["0,0,0"] * 5})
    reference = _reference(
        tmp_path / "ref", {"value": 0.5, "standard_deviation": 0.01, "count": 900}
    )
    kwargs = {"endpoint": "recs-dev", "model": "recs", "reference_dir": reference}
    short = quality.run(capture, truth, tmp_path / "a", min_labelled=10, **kwargs)
    assert short["status"] == "insufficient data" and short["quality_shortfall_z"] is None
    assert short["ndcg_at_10"] == 1.0  # reported for people, not published for alarms
    names = {d["MetricName"] for d in short["cloudwatch"]["MetricData"]}
    assert MODEL_NDCG_AT_10 not in names and QUALITY_SHORTFALL_Z not in names
    enough = quality.run(capture, truth, tmp_path / "b", min_labelled=9, **kwargs)
    assert enough["status"] == "ok"
    names = {d["MetricName"] for d in enough["cloudwatch"]["MetricData"]}
    assert {MODEL_NDCG_AT_10, QUALITY_SHORTFALL_Z} <= names


def test_shortfall_counts_standard_errors_below_the_held_out_level_less_the_tolerance(
    tmp_path: Path,
) -> None:
    # 4 rankings: two bought the first item (NDCG 1), two the second (0.6309): live 0.8155.
    capture, truth = _ranked_days(tmp_path, {0: ["1,0,0", "1,0,0", "0,1,0", "0,1,0"]})
    spread, held_out, customers = 0.3, 0.95, 400
    reference = _reference(
        tmp_path / "ref",
        {"value": held_out, "customer_standard_deviation": spread, "count": customers},
    )
    report = quality.run(
        capture, truth, tmp_path / "out", reference_dir=reference, min_labelled=4, tolerance=0.05
    )
    live = (2 + 2 * NDCG_SECOND) / 4
    se = np.sqrt(spread**2 / 4 + spread**2 / customers)
    assert report["quality_shortfall_z"] == pytest.approx((held_out * 0.95 - live) / se)
    assert report["reference"]["level"] == pytest.approx(held_out * 0.95)
    # Quality above the reference gives a negative shortfall: no alarm.
    better = quality.shortfall_z(quality.Reference(0.5, spread, customers), live, 4)
    assert better < 0


def test_reference_spread_is_recovered_from_the_standard_error_of_older_reports(
    tmp_path: Path,
) -> None:
    reference = quality.load_reference(
        _reference(tmp_path, {"value": 0.4, "standard_deviation": 0.015, "count": 400})
    )
    assert reference == quality.Reference(0.4, pytest.approx(0.3), 400)


def test_a_model_without_a_published_evaluation_gets_the_raw_metrics_only(tmp_path: Path) -> None:
    capture, truth = _ranked_days(tmp_path, {0: ["1,0,0"] * 3})
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "baseline.json").write_text("{}")
    report = quality.run(
        capture,
        truth,
        tmp_path / "out",
        reference_dir=tmp_path / "ref",
        min_labelled=3,
        endpoint="recs-dev",
        model="recs",
    )
    assert report["status"] == "ok" and report["reference"] is None
    names = {d["MetricName"] for d in report["cloudwatch"]["MetricData"]}
    assert MODEL_NDCG_AT_10 in names and QUALITY_SHORTFALL_Z not in names


@pytest.mark.parametrize(
    ("option", "value"),
    [("window_days", 0), ("min_labelled", -1), ("tolerance", 1.0)],
)
def test_quality_options_out_of_range_are_refused(
    labelled_window: tuple[Path, Path], tmp_path: Path, option: str, value: float
) -> None:
    capture, truth = labelled_window
    with pytest.raises(ValueError, match=option.replace("_", "-")):
        quality.run(capture, truth, tmp_path, **{option: value})


# ---- CloudWatch ------------------------------------------------------------------------------


@pytest.fixture
def cloudwatch_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's server on 127.0.0.1, reachable only through AWS_ENDPOINT_URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    for name, value in {
        "AWS_ENDPOINT_URL": url,
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    try:
        yield url
    finally:
        server.stop()


def _latest(cloudwatch: Any, name: str, **dimensions: str) -> float:
    stats = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=name,
        Statistics=["Maximum"],
        Period=60,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=datetime.now(UTC) - timedelta(hours=1),
        EndTime=datetime.now(UTC) + timedelta(hours=1),
    )
    (point,) = stats["Datapoints"]
    return point["Maximum"]


def test_jobs_publish_their_metrics_through_the_configured_endpoint(
    cloudwatch_endpoint: str,
    baseline_path: Path,
    windows: dict[str, Path],
    labelled_window: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    drift_report = drift.main(
        [
            "--baseline",
            str(baseline_path),
            "--capture",
            str(windows["moved"]),
            "--output",
            str(tmp_path / "drift"),
            "--endpoint",
            "recs-dev",
            "--model",
            "recs",
            "--publish",
        ]
    )
    assert drift_report == 0
    capture, truth = labelled_window
    report = quality.run(
        capture,
        truth,
        tmp_path / "quality",
        endpoint="recs-dev",
        model="recs",
        publish_metrics=True,
        min_labelled=2,
    )

    cloudwatch = boto3.client("cloudwatch")
    assert cloudwatch.meta.endpoint_url == cloudwatch_endpoint
    ids = {DIMENSION_ENDPOINT: "recs-dev", DIMENSION_MODEL: "recs"}
    written = json.loads((tmp_path / "drift" / "drift_report.json").read_text())
    assert _latest(cloudwatch, FEATURE_DRIFT_MAX_PSI, **ids) == pytest.approx(written["max_psi"])
    assert _latest(cloudwatch, FEATURE_DRIFT_PSI, **ids, **{DIMENSION_FEATURE: "price"}) == (
        pytest.approx(written["features"]["price"]["psi"])
    )
    per_feature = cloudwatch.list_metrics(Namespace=NAMESPACE, MetricName=FEATURE_DRIFT_PSI)
    assert len(per_feature["Metrics"]) == len(MODEL_FEATURES)
    assert _latest(cloudwatch, MODEL_AUC, **ids) == pytest.approx(report["auc"])
    assert _latest(cloudwatch, MODEL_NDCG_AT_10, **ids) == pytest.approx(report["ndcg_at_10"])
    assert _latest(cloudwatch, MODEL_PRECISION_AT_10, **ids) == pytest.approx(0.15)
    assert _latest(cloudwatch, GROUND_TRUTH_COVERAGE, **ids) == pytest.approx(0.6)


def test_a_feature_that_moves_with_the_calendar_is_reported_but_never_raises_the_alarm(
    tmp_path: Path,
) -> None:
    """An item's age grows every day by construction: its drift measures time, not customers."""
    from dataclasses import dataclass

    from ml_code.monitoring.baseline import compute_baseline

    @dataclass(frozen=True)
    class Spec:
        name: str
        dtype: str = "Fractional"
        kind: str = "numeric"
        drift_monitored: bool = True

    rng = np.random.default_rng(3)
    training = pd.DataFrame({"age": rng.uniform(0, 30, 2000), "spend": rng.normal(50, 5, 2000)})
    baseline = compute_baseline(training, [Spec("age", drift_monitored=False), Spec("spend")])
    later = pd.DataFrame({"age": rng.uniform(60, 90, 500), "spend": rng.normal(50, 5, 500)})
    report = drift.compute_drift(baseline, [later], 0.2)
    assert report["features"]["age"]["psi"] > 1.0, "the shift is still measured and reported"
    assert report["unmonitored_features"] == ["age"]
    assert report["drifted_features"] == [] and report["max_psi_feature"] == "spend"
    assert report["max_psi"] < 0.2
