"""Feature drift of captured traffic against the training baseline (a processing-job script).

Per model feature, the window's values are counted into the baseline's own buckets (the bins of
a numeric feature, the categories plus "other" of a categorical one, plus a "missing" bucket:
a value the model sees as missing, such as an unknown category, is drift too). Counts add, so
the window is streamed in chunks and memory stays flat however long it is; chunked and one-shot
results are identical, and shards of one window merge exactly (split them between requests).

**The decision accounts for sample size.** Rows are clustered: the ~25-40 candidate rows of a
ranking request share one customer's features, so the window holds about one independent
observation per request, not per row. The effective sample sizes are the window's clusters
``n`` (runs of rows of one customer, i.e. requests; every row when rows carry no
``customer_id``) and the baseline's ``m`` (its ``clusters``, one per customer and cut-off) for
customer features (``per_cluster`` in the baseline); item and pair features take a different
value on each row of a request, so for them ``n`` and ``m`` are the rows.
Then, per feature, with p = window shares and q = baseline shares:

1. **Buckets with enough data.** Adjacent numeric bins (in value order; the empty outer bins
   join their neighbours) and rare categories (into "other") are merged until every bucket
   expects at least ``MIN_EXPECTED_COUNT`` (5) of the ``n`` clusters, the usual condition for
   the chi-square approximation below. The merge depends only on the baseline and ``n``, so it
   is the same for any chunking or sharding of the window.
2. **PSI** = sum((p - q) * ln(p / q)) over those buckets, shares floored at 1e-4 so empty
   buckets stay finite (``psi_raw`` in the report).
3. **Noise-corrected PSI** (``psi``, the published value) = max(0, PSI - d * (1/n + 1/m)),
   where d is the number of buckets minus one. Without change, n * m / (n + m) * PSI is
   approximately chi-square with d degrees of freedom, so d * (1/n + 1/m) is the PSI that
   sampling noise alone adds on average (about 0.06 for 140 requests and 10 buckets). The
   corrected value estimates the population PSI; the threshold (default 0.2, the usual
   "significant shift") is an effect-size floor on that estimate. ``p_value`` (the chi-square
   tail of the raw PSI) is reported alongside, not used by the alarm.

A feature drifts when its corrected PSI exceeds the threshold and it is monitored (features
that move with the calendar by construction are reported but never alarm; see
``drift_monitored`` in :mod:`ml_code.features.definitions`). The report carries the max
corrected PSI over monitored features. Also reported: the **Jensen-Shannon distance** (base 2)
and, for numeric features, **KS** at the baseline's bin edges with its asymptotic p-value,
both on the unmerged buckets and row counts (descriptive; rows are not independent).

Published metrics (namespace and names in :mod:`ml_code.monitoring.metrics`):

=========================  =========================  ==========================================
Metric                     Dimensions                 Value
=========================  =========================  ==========================================
``feature_drift_max_psi``  Endpoint, Model            largest noise-corrected PSI over the
                                                      monitored model features
``feature_drift_psi``      Endpoint, Model, Feature   noise-corrected PSI of that feature
=========================  =========================  ==========================================

The window is the requests captured in the ``--window-days`` before ``--window-end`` (by their
inference time; default: everything under ``--capture``). A window of fewer than
``--min-requests`` requests gets a report but no metrics: with a handful of customers even the
corrected PSI is mostly noise, and an alarm on it would retrain for nothing. The alarm sees
missing data instead.

Run: ``python -m ml_code.monitoring.drift --baseline PATH --capture DIR --output DIR
[--threshold 0.2] [--window-days 7] [--window-end ISO] [--min-requests 100]
[--endpoint NAME --model NAME] [--publish]``; writes ``DIR/drift_report.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a file, as SageMaker does
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse  # noqa: E402
import json  # noqa: E402
from collections.abc import Iterable, Mapping  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.spatial.distance import jensenshannon  # noqa: E402
from scipy.special import rel_entr  # noqa: E402
from scipy.stats import chi2, kstwo  # noqa: E402

from ml_code.monitoring.baseline import (  # noqa: E402
    CLUSTER_COLUMN,
    OTHER,
    category_counts,
    category_keys,
    cluster_runs,
    clusters,
    numeric_bin_counts,
    read_baseline,
)
from ml_code.monitoring.captures import ReadStats, iter_feature_chunks  # noqa: E402
from ml_code.monitoring.metrics import (  # noqa: E402
    DEFAULT_PSI_THRESHOLD,
    DIMENSION_FEATURE,
    FEATURE_DRIFT_MAX_PSI,
    FEATURE_DRIFT_PSI,
    Datum,
    cloudwatch_request,
    parse_window_end,
    put,
)

REPORT_FILE = "drift_report.json"
SHARE_FLOOR = 1e-4
MIN_EXPECTED_COUNT = 5.0


class DriftAccumulator:
    """Per-feature bucket counts and the cluster count of a window, fed chunk by chunk
    (``update``) in row order, and mergeable across shards that split between clusters."""

    def __init__(self, baseline: Mapping[str, Any]) -> None:
        self.baseline = baseline
        self.rows = 0
        self.clusters = 0
        self._last_key: Any = None
        self.counts: dict[str, np.ndarray] = {
            name: np.zeros(_bucket_count(stats), dtype=np.int64)
            for name, stats in baseline["features"].items()
        }

    def update(self, rows: pd.DataFrame) -> None:
        """Add a chunk of model rows; columns the baseline does not know are ignored."""
        missing = [name for name in self.counts if name not in rows.columns]
        if missing:
            raise ValueError(f"captured rows lack baseline features {missing}")
        self.rows += len(rows)
        if CLUSTER_COLUMN in rows.columns and len(rows):
            keys = rows[CLUSTER_COLUMN]
            self.clusters += cluster_runs(keys, self._last_key)
            self._last_key = keys.iloc[-1]
        else:
            self.clusters += len(rows)
            self._last_key = None
        for name, stats in self.baseline["features"].items():
            self.counts[name] += window_counts(rows[name], stats)

    def merge(self, other: DriftAccumulator) -> None:
        """Add another shard's counts (same baseline)."""
        self.rows += other.rows
        self.clusters += other.clusters
        for name in self.counts:
            self.counts[name] += other.counts[name]


