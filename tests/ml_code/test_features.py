"""The feature contract, point-in-time correctness and leakage-free time splits."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from ml_code.data.dataset import Dataset
from ml_code.data.generate import World
from ml_code.data.schema import CATEGORIES
from ml_code.features.build import (
    MIN_DATA_DAYS,
    TEST_CUTOFFS,
    build_examples,
    plan_splits,
    purchase_labels,
)
from ml_code.features.compute import customer_features, item_features
from ml_code.features.definitions import (
    CUSTOMER_FEATURES,
    EVENT_TIME_COLUMN,
    ID_COLUMNS,
    ITEM_FEATURES,
    LABEL_HORIZON_DAYS,
    LOOKBACK_DAYS,
    MODEL_FEATURES,
    PAIR_FEATURES,
    feature_group_schema,
    score_rows,
)

FEATURE_NAME = re.compile(r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")  # SageMaker Feature Store


@pytest.mark.parametrize("group", ["customer", "item"])
def test_feature_groups_declare_record_id_event_time_and_store_types(group: str) -> None:
    schema = feature_group_schema(group)
    assert schema[0] == {"FeatureName": f"{group}_id", "FeatureType": "String"}
    assert schema[1] == {"FeatureName": EVENT_TIME_COLUMN, "FeatureType": "String"}
    names = [f["FeatureName"] for f in schema]
    assert len(names) == len(set(names)) and all(FEATURE_NAME.match(n) for n in names)
    assert {f["FeatureType"] for f in schema} <= {"Integral", "Fractional", "String"}


def test_pair_features_are_not_a_stored_group() -> None:
    with pytest.raises(ValueError, match="pair"):
        feature_group_schema("pair")


def test_model_features_come_from_the_declared_groups() -> None:
    declared = {f.name for f in (*CUSTOMER_FEATURES, *ITEM_FEATURES, *PAIR_FEATURES)}
    assert set(MODEL_FEATURES) <= declared
    assert len(MODEL_FEATURES) == len(set(MODEL_FEATURES))


def _tables(world: World, cutoff: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    data = world.dataset()
    return (
        customer_features(data.customers, data.items, data.interactions, cutoff),
        item_features(data.items, data.interactions, cutoff),
    )


def test_score_rows_is_the_same_for_a_feature_store_record_and_a_frame(small_world: World) -> None:
    customers, items = _tables(small_world, small_world.start_date + dt.timedelta(days=20))
    record = {k: str(v) for k, v in customers.iloc[5].items()}  # GetRecord returns strings
    from_record = score_rows(record, items)
    from_frame = score_rows(customers.iloc[[5]], items)
    pdt.assert_frame_equal(from_record, from_frame)
    assert list(from_frame.columns) == [*ID_COLUMNS, *MODEL_FEATURES]


def test_pair_features_read_the_items_category_and_the_customers_spend(small_world: World) -> None:
    customers, items = _tables(small_world, small_world.start_date + dt.timedelta(days=20))
    customer = customers.iloc[0]
    rows = score_rows(customers.iloc[[0]], items)
    for _, row in rows.head(10).iterrows():
        assert row["category_affinity"] == pytest.approx(customer[f"affinity_{row['category']}"])
        assert row["price_ratio"] == pytest.approx(row["price"] / customer["avg_purchase_price"])
    affinities = customers[[f"affinity_{c}" for c in CATEGORIES]].to_numpy()
    assert np.allclose(affinities.sum(axis=1), 1.0)


def test_unknown_categories_score_as_missing_rather_than_failing(small_world: World) -> None:
    customers, items = _tables(small_world, small_world.start_date + dt.timedelta(days=20))
    odd = items.head(2).assign(category=["garden", "grocery"])
    rows = score_rows(customers.iloc[[0]], odd)
    assert rows["category"].isna().tolist() == [True, False]
    assert np.isnan(rows["category_affinity"].iloc[0])


def _with_future_rewritten(dataset: Dataset, cutoff: dt.date) -> Dataset:
    """Same past, a scrambled future: every event on or after the cut-off is changed."""
    events = dataset.interactions.copy()
    future = events["event_time"] >= pd.Timestamp(cutoff, tz="UTC")
    events.loc[future, "event_type"] = "purchase"
    events.loc[future, "price"] = 9999.0
    items = dataset.items["item_id"].to_numpy()
    events.loc[future, "item_id"] = items[np.arange(future.sum()) % len(items)]
    return Dataset(dataset.customers, dataset.items, events)


def test_features_at_a_cutoff_ignore_everything_from_the_cutoff_on(small_world: World) -> None:
    dataset = small_world.dataset()
    cutoff = small_world.start_date + dt.timedelta(days=20)
    original = build_examples(dataset, cutoff)
    scrambled = build_examples(_with_future_rewritten(dataset, cutoff), cutoff)
    feature_columns = [*ID_COLUMNS, *MODEL_FEATURES]
    pdt.assert_frame_equal(original[feature_columns], scrambled[feature_columns])
    assert not original["label"].equals(scrambled["label"])


def test_labels_are_purchases_within_the_horizon_after_the_cutoff(small_world: World) -> None:
    dataset = small_world.dataset()
    cutoff = small_world.start_date + dt.timedelta(days=15)
    labels = purchase_labels(dataset.interactions, cutoff)
    bought = dataset.interactions.merge(labels, on=list(ID_COLUMNS))
    bought = bought[bought["event_type"] == "purchase"]
    start = pd.Timestamp(cutoff, tz="UTC")
    in_window = bought["event_time"].between(
        start, start + pd.Timedelta(days=LABEL_HORIZON_DAYS), inclusive="left"
    )
    assert in_window.groupby([bought["customer_id"], bought["item_id"]]).any().all()


def test_the_splits_end_at_the_newest_cutoff_whose_labels_are_complete() -> None:
    plan = plan_splits(dt.date(2026, 1, 1), dt.date(2026, 3, 1), n_train_cutoffs=7)
    horizon = dt.timedelta(days=LABEL_HORIZON_DAYS)
    assert plan.newest + horizon == dt.date(2026, 3, 2)  # its label window ends with the data
    assert len(plan.train_cutoffs) == 7 and plan.train_cutoffs[0] == dt.date(2026, 2, 17)
    assert plan.test_cutoffs == plan.train_cutoffs[-TEST_CUTOFFS:]
    assert plan.to_json()["labels_through"] == "2026-03-01"
    with pytest.raises(ValueError, match="incomplete"):
        plan_splits(dt.date(2026, 1, 1), dt.date(2026, 3, 1), cutoff=dt.date(2026, 2, 27))


def test_every_cutoff_has_a_full_lookback() -> None:
    first = dt.date(2026, 1, 1)
    last = first + dt.timedelta(days=MIN_DATA_DAYS - 1)
    plan = plan_splits(first, last)
    assert len(plan.train_cutoffs) == 7
    assert min(plan.train_cutoffs) == first + dt.timedelta(days=LOOKBACK_DAYS)
    assert len(plan_splits(first, last - dt.timedelta(days=6)).train_cutoffs) == 1
    with pytest.raises(ValueError, match="too short"):
        plan_splits(first, last - dt.timedelta(days=7))


def test_test_customers_are_never_trained_on(trained_default) -> None:
    splits, plan = trained_default.splits, trained_default.plan
    times = {name: pd.to_datetime(df[EVENT_TIME_COLUMN]) for name, df in splits.items()}
    assert sorted(times["train"].dt.date.unique()) == list(plan.train_cutoffs)
    assert sorted(times["test"].dt.date.unique()) == list(plan.test_cutoffs)
    customers = {name: set(df["customer_id"]) for name, df in splits.items()}
    assert not customers["test"] & (customers["train"] | customers["validation"])
    assert not customers["validation"] & customers["train"]
    for df in splits.values():
        assert 0.005 < df["label"].mean() < 0.2
