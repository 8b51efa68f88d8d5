"""The synthetic world: deterministic, incremental, on-schema, and its scenarios bite."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pyarrow.parquet as pq

from ml_code.data.dataset import load_dataset, write_dataset
from ml_code.data.generate import (
    World,
    generate_day,
    generate_world,
    get_scenario,
    shift_target,
)
from ml_code.data.schema import (
    CUSTOMERS_SCHEMA,
    INTERACTIONS_SCHEMA,
    ITEMS_SCHEMA,
    PARTITION_FILE,
    partition_dir,
)

SMALL = {"n_customers": 300, "n_items": 48, "days": 20}


def test_same_seed_gives_the_same_world_and_another_seed_does_not() -> None:
    a = generate_world(seed=11, scenario="none", **SMALL)
    b = generate_world(seed=11, scenario="none", **SMALL)
    c = generate_world(seed=12, scenario="none", **SMALL)
    pdt.assert_frame_equal(a.interactions, b.interactions)
    pdt.assert_frame_equal(a.customers, b.customers)
    pdt.assert_frame_equal(a.items, b.items)
    assert not a.interactions["item_id"].equals(c.interactions["item_id"])


def test_day_by_day_simulation_matches_the_generated_world(small_world: World) -> None:
    day = small_world.start_date + dt.timedelta(days=17)
    expected = small_world.interactions[small_world.interactions["event_time"].dt.date == day]
    pdt.assert_frame_equal(generate_day(small_world, day), expected.reset_index(drop=True))
    beyond = generate_day(small_world, small_world.start_date + dt.timedelta(days=45))
    assert len(beyond) > 0 and beyond["event_time"].dt.date.nunique() == 1


def test_traffic_has_a_funnel_and_weekend_peaks(small_world: World) -> None:
    events = small_world.interactions
    counts = events["event_type"].value_counts()
    assert counts["view"] > counts["add_to_cart"] > counts["purchase"] > 0
    views = events[events["event_type"] == "view"]
    per_day = views.groupby(views["event_time"].dt.date).size()
    weekend = [n for day, n in per_day.items() if day.weekday() >= 5]
    weekday = [n for day, n in per_day.items() if day.weekday() < 5]
    assert np.mean(weekend) > 1.2 * np.mean(weekday)


def test_written_dataset_uses_the_documented_schema_and_loads_back(
    small_world: World, tmp_path
) -> None:
    root = write_dataset(small_world.dataset(), tmp_path / "ds")
    assert pq.read_schema(root / "customers.parquet").remove_metadata() == CUSTOMERS_SCHEMA
    assert pq.read_schema(root / "items.parquet").remove_metadata() == ITEMS_SCHEMA
    first = root / partition_dir(small_world.start_date.isoformat()) / PARTITION_FILE
    assert pq.read_schema(first).remove_metadata() == INTERACTIONS_SCHEMA
    loaded = load_dataset(root)
    pdt.assert_frame_equal(loaded.interactions, small_world.interactions, check_dtype=False)
    assert len(loaded.customers) == 400 and loaded.last_date == small_world.dataset().last_date


def _category_share(world: World, segment: str, category: str, after: bool) -> float:
    events = world.interactions
    bought = events[events["event_type"] == "purchase"].merge(world.customers, on="customer_id")
    bought = bought[bought["segment"] == segment].merge(world.items, on="item_id")
    late = bought["event_time"].dt.date >= world.shift_date
    window = bought[late if after else ~late]
    return float((window["category"] == category).mean())


def test_preference_shift_moves_the_segment_to_the_target_category_from_the_shift_day() -> None:
    # one segment only (the default moves everyone), so the others show what does not move
    scenario = get_scenario("preference-shift", shift_day=15, shift_segment="regular")
    shifted = generate_world(seed=5, n_customers=600, n_items=48, days=30, scenario=scenario)
    target = shift_target(shifted)
    before = _category_share(shifted, "regular", target, after=False)
    after = _category_share(shifted, "regular", target, after=True)
    assert after > before + 0.15
    others_before = _category_share(shifted, "budget", target, after=False)
    others_after = _category_share(shifted, "budget", target, after=True)
    assert abs(others_after - others_before) < 0.05
    unchanged = generate_world(seed=5, n_customers=600, n_items=48, days=30, scenario="none")
    day = shifted.start_date + dt.timedelta(days=10)
    pdt.assert_frame_equal(generate_day(shifted, day), generate_day(unchanged, day))


def test_price_shock_raises_the_category_prices_from_the_shift_day() -> None:
    scenario = get_scenario("price-shock", shift_day=10)
    world = generate_world(seed=5, scenario=scenario, **SMALL)
    events = world.interactions.merge(world.items[["item_id", "category", "price"]], on="item_id")
    events = events[events["category"] == "electronics"]
    paid = events["price_x"] / events["price_y"]
    late = events["event_time"].dt.date >= world.shift_date
    assert np.allclose(paid[~late], 1.0) and np.allclose(paid[late], 1.5, atol=0.01)


def test_new_items_appear_only_from_the_shift_day() -> None:
    scenario = get_scenario("new-items", shift_day=10)
    world = generate_world(seed=5, scenario=scenario, **SMALL)
    new_ids = set(world.items.loc[world.items["listed_date"] == world.shift_date, "item_id"])
    assert len(new_ids) == scenario.new_items
    seen = world.interactions[world.interactions["item_id"].isin(new_ids)]
    assert len(seen) > 0 and seen["event_time"].dt.date.min() >= world.shift_date
    before = world.dataset(through=world.shift_date - dt.timedelta(days=1))
    assert not before.items["item_id"].isin(new_ids).any()


def test_unknown_scenario_names_the_choices() -> None:
    try:
        get_scenario("typo")
    except ValueError as exc:
        assert "preference-shift" in str(exc)
    else:
        raise AssertionError("an unknown scenario must be rejected")


def test_interaction_times_fall_inside_their_day(small_world: World) -> None:
    times = small_world.interactions["event_time"]
    assert isinstance(times.dtype, pd.DatetimeTZDtype)
    first = pd.Timestamp(small_world.start_date, tz="UTC")
    assert times.min() >= first
