"""Feature drift of captured traffic against the training baseline (a processing-job script).

Per model feature, the window's values are counted into the baseline's own buckets (the bins of
a numeric feature, the categories plus "other" of a categorical one, plus a "missing" bucket:
a value the model sees as missing, such as an unknown category, is drift too). Counts add, so
the window is streamed in chunks and memory stays flat however long it is; chunked and one-shot
results are identical. Statistics, with p = window shares and q = baseline shares:

* **PSI** = sum((p - q) * ln(p / q)), shares floored at 1e-4 so empty buckets stay finite.
  Rule of thumb: < 0.1 stable, 0.1-0.2 moderate, > 0.2 (the default threshold) drifted.
* **Jensen-Shannon distance** (base 2, in [0, 1]) on the unfloored shares.
* **KS** (numeric only): max |F_window - F_baseline| over the baseline's bin edges, where both
  empirical CDFs are known exactly. It is a lower bound on the two-sample KS statistic of the
  raw values (exact when every value sits on an edge, e.g. integer features with few values);
  its p-value uses the asymptotic two-sample distribution with n*m/(n+m) as sample size.

A feature drifts when its PSI exceeds the threshold; the report carries the max PSI overall.
Published metrics (namespace and names in :mod:`ml_code.monitoring.metrics`):

=========================  =========================  ==================================
Metric                     Dimensions                 Value
=========================  =========================  ==================================
``feature_drift_max_psi``  Endpoint, Model            largest PSI over the model features
``feature_drift_psi``      Endpoint, Model, Feature   PSI of that feature
=========================  =========================  ==================================

The window is the requests captured in the ``--window-days`` before ``--window-end`` (by their
inference time; default: everything under ``--capture``). A window of fewer than
``--min-requests`` requests gets a report but no metrics: the PSI of a handful of customers
measures sampling noise (about 1 for 30 ranking requests), and an alarm on it would retrain for
nothing. The alarm sees missing data instead.

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
from scipy.stats import kstwo  # noqa: E402

from ml_code.monitoring.baseline import (  # noqa: E402
    OTHER,
    category_counts,
    category_keys,
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


class DriftAccumulator:
    """Per-feature bucket counts of a window, fed chunk by chunk (``update``) and mergeable."""

    def __init__(self, baseline: Mapping[str, Any]) -> None:
        self.baseline = baseline
        self.rows = 0
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
        for name, stats in self.baseline["features"].items():
            self.counts[name] += window_counts(rows[name], stats)

    def merge(self, other: DriftAccumulator) -> None:
        """Add another shard's counts (same baseline)."""
        self.rows += other.rows
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


def feature_drift(
    name: str, stats: Mapping[str, Any], counts: np.ndarray, threshold: float
) -> dict[str, Any]:
    """Drift statistics of one feature from its window counts."""
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
        return {**result, "psi": None, "js_distance": None, "drift": False}
    value = psi(counts, reference)
    result["psi"] = value
    result["js_distance"] = float(jensenshannon(counts / n, reference / reference.sum(), base=2))
    if stats["kind"] == "numeric" and counts[:-1].sum() and reference[:-1].sum():
        ks, p_value = ks_from_counts(counts[:-1], reference[:-1])
        result.update(ks_statistic=ks, ks_pvalue=p_value)
    result["drift"] = bool(value > threshold) and result["monitored"]
    return result


def drift_report(
    accumulator: DriftAccumulator,
    threshold: float = DEFAULT_PSI_THRESHOLD,
    window: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The report: per-feature statistics, drifted features and the max PSI."""
    features = {
        name: feature_drift(name, stats, accumulator.counts[name], threshold)
        for name, stats in accumulator.baseline["features"].items()
    }
    psis = {
        n: f["psi"]
        for n, f in features.items()
        if f["psi"] is not None and f.get("monitored", True)
    }
    return {
        "threshold": threshold,
        "rows": accumulator.rows,
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
