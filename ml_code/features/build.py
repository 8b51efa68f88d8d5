"""Labelled training, validation and test sets with time-based splits, plus feature tables.

A row is a (customer, candidate item) pair at a cut-off: features from events before the
cut-off (``ml_code.features.compute``), label 1 when the customer purchases the item within
``LABEL_HORIZON_DAYS`` from the cut-off.

Every split is anchored at the newest cut-off whose label window is complete, so a model
learns from the freshest behaviour the data can label: after customers change, a retrain
started a few days later trains *and* is judged on their new behaviour. The rows of the
``TRAIN_CUTOFFS`` newest daily cut-offs are split by customer (a stable hash of the id):

* test: one customer in ``TEST_BUCKETS``, at the ``TEST_CUTOFFS`` newest cut-offs. The
  champion/challenger gate scores both models on these rows, so the comparison is on the most
  recent held-out behaviour, where a model that fits the new world wins;
* validation: one customer in ``VALIDATION_BUCKETS`` of the others, at every cut-off;
* train: everyone else, at every cut-off.

Train and test share days, not customers: no test customer's label is ever trained on. What
they share is the item side (a best seller's popularity), as a model serving the same week
shares it with its traffic. (A time-based test split would have to end one label horizon after
the training labels, so a retrain could learn a change only about two weeks after it.) Every
cut-off has a full ``LOOKBACK_DAYS`` of history behind it, so no row carries truncated
features.

Output layout (Parquet; SageMaker's scikit-learn container reads it with pandas/pyarrow)::

    OUTPUT/train/part-0.parquet          customer_id, item_id, event_time, MODEL_FEATURES, label
    OUTPUT/validation/part-0.parquet
    OUTPUT/test/part-0.parquet
    OUTPUT/customer_features.parquet     feature-store records at the day after the newest data
    OUTPUT/item_features.parquet
    OUTPUT/splits.json                   the cut-offs used

Script::

    python -m ml_code.features.build --input /opt/ml/processing/input/dataset \
        --output /opt/ml/processing/output [--cutoff YYYY-MM-DD] [--train-cutoffs 7]

``--cutoff`` is the newest cut-off (default: the newest whose label window is complete).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a file, as SageMaker does
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import zlib  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import pandas as pd  # noqa: E402

from ml_code.data.dataset import Dataset, load_dataset  # noqa: E402
from ml_code.features.candidates import generate_candidates  # noqa: E402
from ml_code.features.compute import (  # noqa: E402
    customer_features,
    cutoff_timestamp,
    event_time_string,
    events_between,
    item_features,
    window,
)
from ml_code.features.definitions import (  # noqa: E402
    EVENT_TIME_COLUMN,
    ID_COLUMNS,
    LABEL_COLUMN,
    LABEL_HORIZON_DAYS,
    LOOKBACK_DAYS,
    model_frame,
    score_rows,
)

SPLITS = ("train", "validation", "test")
TRAIN_CUTOFFS = 7
TEST_CUTOFFS = 3
TEST_BUCKETS = 5
VALIDATION_BUCKETS = 10
MIN_DATA_DAYS = LOOKBACK_DAYS + TRAIN_CUTOFFS - 1 + LABEL_HORIZON_DAYS
"""The shortest data a training set is built from: a full lookback before the oldest cut-off,
the cut-offs, and a complete label window after the newest."""


@dataclass(frozen=True)
class SplitPlan:
    """Daily cut-offs, newest last; test rows are a customer holdout at the newest few."""

    train_cutoffs: tuple[dt.date, ...]
    test_cutoffs: tuple[dt.date, ...]

    @property
    def newest(self) -> dt.date:
        return self.train_cutoffs[-1]

    def to_json(self) -> dict[str, list[str] | str]:
        return {
            "train_cutoffs": [d.isoformat() for d in self.train_cutoffs],
            "test_cutoffs": [d.isoformat() for d in self.test_cutoffs],
            "test": f"customers with crc32(customer_id) % {TEST_BUCKETS} == 0 at the test cut-offs",
            "validation": f"other customers with crc32(customer_id) % {VALIDATION_BUCKETS} == 1 "
            "at the train cut-offs",
            "labels_through": (self.newest + dt.timedelta(days=LABEL_HORIZON_DAYS - 1)).isoformat(),
        }


def plan_splits(
    first_date: dt.date,
    last_date: dt.date,
    cutoff: dt.date | None = None,
    n_train_cutoffs: int = TRAIN_CUTOFFS,
) -> SplitPlan:
    """Cut-offs ending at ``cutoff`` (default: the newest whose label window is complete)."""
    latest = last_date + dt.timedelta(days=1 - LABEL_HORIZON_DAYS)
    newest = cutoff or latest
    if newest > latest:
        raise ValueError(
            f"cutoff {newest} leaves an incomplete {LABEL_HORIZON_DAYS}-day label window (data "
            f"ends {last_date}); use a cutoff on or before {latest}"
        )
    earliest = first_date + dt.timedelta(days=LOOKBACK_DAYS)
    cutoffs = tuple(
        sorted(
            c
            for c in (newest - dt.timedelta(days=k) for k in range(n_train_cutoffs))
            if c >= earliest
        )
    )
    if not cutoffs:
        raise ValueError(
            f"data from {first_date} to {last_date} is too short for a cutoff of {newest}: need "
            f"{LOOKBACK_DAYS} days of history before the first cut-off and "
            f"{LABEL_HORIZON_DAYS} days of labels after it ({MIN_DATA_DAYS} days for "
            f"{TRAIN_CUTOFFS} cut-offs)"
        )
    return SplitPlan(cutoffs, cutoffs[-TEST_CUTOFFS:])


def _bucket(customer_ids: pd.Series, buckets: int) -> pd.Series:
    return customer_ids.astype(str).map(lambda c: zlib.crc32(c.encode()) % buckets)


def is_test_customer(customer_ids: pd.Series) -> pd.Series:
    """The test holdout: a stable one-in-``TEST_BUCKETS`` share of customers."""
    return _bucket(customer_ids, TEST_BUCKETS) == 0


def is_validation_customer(customer_ids: pd.Series) -> pd.Series:
    """The validation holdout: a stable one-in-``VALIDATION_BUCKETS`` share of the customers
    outside the test holdout."""
    return (_bucket(customer_ids, VALIDATION_BUCKETS) == 1) & ~is_test_customer(customer_ids)


def ranked_lists(rows: pd.DataFrame) -> pd.Series:
    """Which ranked list each row belongs to: one per customer and cut-off, as one ranking
    request ranks one customer's candidates on one day. Ranking metrics average over these."""
    return rows["customer_id"].astype(str) + "@" + rows[EVENT_TIME_COLUMN].astype(str)


