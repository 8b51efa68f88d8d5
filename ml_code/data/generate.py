"""Synthetic retail world: customers, catalogue and daily traffic, deterministic from a seed.

Customers have a segment, a price sensitivity, an activity rate and category preferences; items
have a category, a price and a latent popularity. Each day customers view items (more at the
weekend), some views become add-to-carts and some of those purchases. A ``Scenario`` changes
behaviour from ``shift_day`` on, so drift can be staged on demand: a segment's preference moves
to one category, a category's prices jump, or new items arrive.

Every day is drawn from its own random stream keyed by (seed, day), so ``generate_day`` can
simulate traffic incrementally and still reproduce exactly what ``generate_world`` would produce.

Script::

    python -m ml_code.data.generate --output DIR [--seed 7] [--customers 1500] [--items 200]
        [--start-date 2026-01-05] [--days 60] [--scenario preference-shift]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a file, as SageMaker does
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime as dt  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ml_code.data.dataset import Dataset, write_dataset  # noqa: E402
from ml_code.data.schema import CATEGORIES, SEGMENTS  # noqa: E402

DEFAULT_START = dt.date(2026, 1, 5)
ALL_SEGMENTS = "*"
_BASE_PRICE = dict(zip(CATEGORIES, (4.0, 9.0, 18.0, 35.0, 120.0, 55.0, 40.0, 22.0), strict=True))
_SEGMENT_SHARE = (0.4, 0.4, 0.2)
_SEGMENT_SENSITIVITY = (1.8, 1.0, 0.3)
_WEEKDAY_FACTOR = (0.9, 0.9, 0.95, 1.0, 1.15, 1.4, 1.3)
_CART_RATE = 0.13

_PURCHASE_GIVEN_CART = 0.55


@dataclass(frozen=True)
class Scenario:
    """Behaviour changes that start on day ``shift_day`` (days after the world's start date).

    Default: the world's first 60 days are unchanged, so a default world trains a healthy model
    and traffic simulated past it with ``generate_day`` drifts.

    * preference shift: customers of ``shift_segment`` (``"*"`` for everyone) swap their
      favourite category with ``shift_to_category`` (default: the category that segment liked
      least, so the change is as large as it can be), blended by ``shift_strength`` (1 = full
      swap). Buying follows the new taste at once; browsing lags, keeping ``browsing_lag`` of
      the old taste, so features built from views trail what customers now buy. Their price
      sensitivity is multiplied by ``sensitivity_factor``: below zero they trade up, and
      price attracts where it deterred. No feature holds a customer's sensitivity, so the
      model only learns the new behaviour from new labels: features alone do not catch up.
    * price shock: prices in ``price_shock_category`` are multiplied by ``price_shock_factor``.
    * new items: ``new_items`` items arrive in ``new_items_category`` (random when None),
      ``new_items_popularity`` times as appealing as a typical item.
    """

    name: str = "preference-shift"
    shift_day: int = 60
    shift_segment: str | None = ALL_SEGMENTS
    shift_to_category: str | None = None
    shift_strength: float = 0.9
    browsing_lag: float = 0.8
    sensitivity_factor: float = -0.5
    price_shock_category: str | None = None
    price_shock_factor: float = 1.0
    new_items: int = 0
    new_items_category: str | None = None
    new_items_popularity: float = 3.0


SCENARIOS: dict[str, Scenario] = {
    "preference-shift": Scenario(),
    "price-shock": Scenario(
        name="price-shock",
        shift_segment=None,
        shift_to_category=None,
        price_shock_category="electronics",
        price_shock_factor=1.5,
    ),
    "new-items": Scenario(
        name="new-items",
        shift_segment=None,
        shift_to_category=None,
        new_items=24,
        new_items_category="fashion",
    ),
    "none": Scenario(name="none", shift_segment=None, shift_to_category=None),
}


def get_scenario(scenario: str | Scenario, **overrides: object) -> Scenario:
    """A named scenario (or the one given) with some knobs overridden."""
    if isinstance(scenario, str):
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; choose one of {sorted(SCENARIOS)}")
        scenario = SCENARIOS[scenario]
    return dataclasses.replace(scenario, **overrides) if overrides else scenario


@dataclass
class World:
    """A generated world: observable tables plus the latent traits that drive its traffic."""

    seed: int
    start_date: dt.date
    days: int
    scenario: Scenario
    customers: pd.DataFrame
    items: pd.DataFrame
    interactions: pd.DataFrame
    preferences: np.ndarray = field(repr=False)
    sensitivity: np.ndarray = field(repr=False)
    activity: np.ndarray = field(repr=False)
    item_popularity: np.ndarray = field(repr=False)

    @property
    def shift_date(self) -> dt.date:
        return self.start_date + dt.timedelta(days=self.scenario.shift_day)

    def dataset(self, through: dt.date | None = None) -> Dataset:
        """The observable dataset up to ``through`` (inclusive; default: all generated days)."""
        through = through or self.start_date + dt.timedelta(days=self.days - 1)
        events = self.interactions
        events = events[events["event_time"].dt.date <= through].reset_index(drop=True)
        items = self.items[self.items["listed_date"] <= through].reset_index(drop=True)
        return Dataset(customers=self.customers.copy(), items=items, interactions=events)


def generate_world(
    seed: int = 7,
    n_customers: int = 1500,
    n_items: int = 200,
    start_date: dt.date = DEFAULT_START,
    days: int = 60,
    scenario: str | Scenario = "preference-shift",
) -> World:
    """Generate customers, catalogue and ``days`` days of traffic from ``start_date``."""
    scenario = get_scenario(scenario)
    rng = np.random.default_rng([seed, 0xC0FFEE])
    n_cat = len(CATEGORIES)

    segment_idx = rng.choice(len(SEGMENTS), size=n_customers, p=_SEGMENT_SHARE)
    sensitivity = np.asarray(_SEGMENT_SENSITIVITY)[segment_idx] * rng.lognormal(0, 0.2, n_customers)
    segment_prior = rng.dirichlet(np.ones(n_cat), size=len(SEGMENTS)) * 2.0
    preferences = np.vstack([rng.dirichlet(0.35 + segment_prior[s]) for s in segment_idx])
    activity = rng.lognormal(np.log(1.1), 0.6, n_customers)
    width = max(5, len(str(n_customers)))
    customers = pd.DataFrame(
        {
            "customer_id": [f"C{i:0{width}d}" for i in range(n_customers)],
            "segment": np.asarray(SEGMENTS)[segment_idx],
            "signup_date": [
                start_date - dt.timedelta(days=int(d)) for d in rng.integers(1, 720, n_customers)
            ],
        }
    )

    base_items, base_popularity = _catalogue(
        rng, np.arange(n_items) % n_cat, start_date - _days(rng.integers(30, 900, n_items))
    )
    # New arrivals draw from their own stream, so every scenario shares the same base world.
    arrivals = np.random.default_rng([seed, 0xBEEF])
    new_categories = (
        np.full(scenario.new_items, CATEGORIES.index(scenario.new_items_category))
        if scenario.new_items_category is not None
        else arrivals.integers(0, n_cat, scenario.new_items)
    )
    shift_date = start_date + dt.timedelta(days=scenario.shift_day)
    new_items, new_popularity = _catalogue(
        arrivals, new_categories, np.full(scenario.new_items, shift_date), shuffle=False
    )
    items = pd.concat([base_items, new_items], ignore_index=True)
    width = max(4, len(str(len(items))))
    items.insert(0, "item_id", [f"I{i:0{width}d}" for i in range(len(items))])
    popularity = np.concatenate([base_popularity, new_popularity * scenario.new_items_popularity])
    world = World(
        seed=seed,
        start_date=start_date,
        days=days,
        scenario=scenario,
        customers=customers,
        items=items,
        interactions=pd.DataFrame(),
        preferences=preferences,
        sensitivity=sensitivity,
        activity=activity,
        item_popularity=popularity,
    )
    world.interactions = pd.concat(
        [generate_day(world, start_date + dt.timedelta(days=d)) for d in range(days)],
        ignore_index=True,
    )
    return world


def _days(offsets: np.ndarray) -> np.ndarray:
    return np.asarray([dt.timedelta(days=int(d)) for d in offsets], dtype=object)


def _catalogue(
    rng: np.random.Generator, category_idx: np.ndarray, listed: np.ndarray, shuffle: bool = True
) -> tuple[pd.DataFrame, np.ndarray]:
    """Items (without ids) with prices around their category's base, and latent popularity."""
    if shuffle:
        category_idx = rng.permutation(category_idx)
    base = np.asarray([_BASE_PRICE[c] for c in CATEGORIES])[category_idx]
    price = np.round(base * rng.lognormal(0, 0.35, len(category_idx)), 2)
    popularity = rng.lognormal(0, 1.0, len(category_idx))
    items = pd.DataFrame(
        {
            "category": np.asarray(CATEGORIES)[category_idx],
            "price": price,
            "listed_date": list(listed),
        }
    )
    return items, popularity


def _in_shifted_segment(world: World) -> np.ndarray:
    segment = world.customers["segment"].to_numpy()
    if world.scenario.shift_segment == ALL_SEGMENTS:
        return np.full(len(segment), True)
    return segment == world.scenario.shift_segment


def shift_target(world: World) -> str | None:
    """The category the shifted segment turns to: the scenario's, or the one it liked least."""
    s = world.scenario
    if s.shift_segment is None:
        return None
    if s.shift_to_category is not None:
        return s.shift_to_category
    return CATEGORIES[int(world.preferences[_in_shifted_segment(world)].mean(axis=0).argmin())]


def preferences_on(world: World, day: dt.date) -> np.ndarray:
    """Each customer's category preferences in force on ``day``."""
    target_name = shift_target(world)
    prefs = world.preferences
    if day < world.shift_date or target_name is None:
        return prefs
    target = np.zeros(len(CATEGORIES))
    target[CATEGORIES.index(target_name)] = 1.0
    strength = world.scenario.shift_strength
    shifted = (1 - strength) * prefs + strength * target
    return np.where(_in_shifted_segment(world)[:, None], shifted, prefs)


def prices_on(world: World, day: dt.date) -> np.ndarray:
    """Each item's unit price on ``day``."""
    s = world.scenario
    price = world.items["price"].to_numpy(dtype="float64")
    if day < world.shift_date or s.price_shock_category is None:
        return price
    shocked = (world.items["category"] == s.price_shock_category).to_numpy()
    return np.round(np.where(shocked, price * s.price_shock_factor, price), 2)


def sensitivity_on(world: World, day: dt.date) -> np.ndarray:
    """Each customer's price sensitivity in force on ``day``."""
    if day < world.shift_date or world.scenario.shift_segment is None:
        return world.sensitivity
    shifted = world.sensitivity * world.scenario.sensitivity_factor
    return np.where(_in_shifted_segment(world), shifted, world.sensitivity)


def generate_day(world: World, day: dt.date) -> pd.DataFrame:
    """One day's interaction events, in the interactions schema.

    Depends only on the world's traits, its scenario and ``day``, never on days generated
    before, so a simulation can call it day by day past the world's end.
    """
    day_index = (day - world.start_date).days
    rng = np.random.default_rng([world.seed, 1, day_index + 10_000])
    n_customers = len(world.customers)
    prefs = preferences_on(world, day)
    prices = prices_on(world, day)
    sensitivity = sensitivity_on(world, day)
    available = (world.items["listed_date"] <= day).to_numpy()
    item_cat = pd.Categorical(world.items["category"], categories=list(CATEGORIES)).codes
    base = np.asarray([_BASE_PRICE[c] for c in CATEGORIES])

    views = rng.poisson(world.activity * _WEEKDAY_FACTOR[day.weekday()])
    cust = np.repeat(np.arange(n_customers), views)
    u = rng.random(len(cust))
    browsing = (1 - world.scenario.browsing_lag) * prefs + world.scenario.browsing_lag * (
        world.preferences
    )
    cat = np.minimum((u[:, None] > browsing.cumsum(axis=1)[cust]).sum(axis=1), len(CATEGORIES) - 1)

    item = np.full(len(cust), -1)
    for c in range(len(CATEGORIES)):
        in_cat = np.flatnonzero(cat == c)
        candidates = np.flatnonzero(available & (item_cat == c))
        if len(in_cat) == 0 or len(candidates) == 0:
            continue
        log_rel_price = np.log(prices[candidates] / base[c])
        score = np.log(world.item_popularity[candidates])[None, :] - 0.7 * (
            sensitivity[cust[in_cat]][:, None] * log_rel_price[None, :]
        )
        score += rng.gumbel(size=score.shape)
        item[in_cat] = candidates[score.argmax(axis=1)]
    keep = item >= 0
    cust, cat, item = cust[keep], cat[keep], item[keep]

    rel_price = np.log(prices[item] / base[cat])
    p_cart = (
        _CART_RATE * (0.3 + 2.5 * prefs[cust, cat]) * np.exp(-0.8 * sensitivity[cust] * rel_price)
    )
    carted = rng.random(len(cust)) < np.clip(p_cart, 0, 0.9)
    bought = carted & (rng.random(len(cust)) < _PURCHASE_GIVEN_CART)

    start = pd.Timestamp(day, tz="UTC")
    view_seconds = rng.integers(0, 22 * 3600, len(cust))
    cart_seconds = view_seconds + rng.integers(10, 900, len(cust))
    buy_seconds = cart_seconds + rng.integers(10, 900, len(cust))
    quantity = 1 + rng.poisson(0.2, len(cust))
    customer_ids = world.customers["customer_id"].to_numpy()
    item_ids = world.items["item_id"].to_numpy()
    frames = [
        (np.ones(len(cust), bool), "view", view_seconds, np.ones(len(cust), np.int64)),
        (carted, "add_to_cart", cart_seconds, np.ones(len(cust), np.int64)),
        (bought, "purchase", buy_seconds, quantity),
    ]
    events = pd.concat(
        [
            pd.DataFrame(
                {
                    "event_time": start + pd.to_timedelta(seconds[mask], unit="s"),
                    "customer_id": customer_ids[cust[mask]],
                    "item_id": item_ids[item[mask]],
                    "event_type": kind,
                    "quantity": qty[mask].astype(np.int64),
                    "price": prices[item[mask]],
                }
            )
            for mask, kind, seconds, qty in frames
        ],
        ignore_index=True,
    )
    events["event_time"] = events["event_time"].astype("datetime64[us, UTC]")
    return events.sort_values(["event_time", "customer_id"], kind="stable").reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate a synthetic retail dataset.")
    parser.add_argument("--output", default="/opt/ml/processing/output/dataset")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--customers", type=int, default=1500)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--start-date", type=dt.date.fromisoformat, default=DEFAULT_START)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--scenario", default="preference-shift", choices=sorted(SCENARIOS))
    parser.add_argument("--shift-day", type=int, help="override the scenario's shift day")
    args = parser.parse_args(argv)
    overrides = {} if args.shift_day is None else {"shift_day": args.shift_day}
    world = generate_world(
        seed=args.seed,
        n_customers=args.customers,
        n_items=args.items,
        start_date=args.start_date,
        days=args.days,
        scenario=get_scenario(args.scenario, **overrides),
    )
    write_dataset(world.dataset(), args.output)
    print(f"wrote {len(world.interactions)} events over {args.days} days to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
