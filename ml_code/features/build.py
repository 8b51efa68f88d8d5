"""Labelled training, validation and test sets with time-based splits, plus feature tables.

A row is a (customer, candidate item) pair at a cut-off: features from events before the
cut-off (``ml_code.features.compute``), label 1 when the customer purchases the item within
``LABEL_HORIZON_DAYS`` from the cut-off.

The test set is a time-based holdout: the newest cut-off whose label window is complete. The
training rows come from ``TRAIN_CUTOFFS`` daily cut-offs ending one label horizon before it, so
every label the model trains on precedes the test cut-off (nothing leaks), and the newest
labels the data holds are in the training set: after customers change, a retrain learns from
their new behaviour one horizon sooner than with cut-offs spaced a horizon apart. Validation
is a customer holdout of those cut-offs (one customer in ``VALIDATION_BUCKETS``, by a stable
hash of the id), so it costs no label window of its own. Every cut-off has a full
``LOOKBACK_DAYS`` of history behind it, so no training row carries truncated features.

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
MIN_DATA_DAYS = LOOKBACK_DAYS + 2 * LABEL_HORIZON_DAYS
"""The shortest data a training set is built from: a full lookback before the first cut-off,
then a training and a test label window."""
VALIDATION_BUCKETS = 10


@dataclass(frozen=True)
class SplitPlan:
    """Cut-offs of the splits; every training label window ends on or before the test cut-off."""

    train_cutoffs: tuple[dt.date, ...]
    test_cutoff: dt.date

    def to_json(self) -> dict[str, list[str] | str]:
        return {
            "train_cutoffs": [d.isoformat() for d in self.train_cutoffs],
            "validation": f"customers with crc32(customer_id) % {VALIDATION_BUCKETS} == 0 at "
            "the train cut-offs",
            "test_cutoff": self.test_cutoff.isoformat(),
        }


def plan_splits(
    first_date: dt.date,
    last_date: dt.date,
    cutoff: dt.date | None = None,
    n_train_cutoffs: int = TRAIN_CUTOFFS,
) -> SplitPlan:
    """Cut-offs ending at ``cutoff`` (default: the last one whose label window is complete)."""
    horizon = dt.timedelta(days=LABEL_HORIZON_DAYS)
    latest = last_date + dt.timedelta(days=1) - horizon
    test = cutoff or latest
    if test > latest:
        raise ValueError(
            f"cutoff {test} leaves an incomplete {LABEL_HORIZON_DAYS}-day label window (data "
            f"ends {last_date}); use a cutoff on or before {latest}"
        )
    earliest = first_date + dt.timedelta(days=LOOKBACK_DAYS)
    newest = test - horizon
    train = tuple(
        c for c in (newest - dt.timedelta(days=k) for k in range(n_train_cutoffs)) if c >= earliest
    )
    if not train:
        raise ValueError(
            f"data from {first_date} to {last_date} is too short for a cutoff of {test}: need "
            f"{LOOKBACK_DAYS} days of history before the first training cut-off and "
            f"{2 * LABEL_HORIZON_DAYS} days of labels after it "
            f"({MIN_DATA_DAYS} days at least)"
        )
    return SplitPlan(tuple(sorted(train)), test)


def is_validation_customer(customer_ids: pd.Series) -> pd.Series:
    """The validation holdout: a stable one-in-``VALIDATION_BUCKETS`` share of customers."""
    buckets = customer_ids.astype(str).map(lambda c: zlib.crc32(c.encode()) % VALIDATION_BUCKETS)
    return buckets == 0


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
    """Train (several stacked cut-offs), validation and test sets, and the plan that made them."""
    days = dataset.interactions["event_time"]
    plan = plan_splits(days.min().date(), days.max().date(), cutoff, n_train_cutoffs)
    rows = pd.concat([build_examples(dataset, c) for c in plan.train_cutoffs], ignore_index=True)
    held_out = is_validation_customer(rows["customer_id"])
    return {
        "train": rows[~held_out].reset_index(drop=True),
        "validation": rows[held_out].reset_index(drop=True),
        "test": build_examples(dataset, plan.test_cutoff),
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