def purchase_labels(interactions: pd.DataFrame, cutoff: dt.date) -> pd.DataFrame:
    """(customer_id, item_id) pairs purchased within the label horizon from ``cutoff``."""
    start = cutoff_timestamp(cutoff)
    future = events_between(interactions, start, start + pd.Timedelta(days=LABEL_HORIZON_DAYS))
    bought = future.loc[future["event_type"] == "purchase", list(ID_COLUMNS)]
    return bought.drop_duplicates().reset_index(drop=True)


def build_examples(dataset: Dataset, cutoff: dt.date, with_labels: bool = True) -> pd.DataFrame:
    """Model rows for the customers active in the lookback window and their candidates."""
    history = dataset.interactions[dataset.interactions["event_time"] < cutoff_timestamp(cutoff)]
    active = window(history, cutoff, LOOKBACK_DAYS)["customer_id"].unique()
    customers = dataset.customers[dataset.customers["customer_id"].isin(active)]
    cust = customer_features(customers, dataset.items, history, cutoff)
    items = item_features(dataset.items, history, cutoff)
    pairs = generate_candidates(cust, items, history, cutoff)
    rows = score_rows(cust, pairs.merge(items, on="item_id"))
    rows.insert(2, EVENT_TIME_COLUMN, event_time_string(cutoff))
    if with_labels:
        bought = purchase_labels(dataset.interactions, cutoff).assign(**{LABEL_COLUMN: 1})
        rows = rows.merge(bought, on=list(ID_COLUMNS), how="left")
        rows[LABEL_COLUMN] = rows[LABEL_COLUMN].fillna(0).astype("int64")
    return rows


