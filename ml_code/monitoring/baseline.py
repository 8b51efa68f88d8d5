"""Training baseline statistics: the reference that drift monitoring compares live traffic with.

Training writes ``baseline.json`` beside the model; the drift job reads it. The statistics are
*mergeable*: every stored number is either a sufficient statistic that adds across shards
(bin counts, category counts, counts, cluster counts, sums, min/max) or is derived from those by
one function, so ``merge_baselines(compute(a, reference=r), compute(b, reference=r))`` equals
``compute(concat(a, b), reference=r)``. A sharded job computes bin edges and categories once
(the first shard or a sample), then passes that baseline as ``reference`` to every shard; shards
split between clusters (below), as files of whole requests do.

The reference population should be the one the endpoint scores: every candidate row of the
training cut-offs, produced by the same candidate generation, so the only difference between
the baseline and a window without change is time and sampling.

Format (``version`` 2; version 1 files, without ``clusters``, are still read)::

    {
      "format": "mlops-kit/baseline", "version": 2,
      "row_count": 1000,                      # rows seen, missing values included
      "clusters": 40,                         # independent units among them (below)
      "features": {
        "<numeric name>": {
          "kind": "numeric", "dtype": "Fractional" | "Integral",
          "bin_edges": [e0, ..., ek],         # strictly increasing; e0 = training min,
                                              # ek = next float above training max
          "bin_counts": [c_below, c1, ..., ck, c_above],   # len(bin_edges) + 1
                                              # bin i (1..k) holds e(i-1) <= x < e(i);
                                              # the outer bins are open-ended
          "count": 990, "missing": 10,        # missing = NaN, None or +-inf
          "sum": ..., "sum_squares": ..., "min": ..., "max": ...,
          "mean": ..., "std": ...,            # population std; null when count == 0
          "quantiles": {                      # the empirical CDF at each bin edge:
            "values": [e0, ..., ek],          # probabilities[i] = share of count below
            "probabilities": [0.0, 0.1, ...]  # values[i]; exact, from the bin counts
          },
          "drift_monitored": true,            # false: reported, never alarms
          "per_cluster": true                 # a customer feature: one value per cluster
        },
        "<categorical name>": {
          "kind": "categorical", "dtype": "String" | "Integral",
          "categories": ["a", "b", ...],      # the most frequent training values, as strings
          "category_counts": {"a": 500, "b": 300, "__other__": 190},
          "count": 990, "missing": 10,
          "frequencies": {"a": 0.505, ...},   # category_counts / count
          "drift_monitored": true, "per_cluster": false
        }
      }
    }

**Bins respect point masses.** Interior bins group whole distinct training values, never part
of one: walking the sorted distinct values, a bin closes once it holds ``1 / n_bins`` of the
rows, and a value that alone holds that share starts a bin of its own. Every bin ends up with
at least ``min_share`` of the training rows (a short last bin merges into its neighbour), and
an edge sits halfway between two neighbouring training values, so an integer feature with a few
values is binned by value and a continuous one by (merged) deciles. Old edges at a point mass
moved several percent of the rows across the edge for one more purchase of a best seller.
Values outside the training range land in the open outer bins, which hold no training rows.

**Clusters.** Rows of one ranking request (one customer at one cut-off in training) share the
customer's features, so a customer feature carries one observation per request, not per row.
``clusters`` counts runs of equal ``cluster_column`` values in row order (``customer_id``: the
rows of a request, or of a customer at a cut-off, are contiguous); without the column every row
is its own cluster. The drift job reads it as the baseline's effective sample size of the
features marked ``per_cluster`` (customer features); item and pair features differ from row to
row within a request, so their rows count.

Quantiles are given at the bin edges only, where the histogram knows them exactly: a quantile
between edges cannot survive an exact merge. Float sums are equal across merge orders up to
rounding.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

FORMAT = "mlops-kit/baseline"
VERSION = 2
READABLE_VERSIONS = (1, 2)
OTHER = "__other__"
CLUSTER_COLUMN = "customer_id"
MIN_BIN_SHARE = 0.05
"""No interior bin holds less of the training rows than this: a bin of a share q sees about
q * n of a window's n clusters, and a sparse bin's share is mostly sampling noise."""


class FeatureSpec(Protocol):
    """What the baseline reads of a feature (``ml_code.features.definitions.Feature``)."""

    @property
    def name(self) -> str: ...

    @property
    def dtype(self) -> str: ...

    @property
    def kind(self) -> str: ...


def numeric_bin_counts(values: np.ndarray, bin_edges: Sequence[float]) -> np.ndarray:
    """Count finite ``values`` into the baseline's bins (``len(bin_edges) + 1`` counts).

    Shared by the baseline and the drift job so both sides bin identically.
    """
    edges = np.asarray(bin_edges, dtype=float)
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    return np.bincount(np.searchsorted(edges, x, side="right"), minlength=edges.size + 1)


def category_keys(values: pd.Series) -> pd.Series:
    """Normalise categorical values to the string keys the baseline stores (nulls stay null).

    Integer-valued numbers become ``"3"`` whether they arrive as ``3`` or ``3.0``, so a
    category read from JSON matches the one counted in a pandas column.
    """
    s = pd.Series(values, copy=False)
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("string").str.lower()
    if pd.api.types.is_numeric_dtype(s.dtype):
        f = s.astype(float)
        whole = f.dropna()
        if bool(np.all(np.isfinite(whole)) and np.all(whole == np.round(whole))):
            return f.astype("Int64").astype("string")
        return f.astype("string")
    out = s.astype("object").map(_category_key, na_action="ignore")
    return out.astype("string")


def _category_key(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def category_counts(keys: pd.Series, categories: Sequence[str]) -> np.ndarray:
    """Count non-null category keys into ``categories`` plus a final "other" bucket."""
    present = keys.dropna()
    codes = pd.Categorical(present, categories=list(categories)).codes
    codes = np.where(codes < 0, len(categories), codes)
    return np.bincount(codes, minlength=len(categories) + 1)


def cluster_runs(keys: pd.Series | None, previous: Any = None) -> int:
    """Runs of equal consecutive ``keys`` (a request's rows are one run), nulls each their own.

    ``previous`` is the key of the row before ``keys`` (from an earlier chunk), so a run that
    spans two chunks counts once; ``None`` (no key, or no earlier chunk) starts a new run.
    """
    if keys is None or len(keys) == 0:
        return 0
    values = pd.Series(keys, copy=False).astype(object).to_numpy()
    null = pd.isna(values)
    before = np.empty(len(values), dtype=object)
    before[0] = previous
    before[1:] = values[:-1]
    before_null = pd.isna(before)
    same = ~null & ~before_null & (values == before)
    return int(len(values) - same.sum())


def compute_baseline(
    df: pd.DataFrame,
    features: Sequence[FeatureSpec],
    *,
    reference: Mapping[str, Any] | None = None,
    n_bins: int = 10,
    max_categories: int = 50,
    min_share: float = MIN_BIN_SHARE,
    cluster_column: str | None = CLUSTER_COLUMN,
) -> dict[str, Any]:
    """Baseline statistics of ``features`` over ``df`` (see the module docstring for the format).

    ``reference``: a baseline whose bin edges and categories are reused, so baselines of
    several shards merge exactly. Without it, edges group the training values into at most
    ``n_bins`` bins of at least ``min_share`` each, and categories are the ``max_categories``
    most frequent values. ``cluster_column`` (when ``df`` has it) delimits the clusters.
    """
    if n_bins < 1 or max_categories < 1:
        raise ValueError(f"n_bins and max_categories must be >= 1, got {n_bins}, {max_categories}")
    if not 0.0 < min_share <= 1.0 / n_bins:
        raise ValueError(f"min_share must be in (0, 1 / n_bins], got {min_share}")
    missing_columns = [f.name for f in features if f.name not in df.columns]
    if missing_columns:
        raise ValueError(f"columns missing from the training data: {missing_columns}")
    ref_features = (reference or {}).get("features", {})
    stats: dict[str, Any] = {}
    for feature in features:
        ref = ref_features.get(feature.name)
        if ref is not None and ref["kind"] != feature.kind:
            raise ValueError(
                f"feature {feature.name!r} is {feature.kind} but the reference baseline has it "
                f"as {ref['kind']}"
            )
        if feature.kind == "numeric":
            stats[feature.name] = _numeric_stats(feature, df[feature.name], ref, n_bins, min_share)
        elif feature.kind == "categorical":
            stats[feature.name] = _categorical_stats(feature, df[feature.name], ref, max_categories)
        else:
            raise ValueError(
                f"feature {feature.name!r} has kind {feature.kind!r}; expected 'numeric' or "
                "'categorical'"
            )
        stats[feature.name]["drift_monitored"] = bool(getattr(feature, "drift_monitored", True))
        stats[feature.name]["per_cluster"] = getattr(feature, "group", None) == "customer"
    keys = df[cluster_column] if cluster_column and cluster_column in df.columns else None
    clusters = cluster_runs(keys) if keys is not None else int(len(df))
    return _finalise({"row_count": int(len(df)), "clusters": clusters, "features": stats})


def _numeric_stats(
    feature: FeatureSpec,
    column: pd.Series,
    ref: Mapping[str, Any] | None,
    n_bins: int,
    min_share: float,
) -> dict[str, Any]:
    x = pd.to_numeric(column, errors="raise").to_numpy(dtype=float, na_value=np.nan)
    finite = x[np.isfinite(x)]
    if ref is not None:
        edges = np.asarray(ref["bin_edges"], dtype=float)
    elif finite.size == 0:
        raise ValueError(f"feature {feature.name!r} has no finite values to derive bin edges from")
    else:
        edges = point_mass_edges(finite, n_bins, min_share)
    return {
        "kind": "numeric",
        "dtype": feature.dtype,
        "bin_edges": edges.tolist(),
        "bin_counts": numeric_bin_counts(finite, edges).tolist(),
        "count": int(finite.size),
        "missing": int(x.size - finite.size),
        "sum": float(finite.sum()),
        "sum_squares": float(np.square(finite).sum()),
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
    }


def point_mass_edges(values: np.ndarray, n_bins: int, min_share: float) -> np.ndarray:
    """Bin edges grouping whole distinct values (see "Bins respect point masses" above)."""
    distinct, counts = np.unique(values, return_counts=True)
    shares = counts / counts.sum()
    target = 1.0 / n_bins - 1e-9  # ten shares of 0.01 add up to a hair under 0.1
    starts = [0]  # index into distinct of each bin's first value
    held = 0.0
    for i, share in enumerate(shares):
        if share >= target and held >= min_share:
            starts.append(i)  # a point mass of its own: close the bin before it
            held = 0.0
        held += share
        if held >= target and i + 1 < distinct.size:
            starts.append(i + 1)
            held = 0.0
    if len(starts) > 1 and shares[starts[-1] :].sum() < min_share:
        starts.pop()  # a short last bin joins its neighbour
    interior = [(distinct[i - 1] + distinct[i]) / 2 for i in starts[1:]]
    return np.asarray([distinct[0], *interior, np.nextafter(distinct[-1], np.inf)], dtype=float)


def _categorical_stats(
    feature: FeatureSpec, column: pd.Series, ref: Mapping[str, Any] | None, max_categories: int
) -> dict[str, Any]:
    keys = category_keys(column)
    if ref is not None:
        categories = list(ref["categories"])
    else:
        counts = keys.value_counts(dropna=True)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        categories = [str(k) for k, _ in ranked[:max_categories]]
    counts = category_counts(keys, categories)
    return {
        "kind": "categorical",
        "dtype": feature.dtype,
        "categories": categories,
        "category_counts": dict(zip([*categories, OTHER], counts.tolist(), strict=True)),
        "count": int(counts.sum()),
        "missing": int(keys.isna().sum()),
    }


def merge_baselines(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Combine two baselines over disjoint rows as if computed over their union.

    Both must share features, bin edges and categories (compute shards with ``reference``).
    """
    if set(a["features"]) != set(b["features"]):
        raise ValueError(
            f"baselines cover different features: {sorted(a['features'])} vs "
            f"{sorted(b['features'])}"
        )
    merged: dict[str, Any] = {}
    for name, fa in a["features"].items():
        fb = b["features"][name]
        if fa["kind"] != fb["kind"]:
            raise ValueError(
                f"feature {name!r} is {fa['kind']} in one baseline, {fb['kind']} in the other"
            )
        if fa["kind"] == "numeric":
            merged[name] = _merge_numeric(name, fa, fb)
        else:
            merged[name] = _merge_categorical(name, fa, fb)
        merged[name]["drift_monitored"] = fa.get("drift_monitored", True)
        merged[name]["per_cluster"] = fa.get("per_cluster", True)
    return _finalise(
        {
            "row_count": a["row_count"] + b["row_count"],
            "clusters": clusters(a) + clusters(b),
            "features": merged,
        }
    )


def clusters(baseline: Mapping[str, Any]) -> int:
    """The baseline's independent units; a version 1 file counted none, so rows stand in."""
    return int(baseline.get("clusters", baseline["row_count"]))


def _merge_numeric(name: str, fa: Mapping[str, Any], fb: Mapping[str, Any]) -> dict[str, Any]:
    if fa["bin_edges"] != fb["bin_edges"]:
        raise ValueError(
            f"feature {name!r}: bin edges differ between baselines; compute every shard with "
            "compute_baseline(..., reference=<one baseline>) so the bins match"
        )
    present = [v for v in (fa, fb) if v["count"] > 0]
    return {
        "kind": "numeric",
        "dtype": fa["dtype"],
        "bin_edges": list(fa["bin_edges"]),
        "bin_counts": (np.add(fa["bin_counts"], fb["bin_counts"])).tolist(),
        "count": fa["count"] + fb["count"],
        "missing": fa["missing"] + fb["missing"],
        "sum": fa["sum"] + fb["sum"],
        "sum_squares": fa["sum_squares"] + fb["sum_squares"],
        "min": min(v["min"] for v in present) if present else None,
        "max": max(v["max"] for v in present) if present else None,
    }


def _merge_categorical(name: str, fa: Mapping[str, Any], fb: Mapping[str, Any]) -> dict[str, Any]:
    if fa["categories"] != fb["categories"]:
        raise ValueError(
            f"feature {name!r}: categories differ between baselines; compute every shard with "
            "compute_baseline(..., reference=<one baseline>) so the categories match"
        )
    keys = [*fa["categories"], OTHER]
    return {
        "kind": "categorical",
        "dtype": fa["dtype"],
        "categories": list(fa["categories"]),
        "category_counts": {k: fa["category_counts"][k] + fb["category_counts"][k] for k in keys},
        "count": fa["count"] + fb["count"],
        "missing": fa["missing"] + fb["missing"],
    }


def _finalise(body: dict[str, Any]) -> dict[str, Any]:
    """Add the derived fields; the single place they are computed, so merges stay exact."""
    for stats in body["features"].values():
        n = stats["count"]
        if stats["kind"] == "numeric":
            mean = stats["sum"] / n if n else None
            var = max(stats["sum_squares"] / n - mean * mean, 0.0) if n else None
            stats["mean"] = mean
            stats["std"] = math.sqrt(var) if var is not None else None
            stats["quantiles"] = {
                "values": list(stats["bin_edges"]),
                "probabilities": edge_cdf(stats).tolist(),
            }
        else:
            stats["frequencies"] = {
                k: (c / n if n else 0.0) for k, c in stats["category_counts"].items()
            }
    return {"format": FORMAT, "version": VERSION, **body}


def edge_cdf(stats: Mapping[str, Any]) -> np.ndarray:
    """Share of a numeric feature's finite values strictly below each bin edge."""
    counts = np.asarray(stats["bin_counts"], dtype=float)
    total = counts.sum()
    return np.cumsum(counts)[:-1] / total if total else np.zeros(counts.size - 1)


def write_baseline(baseline: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``baseline`` as JSON (floats round-trip exactly)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(baseline, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return out


def read_baseline(path: str | Path) -> dict[str, Any]:
    """Read a baseline written by :func:`write_baseline`, refusing other formats or versions.

    A version 1 file (quantile edges, no cluster count) is read as it is: its drift is judged
    with rows as clusters until the model is retrained.
    """
    baseline = json.loads(Path(path).read_text(encoding="utf-8"))
    if baseline.get("format") != FORMAT or baseline.get("version") not in READABLE_VERSIONS:
        raise ValueError(
            f"{path}: not a {FORMAT} v{VERSION} file (format={baseline.get('format')!r}, "
            f"version={baseline.get('version')!r}; readable versions {list(READABLE_VERSIONS)})"
        )
    return baseline