def _bucket_count(stats: Mapping[str, Any]) -> int:
    if stats["kind"] == "numeric":
        return len(stats["bin_edges"]) + 2  # outer bins, interior bins, missing
    return len(stats["categories"]) + 2  # categories, other, missing


def window_counts(column: pd.Series, stats: Mapping[str, Any]) -> np.ndarray:
    """Counts of one column in the baseline's buckets, the missing bucket last."""
    if stats["kind"] == "numeric":
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        finite = np.isfinite(values)
        present = numeric_bin_counts(values[finite], stats["bin_edges"])
        return np.append(present, values.size - finite.sum())
    keys = category_keys(column)
    return np.append(category_counts(keys, stats["categories"]), int(keys.isna().sum()))


def baseline_counts(stats: Mapping[str, Any]) -> np.ndarray:
    """The baseline's counts in the same bucket order as :func:`window_counts`."""
    if stats["kind"] == "numeric":
        present = list(stats["bin_counts"])
    else:
        present = [stats["category_counts"][c] for c in [*stats["categories"], OTHER]]
    return np.asarray([*present, stats["missing"]], dtype=np.int64)


def psi(window: np.ndarray, reference: np.ndarray, floor: float = SHARE_FLOOR) -> float:
    """Population stability index of two count vectors over the same buckets."""
    p, q = (_floored_shares(c, floor) for c in (window, reference))
    return float(np.sum(rel_entr(p, q) + rel_entr(q, p)))


def _floored_shares(counts: np.ndarray, floor: float) -> np.ndarray:
    shares = np.maximum(counts / counts.sum(), floor)
    return shares / shares.sum()


