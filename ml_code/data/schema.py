"""The one on-disk schema of a retail dataset, read by every stage.

A dataset is a directory (local or synced from S3) holding::

    customers.parquet                       one row per customer
        customer_id   string    primary key, non-null
        segment       string    one of SEGMENTS
        signup_date   date32    day the customer joined
    items.parquet                           the catalogue, one row per item
        item_id       string    primary key, non-null
        category      string    one of CATEGORIES
        price         float64   list price, > 0
        listed_date   date32    day the item became available
    interactions/date=YYYY-MM-DD/part-0.parquet   one partition per day (Hive-style)
        event_time    timestamp[us, UTC]  inside the partition's day
        customer_id   string    references customers.customer_id
        item_id       string    references items.item_id
        event_type    string    one of EVENT_TYPES
        quantity      int64     >= 1 (1 for views and add-to-carts)
        price         float64   unit price shown/paid at event time, > 0

The category vocabulary is fixed (CATEGORIES) because customer features carry one affinity
column per category and the feature store declares them up front. Bring your own data by
writing these files; the synthetic generator is a convenience.
"""

from __future__ import annotations

import pyarrow as pa

CATEGORIES: tuple[str, ...] = (
    "grocery",
    "household",
    "beauty",
    "fashion",
    "electronics",
    "home",
    "sports",
    "toys",
)
SEGMENTS: tuple[str, ...] = ("budget", "regular", "premium")
EVENT_TYPES: tuple[str, ...] = ("view", "add_to_cart", "purchase")

CUSTOMERS_FILE = "customers.parquet"
ITEMS_FILE = "items.parquet"
INTERACTIONS_DIR = "interactions"
PARTITION_KEY = "date"
PARTITION_FILE = "part-0.parquet"

CUSTOMERS_SCHEMA = pa.schema(
    [
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("segment", pa.string(), nullable=False),
        pa.field("signup_date", pa.date32(), nullable=False),
    ]
)
ITEMS_SCHEMA = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("price", pa.float64(), nullable=False),
        pa.field("listed_date", pa.date32(), nullable=False),
    ]
)
INTERACTIONS_SCHEMA = pa.schema(
    [
        pa.field("event_time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("quantity", pa.int64(), nullable=False),
        pa.field("price", pa.float64(), nullable=False),
    ]
)


def partition_dir(date_str: str) -> str:
    """Relative directory of one day's interactions partition."""
    return f"{INTERACTIONS_DIR}/{PARTITION_KEY}={date_str}"
