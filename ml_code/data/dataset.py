"""Read and write retail datasets in the schema of ``ml_code.data.schema``.

The same loaders serve generated worlds and a user's own files, so every later stage sees one
layout whatever produced it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml_code.data.schema import (
    CUSTOMERS_FILE,
    CUSTOMERS_SCHEMA,
    INTERACTIONS_DIR,
    INTERACTIONS_SCHEMA,
    ITEMS_FILE,
    ITEMS_SCHEMA,
    PARTITION_FILE,
    PARTITION_KEY,
    partition_dir,
)

_PARTITION_RE = re.compile(rf"^{PARTITION_KEY}=(\d{{4}}-\d{{2}}-\d{{2}})$")


@dataclass
class Dataset:
    """A retail dataset held in memory: customers, catalogue and interaction events."""

    customers: pd.DataFrame
    items: pd.DataFrame
    interactions: pd.DataFrame

    @property
    def last_date(self) -> dt.date | None:
        """Day of the newest interaction, or None when there are none."""
        if self.interactions.empty:
            return None
        return self.interactions["event_time"].max().date()


def partition_dates(root: str | Path) -> list[dt.date]:
    """Days that have an interactions partition under ``root``, oldest first."""
    base = Path(root) / INTERACTIONS_DIR
    if not base.is_dir():
        return []
    found = (_PARTITION_RE.match(p.name) for p in base.iterdir() if p.is_dir())
    return sorted(dt.date.fromisoformat(m.group(1)) for m in found if m)


def read_table(path: str | Path) -> pd.DataFrame:
    """One Parquet file as a DataFrame, keeping the types it was written with."""
    return pq.read_table(path).to_pandas()


def load_dataset(
    root: str | Path, start: dt.date | None = None, end: dt.date | None = None
) -> Dataset:
    """Load a dataset directory; ``start``/``end`` (inclusive) restrict the partitions read."""
    root = Path(root)
    frames = [
        read_table(root / partition_dir(day.isoformat()) / PARTITION_FILE)
        for day in partition_dates(root)
        if (start is None or day >= start) and (end is None or day <= end)
    ]
    interactions = (
        pd.concat(frames, ignore_index=True)
        if frames
        else INTERACTIONS_SCHEMA.empty_table().to_pandas()
    )
    return Dataset(
        customers=read_table(root / CUSTOMERS_FILE),
        items=read_table(root / ITEMS_FILE),
        interactions=interactions,
    )


def _write(df: pd.DataFrame, schema: pa.Schema, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = df[schema.names]
    # Arrow stores instants in UTC; handing it naive UTC values avoids a pandas deprecation path.
    frame = frame.assign(
        **{
            name: frame[name].dt.tz_convert("UTC").dt.tz_localize(None)
            for name in schema.names
            if isinstance(frame[name].dtype, pd.DatetimeTZDtype)
        }
    )
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    pq.write_table(table, path)


def write_partition(interactions: pd.DataFrame, root: str | Path) -> list[Path]:
    """Write interaction events as one partition per day, replacing those days' files."""
    root = Path(root)
    days = interactions["event_time"].dt.strftime("%Y-%m-%d")
    written = []
    for day, events in interactions.groupby(days, sort=True):
        path = root / partition_dir(str(day)) / PARTITION_FILE
        _write(events.sort_values("event_time", kind="stable"), INTERACTIONS_SCHEMA, path)
        written.append(path)
    return written


def write_reference(customers: pd.DataFrame, items: pd.DataFrame, root: str | Path) -> None:
    """Write the customer and catalogue tables of a dataset."""
    root = Path(root)
    _write(customers, CUSTOMERS_SCHEMA, root / CUSTOMERS_FILE)
    _write(items, ITEMS_SCHEMA, root / ITEMS_FILE)


def write_dataset(dataset: Dataset, root: str | Path) -> Path:
    """Write a whole dataset under ``root`` in the documented layout and return ``root``."""
    root = Path(root)
    write_reference(dataset.customers, dataset.items, root)
    write_partition(dataset.interactions, root)
    return root
