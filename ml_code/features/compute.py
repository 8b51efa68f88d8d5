"""Customer and item feature tables at a cut-off, from events strictly before it.

Only events in ``[cutoff - LOOKBACK_DAYS, cutoff)`` are read, so a table computed at a cut-off
can never see what happened on or after it; the training set relies on this for its time splits.
These tables are what the feature store holds and what the endpoint looks up.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ml_code.data.schema import CATEGORIES
from ml_code.features.definitions import (
    CUSTOMER_FEATURES,
    EVENT_TIME_COLUMN,
    ITEM_FEATURES,
    LOOKBACK_DAYS,
    PRICE_BANDS,
    RECENT_DAYS,
)

EVENT_WEIGHTS = {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
_BAND_EDGES = (0.75, 1.0, 1.35)
_AFFINITY_PRIOR = 0.5


def cutoff_timestamp(cutoff: dt.date) -> pd.Timestamp:
    return pd.Timestamp(cutoff, tz="UTC")


def event_time_string(cutoff: dt.date) -> str:
    """The ISO-8601 event time a feature record computed at ``cutoff`` carries."""
    return cutoff_timestamp(cutoff).strftime("%Y-%m-%dT%H:%M:%SZ")


def events_between(
    interactions: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
) -> pd.DataFrame:
    """Events with ``start <= event_time < end``."""
    times = interactions["event_time"]
    return interactions[(times >= start) & (times < end)]


def window(interactions: pd.DataFrame, cutoff: dt.date, days: int) -> pd.DataFrame:
    """Events in the ``days`` days before ``cutoff``."""
    end = cutoff_timestamp(cutoff)
    return events_between(interactions, end - pd.Timedelta(days=days), end)


def _affinities(
    events: pd.DataFrame, customer_ids: pd.Index, item_category: pd.Series
) -> np.ndarray:
    weights = events["event_type"].map(EVENT_WEIGHTS).fillna(0.0)
    category = events["item_id"].map(item_category)
    table = (
        pd.DataFrame({"customer_id": events["customer_id"], "category": category, "w": weights})
        .pivot_table(index="customer_id", columns="category", values="w", aggfunc="sum")
        .reindex(index=customer_ids, columns=list(CATEGORIES))
        .fillna(0.0)
        .to_numpy()
    )
    prior = _AFFINITY_PRIOR * len(CATEGORIES)
    return (table + _AFFINITY_PRIOR) / (table.sum(axis=1, keepdims=True) + prior)


def customer_features(
    customers: pd.DataFrame, items: pd.DataFrame, interactions: pd.DataFrame, cutoff: dt.date
) -> pd.DataFrame:
    """One feature record per customer, computed at ``cutoff``."""
    ids = pd.Index(customers["customer_id"].astype(str), name="customer_id")
    item_category = items.set_index("item_id")["category"]
    recent = window(interactions, cutoff, RECENT_DAYS)
    events = window(interactions, cutoff, LOOKBACK_DAYS)
    purchases = events[events["event_type"] == "purchase"]
    views = events[events["event_type"] == "view"]
    by_customer = purchases.groupby("customer_id")
    spend = purchases["price"] * purchases["quantity"]
    last_purchase = by_customer["event_time"].max().reindex(ids)
    recency = (cutoff_timestamp(cutoff) - last_purchase) / pd.Timedelta(days=1)

    out = pd.DataFrame(index=ids)
    out[EVENT_TIME_COLUMN] = event_time_string(cutoff)
    out["segment"] = customers.set_index("customer_id")["segment"].reindex(ids).to_numpy()
    out["recency_days"] = recency.fillna(LOOKBACK_DAYS + 1).to_numpy(dtype="float64")
    out["frequency_28d"] = by_customer.size().reindex(ids).fillna(0).astype("int64")
    out["monetary_28d"] = spend.groupby(purchases["customer_id"]).sum().reindex(ids).fillna(0.0)
    out["avg_purchase_price"] = (
        by_customer["price"]
        .mean()
        .reindex(ids)
        .fillna(views.groupby("customer_id")["price"].mean().reindex(ids))
    )
    out["views_7d"] = (
        recent[recent["event_type"] == "view"]
        .groupby("customer_id")
        .size()
        .reindex(ids)
        .fillna(0)
        .astype("int64")
    )
    out["views_28d"] = views.groupby("customer_id").size().reindex(ids).fillna(0).astype("int64")
    long = _affinities(events, ids, item_category)
    short = _affinities(recent, ids, item_category)
    for j, category in enumerate(CATEGORIES):
        out[f"affinity_{category}"] = long[:, j]
    for j, category in enumerate(CATEGORIES):
        out[f"recent_affinity_{category}"] = short[:, j]
    out = out.reset_index()
    return out[["customer_id", EVENT_TIME_COLUMN, *(f.name for f in CUSTOMER_FEATURES)]]


def item_features(items: pd.DataFrame, interactions: pd.DataFrame, cutoff: dt.date) -> pd.DataFrame:
    """One feature record per item listed before ``cutoff``, computed at ``cutoff``."""
    listed = pd.to_datetime(items["listed_date"]).dt.date
    catalogue = items[listed < cutoff].reset_index(drop=True)
    ids = pd.Index(catalogue["item_id"].astype(str), name="item_id")
    events = window(interactions, cutoff, LOOKBACK_DAYS)
    recent = window(interactions, cutoff, RECENT_DAYS)
    purchases = events[events["event_type"] == "purchase"]
    views = events[events["event_type"] == "view"]

    last_price = events.sort_values("event_time", kind="stable").groupby("item_id")["price"].last()
    price = last_price.reindex(ids).fillna(catalogue.set_index("item_id")["price"])
    category = catalogue.set_index("item_id")["category"].reindex(ids)
    relative = price / price.groupby(category).transform("median")
    band = np.asarray(PRICE_BANDS)[np.searchsorted(_BAND_EDGES, relative.to_numpy(), "right")]

    bought = purchases.groupby("item_id").size().reindex(ids).fillna(0)
    viewed = views.groupby("item_id").size().reindex(ids).fillna(0)
    base_rate = (bought.sum() + 1.0) / (viewed.sum() + 10.0)
    strength = 20.0

    out = pd.DataFrame(index=ids)
    out[EVENT_TIME_COLUMN] = event_time_string(cutoff)
    out["category"] = category.to_numpy()
    out["price"] = price.to_numpy(dtype="float64")
    out["price_band"] = band
    out["popularity_7d"] = (
        recent[recent["event_type"] == "purchase"]
        .groupby("item_id")
        .size()
        .reindex(ids)
        .fillna(0)
        .astype("int64")
    )
    out["popularity_28d"] = bought.astype("int64")
    out["conversion_rate_28d"] = (bought + strength * base_rate) / (viewed + strength)
    age = cutoff_timestamp(cutoff) - pd.to_datetime(catalogue["listed_date"]).dt.tz_localize("UTC")
    out["item_age_days"] = (age.dt.days.to_numpy()).astype("int64")
    out = out.reset_index()
    return out[["item_id", EVENT_TIME_COLUMN, *(f.name for f in ITEM_FEATURES)]]
