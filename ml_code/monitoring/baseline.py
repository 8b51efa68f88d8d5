"""Training baseline statistics: the reference that drift monitoring compares live traffic with.

Training writes ``baseline.json`` beside the model; the drift job reads it. The statistics are
*mergeable*: every stored number is either a sufficient statistic that adds across shards
(bin counts, category counts, counts, sums, min/max) or is derived from those by one function,
so ``merge_baselines(compute(a, reference=r), compute(b, reference=r))`` equals
``compute(concat(a, b), reference=r)``. A sharded job computes bin edges and categories once
(the first shard or a sample), then passes that baseline as ``reference`` to every shard.

Format (``version`` 1)::

    {
      "format": "mlops-kit/baseline", "version": 1,
      "row_count": 1000,                      # rows seen, missing values included
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
          }
        },
        "<categorical name>": {
          "kind": "categorical", "dtype": "String" | "Integral",
          "categories": ["a", "b", ...],      # the most frequent training values, as strings
          "category_counts": {"a": 500, "b": 300, "__other__": 190},
          "count": 990, "missing": 10,
          "frequencies": {"a": 0.505, ...}    # category_counts / count
        }
      }
    }

Interior bin edges are the training deciles (``n_bins`` quantile bins), so each interior bin
holds about the same share of training rows (ties merge edges, so an integer feature with five
values gets five bins); values outside the training range land in the open outer bins, which
hold no training rows. Quantiles are given at the bin edges only, where the histogram knows
them exactly: a quantile between edges cannot survive an exact merge. Float sums are equal
across merge orders up to rounding.
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
VERSION = 1
OTHER = "__other__"


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


def compute_baseline(
    df: pd.DataFrame,
    features: Sequence[FeatureSpec],
    *,
    reference: Mapping[str, Any] | None = None,
    n_bins: int = 10,
    max_categories: int = 50,
) -> dict[str, Any]:
    """Baseline statistics of ``features`` over ``df`` (see the module docstring for the format).

    ``reference``: a baseline whose bin edges and categories are reused, so baselines of
    several shards merge exactly. Without it, edges are the ``n_bins`` training quantiles and
    categories the ``max_categories`` most frequent values.
    """
    if n_bins < 1 or max_categories < 1:
        raise ValueError(f"n_bins and max_categories must be >= 1, got {n_bins}, {max_categories}")
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
            stats[feature.name] = _numeric_stats(feature, df[feature.name], ref, n_bins)
        elif feature.kind == "categorical":
            stats[feature.name] = _categorical_stats(feature, df[feature.name], ref, max_categories)
        else:
            raise ValueError(
                f"feature {feature.name!r} has kind {feature.kind!r}; expected 'numeric' or "
                "'categorical'"
            )
        stats[feature.name]["drift_monitored"] = bool(getattr(feature, "drift_monitored", True))
    return _finalise({"row_count": int(len(df)), "features": stats})


def _numeric_stats(
    feature: FeatureSpec, column: pd.Series, ref: Mapping[str, Any] | None, n_bins: int
) -> dict[str, Any]:
    x = pd.to_numeric(column, errors="raise").to_numpy(dtype=float, na_value=np.nan)
    finite = x[np.isfinite(x)]
    if ref is not None:
        edges = np.asarray(ref["bin_edges"], dtype=float)
    elif finite.size == 0:
        raise ValueError(f"feature {feature.name!r} has no finite values to derive bin edges from")
    else:
        quantiles = np.quantile(finite, np.linspace(0.0, 1.0, n_bins + 1))
        edges = np.append(np.unique(quantiles[:-1]), np.nextafter(quantiles[-1], np.inf))
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
    return _finalise({"row_count": a["row_count"] + b["row_count"], "features": merged})


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
    """Read a baseline written by :func:`write_baseline`, refusing other formats or versions."""
    baseline = json.loads(Path(path).read_text(encoding="utf-8"))
    if baseline.get("format") != FORMAT or baseline.get("version") != VERSION:
        raise ValueError(
            f"{path}: not a {FORMAT} v{VERSION} file (format={baseline.get('format')!r}, "
            f"version={baseline.get('version')!r})"
        )
    return baseline
