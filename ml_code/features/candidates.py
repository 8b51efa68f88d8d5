"""Candidate items to rank for each customer: popular in their categories, plus co-purchases.

A ranker only reorders what candidate generation proposes, so the same generator feeds the
training set (labels are attached to these pairs) and the endpoint's default candidate list.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ml_code.data.schema import CATEGORIES
from ml_code.features.compute import window
from ml_code.features.definitions import LOOKBACK_DAYS, RECENT_DAYS

TOP_CATEGORIES = 3
TOP_RECENT_CATEGORIES = 2
PER_CATEGORY = 6
GLOBAL_POPULAR = 8
CO_PURCHASE = 6
SEGMENT_TRENDING = 8
_PARTNERS_PER_ITEM = 10


def _ranked(items: pd.DataFrame) -> pd.DataFrame:
    """Items by decreasing popularity, ties broken by id so the order is reproducible."""
    return items.sort_values(
        ["popularity_28d", "popularity_7d", "item_id"], ascending=[False, False, True]
    )


def popular_per_category(item_features: pd.DataFrame, k: int = PER_CATEGORY) -> pd.DataFrame:
    """The ``k`` most purchased items of each category: (category, item_id, rank)."""
    ranked = _ranked(item_features)
    top = ranked.groupby("category", sort=False).head(k)[["category", "item_id"]]
    return top.assign(rank=top.groupby("category").cumcount()).reset_index(drop=True)


def co_purchase_pairs(interactions: pd.DataFrame, cutoff: dt.date) -> pd.DataFrame:
    """Items bought by the same customers in the lookback window: (item_id, partner_id, count)."""
    events = window(interactions, cutoff, LOOKBACK_DAYS)
    bought = events.loc[events["event_type"] == "purchase", ["customer_id", "item_id"]]
    bought = bought.drop_duplicates()
    pairs = bought.merge(bought.rename(columns={"item_id": "partner_id"}), on="customer_id")
    pairs = pairs[pairs["item_id"] != pairs["partner_id"]]
    counts = pairs.groupby(["item_id", "partner_id"]).size().rename("count").reset_index()
    counts = counts.sort_values(["item_id", "count", "partner_id"], ascending=[True, False, True])
    return counts.groupby("item_id").head(_PARTNERS_PER_ITEM).reset_index(drop=True)


def _top_categories(
    ids: np.ndarray, customer_features: pd.DataFrame, prefix: str, k: int
) -> pd.DataFrame:
    affinity = customer_features[[f"{prefix}_{c}" for c in CATEGORIES]].to_numpy()
    order = np.argsort(-affinity, axis=1, kind="stable")[:, :k]
    return pd.DataFrame(
        {"customer_id": np.repeat(ids, k), "category": np.asarray(CATEGORIES)[order.ravel()]}
    )


def _segment_trending(
    customer_features: pd.DataFrame, interactions: pd.DataFrame, cutoff: dt.date
) -> pd.DataFrame:
    """Each customer paired with the items their segment bought most in the last week."""
    segment = customer_features.set_index("customer_id")["segment"]
    recent = window(interactions, cutoff, RECENT_DAYS)
    bought = recent.loc[recent["event_type"] == "purchase", ["customer_id", "item_id"]]
    bought = bought.assign(segment=bought["customer_id"].map(segment)).dropna(subset=["segment"])
    trending = (
        bought.groupby(["segment", "item_id"])
        .size()
        .rename("count")
        .reset_index()
        .sort_values(["segment", "count", "item_id"], ascending=[True, False, True])
        .groupby("segment")
        .head(SEGMENT_TRENDING)
    )
    members = customer_features[["customer_id", "segment"]]
    return members.merge(trending[["segment", "item_id"]], on="segment")[["customer_id", "item_id"]]


def generate_candidates(
    customer_features: pd.DataFrame,
    item_features: pd.DataFrame,
    interactions: pd.DataFrame,
    cutoff: dt.date,
) -> pd.DataFrame:
    """(customer_id, item_id) candidate pairs at ``cutoff``, sorted and without duplicates.

    Each customer gets the most popular items of their ``TOP_CATEGORIES`` strongest categories
    over the lookback window and their ``TOP_RECENT_CATEGORIES`` strongest of the last week
    (so a change of taste reaches the candidates within days),
    the ``GLOBAL_POPULAR`` best sellers, the ``SEGMENT_TRENDING`` items their segment bought
    most in the last week, and the ``CO_PURCHASE`` items most often bought together with what
    they bought in the window. Segment trends are read from the customers in
    ``customer_features``, so pass the whole table rather than one customer.
    """
    ids = customer_features["customer_id"].astype(str).to_numpy()
    favourite = pd.concat(
        [
            _top_categories(ids, customer_features, "affinity", TOP_CATEGORIES),
            _top_categories(ids, customer_features, "recent_affinity", TOP_RECENT_CATEGORIES),
        ],
        ignore_index=True,
    ).drop_duplicates()
    by_category = favourite.merge(popular_per_category(item_features), on="category")
    best_sellers = _ranked(item_features)["item_id"].head(GLOBAL_POPULAR).to_numpy()
    global_pairs = pd.DataFrame(
        {
            "customer_id": np.repeat(ids, len(best_sellers)),
            "item_id": np.tile(best_sellers, len(ids)),
        }
    )
    known = set(item_features["item_id"])
    events = window(interactions, cutoff, LOOKBACK_DAYS)
    bought = events.loc[
        (events["event_type"] == "purchase") & events["customer_id"].isin(ids),
        ["customer_id", "item_id"],
    ].drop_duplicates()
    partners = bought.merge(co_purchase_pairs(interactions, cutoff), on="item_id")
    co = (
        partners.groupby(["customer_id", "partner_id"])["count"]
        .sum()
        .reset_index()
        .sort_values(["customer_id", "count", "partner_id"], ascending=[True, False, True])
        .groupby("customer_id")
        .head(CO_PURCHASE)
        .rename(columns={"partner_id": "item_id"})
    )
    pairs = pd.concat(
        [
            by_category[["customer_id", "item_id"]],
            global_pairs,
            co[["customer_id", "item_id"]],
            _segment_trending(customer_features, interactions, cutoff),
        ],
        ignore_index=True,
    )
    pairs = pairs[pairs["item_id"].isin(known)].drop_duplicates()
    return pairs.sort_values(["customer_id", "item_id"]).reset_index(drop=True)
