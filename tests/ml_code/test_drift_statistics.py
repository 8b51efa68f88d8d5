"""Drift statistics on clustered candidate rows with point masses, made in the test.

The shape mimics what the endpoint scores: each ranking request carries ~25 candidate rows that
share one customer's features, and every request includes the same few best sellers, so an
item's purchase count is a handful of point masses holding a large share of the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from ml_code.monitoring import drift
from ml_code.monitoring.baseline import compute_baseline, merge_baselines, point_mass_edges

THRESHOLD = 0.2
CANDIDATES = 25


@dataclass(frozen=True)
class Spec:
    name: str
    dtype: str
    kind: str
    group: str
    drift_monitored: bool = True


FEATURES = (
    Spec("segment", "String", "categorical", "customer"),
    Spec("frequency_28d", "Integral", "numeric", "customer"),
    Spec("spend", "Fractional", "numeric", "customer"),
    Spec("popularity", "Integral", "numeric", "item"),
    Spec("price", "Fractional", "numeric", "item"),
)


def requests(n: int, seed: int, *, shifted: bool = False) -> pd.DataFrame:
    """Rows of ``n`` ranking requests. Best sellers (8 of 25 candidates) have counts 40..47,
    which move by one purchase between samples; ``shifted`` moves customers to a new mix."""
    rng = np.random.default_rng(seed)
    mix = [0.5, 0.3, 0.2]
    customers = pd.DataFrame(
        {
            "customer_id": [f"C{seed}-{i}" for i in range(n)],
            "segment": rng.choice(["a", "b", "c"], n, p=[0.1, 0.3, 0.6] if shifted else mix),
            "frequency_28d": rng.poisson(4.0 if shifted else 2.0, n),
            "spend": rng.gamma(2.0, 45.0 if shifted else 30.0, n),
        }
    )
    best = 40 + np.arange(8) + rng.integers(-1, 2, 8)  # one purchase more or less
    rows = customers.loc[customers.index.repeat(CANDIDATES)].reset_index(drop=True)
    tail = rng.poisson(6.0, (n, CANDIDATES - 8))
    rows["popularity"] = np.hstack([np.tile(best, (n, 1)), tail]).ravel().astype(float)
    rows["price"] = rng.lognormal(3.0, 0.5, len(rows)).round(2)
    return rows


@pytest.fixture(scope="module")
def baseline() -> dict:
    return compute_baseline(requests(2000, seed=1), FEATURES)


def test_point_masses_get_bins_of_their_own_and_edges_sit_between_values() -> None:
    continuous = np.tile(np.arange(3.0, 103.0), 3)
    values = np.r_[np.full(300, 29.0), np.repeat([0.0, 1.0, 2.0], 200), continuous]
    edges = point_mass_edges(values, n_bins=10, min_share=0.05)
    at = int(np.searchsorted(edges, 29.0))
    assert (edges[at - 1], edges[at]) == (28.5, 29.5)  # the mass at 29 has a bin of its own
    assert {0.5, 1.5} <= set(edges)  # integers binned by value, edges halfway between values
    counts = np.histogram(values, edges)[0]
    assert counts.min() >= 0.05 * values.size


def test_no_change_sample_with_point_masses_stays_below_threshold(baseline: dict) -> None:
    """140 requests (20 a day for a week) of the same population, best sellers one purchase
    apart from training: old quantile bins on those masses read this as drift."""
    for seed in range(2, 7):
        report = drift.compute_drift(baseline, [requests(140, seed=seed)], THRESHOLD)
        assert report["clusters"] == 140
        assert report["max_psi"] < THRESHOLD / 2, (seed, report["max_psi_feature"])
        assert not report["drift_detected"]


def test_shifted_sample_crosses_the_threshold(baseline: dict) -> None:
    report = drift.compute_drift(baseline, [requests(140, seed=8, shifted=True)], THRESHOLD)
    assert report["max_psi"] > THRESHOLD
    assert {"segment", "frequency_28d"} <= set(report["drifted_features"])
    assert "popularity" not in report["drifted_features"]
    segment = report["features"]["segment"]
    assert segment["p_value"] < 1e-6 and segment["psi"] < segment["psi_raw"]


def test_customer_features_count_requests_not_rows(baseline: dict) -> None:
    """The noise allowance of a customer feature uses the number of requests: rows repeat the
    customer's value ~25 times and add no information."""
    report = drift.compute_drift(baseline, [requests(140, seed=9)], THRESHOLD)
    spend, price = report["features"]["spend"], report["features"]["price"]
    assert spend["effective_rows"] == 140 and price["effective_rows"] == 140 * CANDIDATES
    assert spend["psi_noise"] > 10 * price["psi_noise"]


def test_chunked_and_sharded_windows_equal_one_pass(baseline: dict) -> None:
    rows = requests(300, seed=10, shifted=True)
    whole = drift.compute_drift(baseline, [rows], THRESHOLD)
    # Chunks cut through requests: a request split across chunks still counts once.
    pieces = (rows.iloc[i : i + 37] for i in range(0, len(rows), 37))
    chunked = drift.compute_drift(baseline, pieces, THRESHOLD)
    assert chunked == whole
    cut = 120 * CANDIDATES  # shards split between requests, as files of whole requests do
    shard_a, shard_b = drift.DriftAccumulator(baseline), drift.DriftAccumulator(baseline)
    shard_a.update(rows.iloc[:cut])
    shard_b.update(rows.iloc[cut:])
    shard_a.merge(shard_b)
    assert drift.drift_report(shard_a, THRESHOLD) == whole


def test_baseline_shards_merge_with_their_clusters(baseline: dict) -> None:
    rows = requests(600, seed=11)
    union = compute_baseline(rows, FEATURES, reference=baseline)
    merged = merge_baselines(
        compute_baseline(rows.iloc[: 250 * CANDIDATES], FEATURES, reference=baseline),
        compute_baseline(rows.iloc[250 * CANDIDATES :], FEATURES, reference=baseline),
    )
    assert merged["clusters"] == union["clusters"] == 600
    assert merged["row_count"] == union["row_count"] == 600 * CANDIDATES
    for name, stats in union["features"].items():
        key = "bin_counts" if stats["kind"] == "numeric" else "category_counts"
        assert merged["features"][name][key] == stats[key], name
