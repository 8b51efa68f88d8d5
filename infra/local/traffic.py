"""Customers of the simulated shop calling the endpoint, and the ground truth their visits leave.

Each simulated day a sample of customers gets a ranking request, built the way a caller of the
deployed endpoint would build it: customer and item features from the feature tables at the
start of that day (`ml_code.features.build.feature_tables` over the accepted data), candidates
from `ml_code.features.candidates.generate_candidates`, the request shape of
`ml_code.serving.payloads`, an `X-Amzn-SageMaker-Inference-Id` per request. Requests go over
HTTP to the endpoint host, so they are captured exactly as SageMaker would capture them.

What the customer then buys is known only later: the label of a request is 1 for each candidate
the customer purchases within `LABEL_HORIZON_DAYS` of the request's day (the same definition as
the training labels), so a day's ground truth becomes known `LABEL_HORIZON_DAYS` days later and
is written then, in SageMaker's ground-truth merge format (one JSON line per inference id).
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ml_code.data.dataset import Dataset
from ml_code.features.build import feature_tables
from ml_code.features.candidates import generate_candidates
from ml_code.features.compute import window
from ml_code.features.definitions import (
    CUSTOMER_FEATURES,
    ITEM_FEATURES,
    LABEL_HORIZON_DAYS,
    LOOKBACK_DAYS,
)
from ml_code.serving.payloads import JSON

INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"
TOP_K = 10
_SENDERS = 2
"""Concurrent callers: the host serves requests on threads, as the container's workers do."""


@dataclass(frozen=True)
class SentRequest:
    """One ranking request that was answered, remembered so its label can be written later."""

    inference_id: str
    day: dt.date
    customer_id: str
    item_ids: tuple[str, ...]
    """Candidates in request order: the ground truth holds one label per candidate, in order."""


@dataclass
class DayTraffic:
    """What one day of traffic did."""

    day: dt.date
    sent: list[SentRequest] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def answered(self) -> int:
        return self.statuses.get(200, 0)


def ranking_requests(
    dataset: Dataset, day: dt.date, customers: int, rng: np.random.Generator
) -> list[tuple[str, dict[str, Any]]]:
    """(customer id, request body) for a sample of `customers` customers on `day`.

    Features come from events before `day` only, as a feature store refreshed nightly would
    serve them; candidates from the same generator training used. Customers are drawn from
    those active in the lookback window, the population training learns from: an inactive
    customer's empty history would read as drift that no retraining can remove.
    """
    customer_table, item_table = feature_tables(dataset, day)
    history = dataset.interactions[dataset.interactions["event_time"].dt.date < day]
    pairs = generate_candidates(customer_table, item_table, history, day)
    active = window(history, day, LOOKBACK_DAYS)["customer_id"].unique()
    ids = pairs.loc[pairs["customer_id"].isin(active), "customer_id"].drop_duplicates().to_numpy()
    chosen = rng.choice(ids, size=min(customers, len(ids)), replace=False)
    customer_cols = ["customer_id", *(f.name for f in CUSTOMER_FEATURES)]
    item_cols = ["item_id", *(f.name for f in ITEM_FEATURES)]
    chosen_rows = customer_table[customer_table["customer_id"].isin(chosen)]
    by_customer = {str(r["customer_id"]): r for r in _records(chosen_rows[customer_cols])}
    items = {str(r["item_id"]): r for r in _records(item_table[item_cols])}
    candidates = pairs.groupby("customer_id")["item_id"].agg(list)
    return [
        (
            customer,
            {
                "customer": by_customer[customer],
                "candidates": [items[str(item)] for item in candidates[customer]],
                "k": TOP_K,
            },
        )
        for customer in sorted(str(c) for c in chosen)
    ]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Feature rows as JSON values; requests carry finite numbers only."""
    numeric = frame.select_dtypes("number")
    if not np.isfinite(numeric.to_numpy(dtype="float64")).all():
        raise ValueError("feature tables hold non-finite numbers; requests cannot carry them")
    return json.loads(frame.to_json(orient="records"))


def send_day(
    url: str, day: dt.date, requests: list[tuple[str, dict[str, Any]]], *, seed: int
) -> DayTraffic:
    """POST every request to `url`/invocations; the endpoint's answers are counted by status."""
    traffic = DayTraffic(day)
    namespace = uuid.UUID(int=seed)

    def one(item: tuple[int, tuple[str, dict[str, Any]]]) -> tuple[int, SentRequest]:
        index, (customer, body) = item
        inference_id = str(uuid.uuid5(namespace, f"{day.isoformat()}/{index}/{customer}"))
        status = invoke(url, json.dumps(body).encode(), inference_id=inference_id)
        items = tuple(str(c["item_id"]) for c in body["candidates"])
        return status, SentRequest(inference_id, day, customer, items)

    with ThreadPoolExecutor(max_workers=_SENDERS) as pool:
        results = list(pool.map(one, enumerate(requests)))
    for status, sent in results:
        traffic.statuses[status] = traffic.statuses.get(status, 0) + 1
        if status == 200:
            traffic.sent.append(sent)
    return traffic