def build_training_sets(
    dataset: Dataset, cutoff: dt.date | None = None, n_train_cutoffs: int = TRAIN_CUTOFFS
) -> tuple[dict[str, pd.DataFrame], SplitPlan]:
    """Train, validation and test sets (customer holdouts of the newest cut-offs), and the
    plan that made them."""
    days = dataset.interactions["event_time"]
    plan = plan_splits(days.min().date(), days.max().date(), cutoff, n_train_cutoffs)
    rows = pd.concat([build_examples(dataset, c) for c in plan.train_cutoffs], ignore_index=True)
    test = is_test_customer(rows["customer_id"])
    in_test_days = rows[EVENT_TIME_COLUMN].isin([event_time_string(c) for c in plan.test_cutoffs])
    validation = is_validation_customer(rows["customer_id"])
    return {
        "train": rows[~test & ~validation].reset_index(drop=True),
        "validation": rows[validation].reset_index(drop=True),
        "test": rows[test & in_test_days].reset_index(drop=True),
    }, plan


def feature_tables(dataset: Dataset, as_of: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customer and item feature records at ``as_of``: what the store and endpoint serve."""
    history = dataset.interactions[dataset.interactions["event_time"] < cutoff_timestamp(as_of)]
    return (
        customer_features(dataset.customers, dataset.items, history, as_of),
        item_features(dataset.items, history, as_of),
    )


def read_split(directory: str | Path) -> pd.DataFrame:
    """All Parquet files of a split directory (a SageMaker channel), typed for the model."""
    files = sorted(Path(directory).glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no .parquet files in {directory}; run ml_code.features.build")
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return frame.assign(**model_frame(frame))


def write_outputs(
    splits: dict[str, pd.DataFrame],
    plan: SplitPlan,
    tables: tuple[pd.DataFrame, pd.DataFrame],
    output: str | Path,
) -> Path:
    """Write the splits, feature tables and plan in the layout documented above."""
    output = Path(output)
    for name in SPLITS:
        (output / name).mkdir(parents=True, exist_ok=True)
        splits[name].to_parquet(output / name / "part-0.parquet", index=False)
    tables[0].to_parquet(output / "customer_features.parquet", index=False)
    tables[1].to_parquet(output / "item_features.parquet", index=False)
    (output / "splits.json").write_text(json.dumps(plan.to_json(), indent=2) + "\n")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build labelled splits and feature tables.")
    parser.add_argument("--input", default="/opt/ml/processing/input/dataset")
    parser.add_argument("--output", default="/opt/ml/processing/output")
    parser.add_argument("--cutoff", type=dt.date.fromisoformat, help="test split cut-off")
    parser.add_argument("--train-cutoffs", type=int, default=TRAIN_CUTOFFS)
    args = parser.parse_args(argv)
    dataset = load_dataset(args.input)
    if dataset.interactions.empty:
        print(f"no interactions under {args.input}", file=sys.stderr)
        return 1
    splits, plan = build_training_sets(dataset, args.cutoff, args.train_cutoffs)
    as_of = dataset.last_date + dt.timedelta(days=1)
    write_outputs(splits, plan, feature_tables(dataset, as_of), args.output)
    sizes = ", ".join(f"{k}={len(v)}" for k, v in splits.items())
    print(f"wrote {sizes} rows and feature tables at {as_of} to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