def ks_from_counts(window: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """KS statistic at the bin edges and its asymptotic p-value (counts without missing)."""
    n, m = window.sum(), reference.sum()
    d = float(np.max(np.abs(np.cumsum(window)[:-1] / n - np.cumsum(reference)[:-1] / m)))
    effective = max(int(round(n * m / (n + m))), 1)
    return d, float(kstwo.sf(d, effective))


def decision_buckets(stats: Mapping[str, Any], reference: np.ndarray, n: int) -> np.ndarray:
    """For each raw bucket, the merged bucket the decision counts it in (step 1 above).

    The last raw bucket (missing) stays on its own: a model input gone missing is drift however
    rare it was in training.
    """
    present = reference[:-1].astype(float)
    share = present / present.sum() if present.sum() else np.zeros(present.size)
    need = MIN_EXPECTED_COUNT / max(n, 1)
    group = np.zeros(reference.size, dtype=np.int64)
    if stats["kind"] == "numeric":
        held, current = 0.0, 0
        for i in range(present.size):
            group[i] = current
            held += share[i]
            if held >= need and i + 1 < present.size:
                current, held = current + 1, 0.0
        if current and share[group[:-1] == current].sum() < need:
            group[:-1][group[:-1] == current] = current - 1  # short tail joins its neighbour
    else:
        other = present.size - 1
        kept = np.flatnonzero(share >= need)
        kept = kept[kept != other]
        group[:-1] = kept.size  # rare categories share the "other" bucket
        group[kept] = np.arange(kept.size)
    group[-1] = group[:-1].max() + 1
    return group


def feature_drift(
    name: str,
    stats: Mapping[str, Any],
    counts: np.ndarray,
    threshold: float,
    clusters: int | None = None,
    baseline_clusters: int | None = None,
) -> dict[str, Any]:
    """Drift statistics of one feature from its window counts (the decision above).

    ``clusters``/``baseline_clusters``: effective sample sizes of the window and the baseline
    (default: their rows, i.e. independent rows).
    """
    reference = baseline_counts(stats)
    n = int(counts.sum())
    result: dict[str, Any] = {
        "kind": stats["kind"],
        "rows": n,
        "missing_share": float(counts[-1] / n) if n else None,
        "baseline_missing_share": float(reference[-1] / reference.sum()),
        "monitored": bool(stats.get("drift_monitored", True)),
    }
    if n == 0:
        return {**result, "psi": None, "psi_raw": None, "js_distance": None, "drift": False}
    m = int(reference.sum())
    per_cluster = bool(stats.get("per_cluster", True))
    n_eff = max(min(clusters or n, n), 1) if per_cluster else n
    m_eff = max(min(baseline_clusters or m, m), 1) if per_cluster else m
    group = decision_buckets(stats, reference, n_eff)
    window = np.bincount(group, weights=counts, minlength=group.max() + 1)
    base = np.bincount(group, weights=reference, minlength=group.max() + 1)
    used = (window > 0) | (base > 0)
    raw = psi(window[used], base[used])
    dof = max(int(used.sum()) - 1, 1)
    scale = 1.0 / n_eff + 1.0 / m_eff
    corrected = max(raw - dof * scale, 0.0)
    result.update(
        psi=corrected,
        psi_raw=raw,
        psi_noise=dof * scale,
        p_value=float(chi2.sf(raw / scale, dof)),
        buckets=int(used.sum()),
        effective_rows=n_eff,
    )
    result["js_distance"] = float(jensenshannon(counts / n, reference / reference.sum(), base=2))
    if stats["kind"] == "numeric" and counts[:-1].sum() and reference[:-1].sum():
        ks, p_value = ks_from_counts(counts[:-1], reference[:-1])
        result.update(ks_statistic=ks, ks_pvalue=p_value)
    result["drift"] = bool(corrected > threshold) and result["monitored"]
    return result


def drift_report(
    accumulator: DriftAccumulator,
    threshold: float = DEFAULT_PSI_THRESHOLD,
    window: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The report: per-feature statistics, drifted features and the max PSI."""
    baseline = accumulator.baseline
    features = {
        name: feature_drift(
            name,
            stats,
            accumulator.counts[name],
            threshold,
            clusters=accumulator.clusters,
            baseline_clusters=clusters(baseline),
        )
        for name, stats in baseline["features"].items()
    }
    psis = {
        n: f["psi"]
        for n, f in features.items()
        if f["psi"] is not None and f.get("monitored", True)
    }
    return {
        "threshold": threshold,
        "rows": accumulator.rows,
        "clusters": accumulator.clusters,
        "baseline_clusters": clusters(baseline),
        "window": dict(window or {}),
        "max_psi": max(psis.values()) if psis else None,
        "max_psi_feature": max(psis, key=psis.__getitem__) if psis else None,
        "drift_detected": any(f["drift"] for f in features.values()),
        "drifted_features": sorted(n for n, f in features.items() if f["drift"]),
        "unmonitored_features": sorted(n for n, f in features.items() if not f["monitored"]),
        "features": features,
    }


def compute_drift(
    baseline: Mapping[str, Any],
    chunks: Iterable[pd.DataFrame],
    threshold: float = DEFAULT_PSI_THRESHOLD,
) -> dict[str, Any]:
    """Drift of rows fed as an iterable of DataFrames (one or many chunks give one answer)."""
    accumulator = DriftAccumulator(baseline)
    for chunk in chunks:
        accumulator.update(chunk)
    return drift_report(accumulator, threshold)


def drift_datums(report: Mapping[str, Any]) -> list[Datum]:
    """CloudWatch datums of a report; nothing for features with no rows in the window."""
    if report["max_psi"] is None:
        return []
    return [
        Datum(FEATURE_DRIFT_MAX_PSI, report["max_psi"]),
        *(
            Datum(FEATURE_DRIFT_PSI, f["psi"], {DIMENSION_FEATURE: name})
            for name, f in report["features"].items()
            if f["psi"] is not None
        ),
    ]


def run(
    baseline_path: str | Path,
    capture_dir: str | Path,
    output_dir: str | Path,
    *,
    threshold: float = DEFAULT_PSI_THRESHOLD,
    endpoint: str | None = None,
    model: str | None = None,
    publish_metrics: bool = False,
    window_end: datetime | None = None,
    window_days: float | None = None,
    min_requests: int = 0,
    chunk_rows: int = 50_000,
    cloudwatch: Any = None,
) -> dict[str, Any]:
    """The processing job: read, compare, write ``drift_report.json``, optionally publish."""
    if publish_metrics and not (endpoint and model):
        raise ValueError("--publish needs --endpoint and --model (the metric dimensions)")
    if window_days is not None and window_days <= 0:
        raise ValueError(f"--window-days must be positive, got {window_days}")
    baseline = read_baseline(baseline_path)
    window_end = window_end or datetime.now(UTC)
    window = None
    if window_days is not None:
        window = (window_end - timedelta(days=window_days), window_end)
    stats = ReadStats()
    accumulator = DriftAccumulator(baseline)
    for chunk in iter_feature_chunks(capture_dir, stats, chunk_rows, window=window):
        accumulator.update(chunk)
    report = {
        "endpoint": endpoint,
        "model": model,
        **drift_report(accumulator, threshold, stats.as_dict()),
    }
    report["window_end"] = window_end.isoformat()
    report["window_days"] = window_days
    report["too_few_requests"] = stats.records < min_requests
    if endpoint and model:
        datums = [] if report["too_few_requests"] else drift_datums(report)
        report["cloudwatch"] = cloudwatch_request(
            datums, endpoint=endpoint, model=model, timestamp=window_end
        )
    if publish_metrics:
        report["published_metrics"] = put(report["cloudwatch"], cloudwatch)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Feature drift of captured traffic.")
    parser.add_argument("--baseline", required=True, help="baseline.json written by training")
    parser.add_argument("--capture", required=True, help="directory of data-capture .jsonl files")
    parser.add_argument("--output", required=True, help="directory for drift_report.json")
    parser.add_argument("--threshold", type=float, default=DEFAULT_PSI_THRESHOLD)
    parser.add_argument("--endpoint")
    parser.add_argument("--model")
    parser.add_argument("--publish", action="store_true", help="put metrics to CloudWatch")
    parser.add_argument(
        "--window-end",
        default="now",
        help="ISO time the window ends, or now (the default); stamps metrics",
    )
    parser.add_argument(
        "--window-days",
        type=float,
        help="only requests captured in these days before --window-end (default: all)",
    )
    parser.add_argument(
        "--min-requests",
        type=int,
        default=0,
        help="publish no metrics for a window with fewer requests than this",
    )
    args = parser.parse_args(argv)
    report = run(
        args.baseline,
        args.capture,
        args.output,
        threshold=args.threshold,
        endpoint=args.endpoint,
        model=args.model,
        publish_metrics=args.publish,
        window_end=parse_window_end(args.window_end),
        window_days=args.window_days,
        min_requests=args.min_requests,
    )
    print(json.dumps({k: report[k] for k in ("rows", "max_psi", "drifted_features")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