def malformed_requests(valid: dict[str, Any]) -> list[tuple[str, bytes, str]]:
    """Requests a buggy client sends: (what is wrong, body, content type). The endpoint must
    answer each with a 4xx naming the problem and keep serving everyone else."""
    missing = {**valid, "customer": {k: v for k, v in valid["customer"].items() if k != "segment"}}
    negative_k = {**valid, "k": -3}
    return [
        ("truncated JSON", json.dumps(valid).encode()[:40], JSON),
        ("customer without a feature", json.dumps(missing).encode(), JSON),
        ("negative k", json.dumps(negative_k).encode(), JSON),
        ("unsupported content type", b"<xml/>", "application/xml"),
    ]


def invoke(
    url: str, body: bytes, *, content_type: str = JSON, inference_id: str | None = None
) -> int:
    """One `POST /invocations`; returns the HTTP status (4xx/5xx included, never raised)."""
    headers = {"Content-Type": content_type, "Accept": JSON}
    if inference_id:
        headers[INFERENCE_ID_HEADER] = inference_id
    request = urllib.request.Request(f"{url}/invocations", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.read()
        return int(error.code)


def labels_known_on(day: dt.date) -> dt.date:
    """The day whose requests' labels are complete at the end of `day`."""
    return day - dt.timedelta(days=LABEL_HORIZON_DAYS - 1)


def ground_truth_lines(sent: Iterable[SentRequest], purchases: pd.DataFrame) -> list[str]:
    """SageMaker ground-truth merge lines: per request, 1 for each candidate the customer
    bought within the label horizon from the request's day, in request order.

    `purchases` holds the true purchase events (customer_id, item_id, event_time) covering
    every horizon asked for.
    """
    bought: dict[tuple[str, str], list[pd.Timestamp]] = {}
    for customer, item, when in purchases[["customer_id", "item_id", "event_time"]].itertuples(
        index=False
    ):
        bought.setdefault((str(customer), str(item)), []).append(when)
    lines = []
    for request in sent:
        start = pd.Timestamp(request.day, tz="UTC")
        end = start + pd.Timedelta(days=LABEL_HORIZON_DAYS)
        labels = [
            int(any(start <= t < end for t in bought.get((request.customer_id, item), ())))
            for item in request.item_ids
        ]
        lines.append(
            json.dumps(
                {
                    "groundTruthData": {"data": ",".join(map(str, labels)), "encoding": "CSV"},
                    "eventMetadata": {
                        "eventId": str(uuid.uuid5(uuid.NAMESPACE_OID, request.inference_id)),
                        "inferenceId": request.inference_id,
                    },
                    "eventVersion": "0",
                }
            )
        )
    return lines


def purchases_of(frames: Mapping[dt.date, pd.DataFrame]) -> pd.DataFrame:
    """The purchase events of several days' true traffic, in one frame."""
    events = pd.concat(list(frames.values()), ignore_index=True)
    return events.loc[events["event_type"] == "purchase"]
