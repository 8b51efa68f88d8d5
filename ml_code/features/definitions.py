"""The feature contract shared by training, the endpoint and the feature store.

Training-set building and the endpoint both turn (customer features, candidate item features)
into model rows through :func:`score_rows`, so the two cannot skew. The Pulumi FeatureStore
component reads :func:`feature_group_schema` to declare the SageMaker FeatureGroups.

Customer and item features are computed at a cut-off from the ``LOOKBACK_DAYS`` days before it
(``ml_code.features.compute``); pair features are derived from one customer row and one item row,
so they need nothing beyond what the two feature groups store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml_code.data.schema import CATEGORIES, SEGMENTS

ID_COLUMNS: tuple[str, str] = ("customer_id", "item_id")
EVENT_TIME_COLUMN = "event_time"
LABEL_COLUMN = "label"

LOOKBACK_DAYS = 28
RECENT_DAYS = 7
LABEL_HORIZON_DAYS = 7
PRICE_BANDS: tuple[str, ...] = ("low", "mid", "high", "premium")


@dataclass(frozen=True)
class Feature:
    """One feature: its store type, how the model treats it and which record holds it."""

    name: str
    dtype: str  # "Integral" | "Fractional" | "String" (SageMaker Feature Store FeatureType)
    kind: str  # "numeric" | "categorical"
    group: str  # "customer" | "item" | "pair"
    description: str
    drift_monitored: bool = True
    """False for features that move with the calendar by construction (an item's age), and for
    item purchase counts: every candidate list carries the same few best sellers, so these
    features are a few dozen items' counts, which random-walk from day to day. On no-change
    worlds (``benchmarks/drift_calibration.py``, 5 seeds, 30 days) their noise-corrected PSI
    reached 0.77 (``popularity_28d``), 0.66 (``popularity_7d``) and 0.32
    (``conversion_rate_28d``); every monitored feature stayed below 0.17. Their drift measures
    time passing, not customers changing, so it is reported but must not start a retrain."""


def _affinity(category: str, recent: bool) -> Feature:
    window = RECENT_DAYS if recent else LOOKBACK_DAYS
    prefix = "recent_affinity" if recent else "affinity"
    return Feature(
        f"{prefix}_{category}",
        "Fractional",
        "numeric",
        "customer",
        f"Share of the customer's weighted interactions (view 1, cart 3, purchase 5) in "
        f"'{category}' over the last {window} days, smoothed towards uniform.",
    )


CUSTOMER_FEATURES: tuple[Feature, ...] = (
    Feature("segment", "String", "categorical", "customer", "Customer segment."),
    Feature(
        "recency_days",
        "Fractional",
        "numeric",
        "customer",
        f"Days from the last purchase to the cut-off; {LOOKBACK_DAYS + 1} when none in window.",
    ),
    Feature(
        "frequency_28d",
        "Integral",
        "numeric",
        "customer",
        f"Purchase events in the last {LOOKBACK_DAYS} days.",
    ),
    Feature(
        "monetary_28d",
        "Fractional",
        "numeric",
        "customer",
        f"Spend (price x quantity) in the last {LOOKBACK_DAYS} days.",
    ),
    Feature(
        "avg_purchase_price",
        "Fractional",
        "numeric",
        "customer",
        "Typical unit price the customer pays (viewed prices when no purchase yet).",
    ),
    Feature("views_7d", "Integral", "numeric", "customer", "Views in the last 7 days."),
    Feature(
        "views_28d",
        "Integral",
        "numeric",
        "customer",
        f"Views in the last {LOOKBACK_DAYS} days.",
    ),
    *(_affinity(c, recent=False) for c in CATEGORIES),
    *(_affinity(c, recent=True) for c in CATEGORIES),
)

ITEM_FEATURES: tuple[Feature, ...] = (
    Feature("category", "String", "categorical", "item", "Catalogue category."),
    Feature("price", "Fractional", "numeric", "item", "Latest observed unit price."),
    Feature(
        "price_band",
        "String",
        "categorical",
        "item",
        "Price relative to its category's median: low < 0.75 <= mid < 1.0 <= high < 1.35 "
        "<= premium.",
    ),
    Feature(
        "popularity_7d",
        "Integral",
        "numeric",
        "item",
        "Purchases in the last 7 days.",
        drift_monitored=False,
    ),
    Feature(
        "popularity_28d",
        "Integral",
        "numeric",
        "item",
        f"Purchases in the last {LOOKBACK_DAYS} days.",
        drift_monitored=False,
    ),
    Feature(
        "conversion_rate_28d",
        "Fractional",
        "numeric",
        "item",
        "Purchases per view over the window, smoothed (new items are not penalised to zero).",
        drift_monitored=False,
    ),
    Feature(
        "item_age_days",
        "Integral",
        "numeric",
        "item",
        "Days since the item was listed.",
        drift_monitored=False,
    ),
)

PAIR_FEATURES: tuple[Feature, ...] = (
    Feature(
        "category_affinity",
        "Fractional",
        "numeric",
        "pair",
        "The customer's affinity to the item's category (long window).",
    ),
    Feature(
        "recent_category_affinity",
        "Fractional",
        "numeric",
        "pair",
        "The customer's affinity to the item's category (last 7 days).",
    ),
    Feature(
        "price_ratio",
        "Fractional",
        "numeric",
        "pair",
        "Item price over the customer's typical unit price.",
    ),
)

MODEL_FEATURES: tuple[str, ...] = (
    "segment",
    "recency_days",
    "frequency_28d",
    "monetary_28d",
    "avg_purchase_price",
    "views_28d",
    "category",
    "price",
    "price_band",
    "popularity_7d",
    "popularity_28d",
    "conversion_rate_28d",
    "item_age_days",
    "category_affinity",
    "recent_category_affinity",
    "price_ratio",
)

CATEGORY_VOCABULARIES: dict[str, tuple[str, ...]] = {
    "segment": SEGMENTS,
    "category": CATEGORIES,
    "price_band": PRICE_BANDS,
}

ALL_FEATURES: dict[str, Feature] = {
    f.name: f for f in (*CUSTOMER_FEATURES, *ITEM_FEATURES, *PAIR_FEATURES)
}
_GROUPS = {"customer": CUSTOMER_FEATURES, "item": ITEM_FEATURES}
_RECORD_IDS = {"customer": "customer_id", "item": "item_id"}


def model_features() -> tuple[Feature, ...]:
    """The Feature objects of MODEL_FEATURES, in model column order."""
    return tuple(ALL_FEATURES[name] for name in MODEL_FEATURES)


def feature_group_schema(group: str) -> list[dict]:
    """Feature definitions of a SageMaker FeatureGroup: record id, event time, then features.

    Only "customer" and "item" are stored; pair features are derived at scoring time.
    """
    if group not in _GROUPS:
        raise ValueError(
            f"feature group {group!r} is not stored; use one of {sorted(_GROUPS)} "
            "(pair features are derived by score_rows)"
        )
    return [
        {"FeatureName": _RECORD_IDS[group], "FeatureType": "String"},
        {"FeatureName": EVENT_TIME_COLUMN, "FeatureType": "String"},
        *({"FeatureName": f.name, "FeatureType": f.dtype} for f in _GROUPS[group]),
    ]


def score_rows(customer: Mapping | pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Model input rows (ID_COLUMNS + MODEL_FEATURES) for customers and candidate items.

    ``customer`` is one customer's feature record (a mapping, e.g. a feature-store record whose
    values may be strings) or a DataFrame of customer feature rows. ``items`` holds item feature
    rows; when it also has a ``customer_id`` column it is a list of (customer, item) pairs and is
    joined to the customers, otherwise every customer is paired with every item. Values are
    coerced to the model's types: numeric features as float64, categorical ones as pandas
    categoricals over CATEGORY_VOCABULARIES (unknown values become missing).
    """
    customers = pd.DataFrame([dict(customer)]) if isinstance(customer, Mapping) else customer
    missing = [c for c in ("customer_id",) if c not in customers.columns] + [
        c for c in ("item_id", "category", "price") if c not in items.columns
    ]
    if missing:
        raise ValueError(
            f"score_rows needs columns {missing}; got customer columns "
            f"{list(customers.columns)} and item columns {list(items.columns)}"
        )
    customer_cols = [f.name for f in CUSTOMER_FEATURES if f.name in customers.columns]
    item_cols = [f.name for f in ITEM_FEATURES if f.name in items.columns]
    left = customers[["customer_id", *customer_cols]].drop_duplicates("customer_id")
    if "customer_id" in items.columns:
        rows = items[["customer_id", "item_id", *item_cols]].merge(
            left, on="customer_id", how="left"
        )
    else:
        rows = left.merge(items[["item_id", *item_cols]], how="cross")
    rows = rows.reset_index(drop=True)
    # One frame built from whole columns: per-column assignment costs more than the scoring of
    # a single request's rows.
    numeric = {
        name: pd.to_numeric(rows[name], errors="coerce").astype("float64")
        for name in (*customer_cols, *item_cols)
        if ALL_FEATURES[name].kind == "numeric"
    }
    rows = pd.DataFrame({**{c: rows[c] for c in rows.columns}, **numeric}, index=rows.index)
    rows = pd.DataFrame({**{c: rows[c] for c in rows.columns}, **_pair_features(rows)})

    ids = {c: rows[c].astype("string").astype(object) for c in ID_COLUMNS}
    return pd.DataFrame({**ids, **model_frame(rows)}, index=rows.index)


def model_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The MODEL_FEATURES columns of ``rows`` in model order and types (missing ones as NaN).

    Numeric features become float64 and categorical ones pandas categoricals over
    CATEGORY_VOCABULARIES, so a frame read back from CSV, Parquet or JSON scores the same.
    """
    out = {}
    for name in MODEL_FEATURES:
        column = rows[name] if name in rows.columns else pd.Series(np.nan, index=rows.index)
        if ALL_FEATURES[name].kind == "categorical":
            vocabulary = CATEGORY_VOCABULARIES[name]
            values = column.astype(object)
            known = values.where(values.isin(vocabulary), None)
            out[name] = pd.Categorical(known, categories=vocabulary)
        elif column.dtype == "float64":
            out[name] = column.to_numpy()
        else:
            out[name] = pd.to_numeric(column, errors="coerce").astype("float64").to_numpy()
    return pd.DataFrame(out, index=rows.index)


def _pair_features(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    codes = pd.Index(CATEGORIES).get_indexer(rows["category"].astype(object))
    known = codes >= 0
    result = {}
    for pair_name, prefix in (
        ("category_affinity", "affinity"),
        ("recent_category_affinity", "recent_affinity"),
    ):
        columns = [f"{prefix}_{c}" for c in CATEGORIES]
        values = np.full(len(rows), np.nan)
        matrix = rows.reindex(columns=columns).to_numpy(dtype="float64")
        values[known] = matrix[np.flatnonzero(known), codes[known]]
        result[pair_name] = values
    price = pd.to_numeric(rows["price"], errors="coerce").to_numpy(dtype="float64")
    typical = (
        rows["avg_purchase_price"].to_numpy(dtype="float64")
        if "avg_purchase_price" in rows.columns
        else np.full(len(rows), np.nan)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(typical > 0, price / typical, np.nan)
    result["price_ratio"] = ratio
    return result
