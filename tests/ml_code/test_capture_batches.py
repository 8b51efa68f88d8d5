"""Capture files read a batch at a time decode exactly as they do one line at a time.

The monitoring jobs decode the usual captured line (a JSON ranking request answered in JSON or
CSV) in batches; every other line goes through ``parse_capture``. The reference here is the
per-line reader the jobs used before batching: same inferences, rows, skips and reasons.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal

from ml_code.data.schema import CATEGORIES, SEGMENTS
from ml_code.features.definitions import PRICE_BANDS
from ml_code.monitoring import captures
from ml_code.monitoring.captures import (
    BATCH_RECORDS,
    CapturedInference,
    ReadStats,
    iter_feature_chunks,
    iter_inferences,
    iter_jsonl,
    parse_capture,
)
from ml_code.serving.capture import DirectoryCaptureWriter, capture_record
from ml_code.serving.inference import output_fn, predict_fn
from ml_code.serving.payloads import Limits, RankRequest, parse_request

JSON, CSV = "application/json", "text/csv"
START = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


class RandomModel:
    """Stands in for the model in ``predict_fn``: scores with every digit a float can carry."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def score(self, rows: pd.DataFrame) -> np.ndarray:
        return self.rng.random(len(rows))


def customer(rng: np.random.Generator) -> dict[str, Any]:
    """A feature-store customer record; a few customers recur with other feature values."""
    number = int(rng.integers(40))
    record: dict[str, Any] = {
        "customer_id": number if number % 7 == 0 else f"c{number}",
        "segment": str(rng.choice(SEGMENTS)),
        "recency_days": round(float(rng.exponential(6.0)), 2),
        "frequency_28d": int(rng.poisson(2.0)),
        "monetary_28d": float(rng.gamma(2.0, 30.0)),
        "avg_purchase_price": float(rng.lognormal(3.0, 0.4)) if number % 9 else 0.0,
        "views_7d": int(rng.poisson(3.0)),
        "views_28d": int(rng.poisson(12.0)),
    }
    for category in CATEGORIES:
        record[f"affinity_{category}"] = float(rng.beta(2.0, 8.0))
        record[f"recent_affinity_{category}"] = float(rng.beta(2.0, 8.0))
    if number % 5 == 0:  # as the feature store returns them: strings and an event time
        record = {k: str(v) for k, v in record.items()} | {"event_time": "2026-11-24T00:00:00Z"}
    return record


def candidate(j: int, rng: np.random.Generator) -> dict[str, Any]:
    record: dict[str, Any] = {
        "item_id": j if j % 11 == 0 else f"i{j}",
        "category": str(rng.choice(CATEGORIES)) if j % 13 else "garden",  # not in the vocabulary
        "price": round(float(rng.lognormal(3.0, 0.5)), 2),
        "price_band": str(rng.choice(PRICE_BANDS)),
        "popularity_7d": int(rng.poisson(3.0)),
        "popularity_28d": int(rng.poisson(11.0)),
        "conversion_rate_28d": float(rng.beta(2.0, 30.0)),
        "item_age_days": int(rng.integers(1, 365)),
    }
    if j % 4 == 0:
        record["price"] = str(record["price"])
    return record


def served(body: bytes, content_type: str, accept: str, model: RandomModel) -> tuple[bytes, str]:
    """The endpoint's answer to a request, as the app computes and captures it."""
    request = parse_request(body, content_type, Limits())
    return output_fn(predict_fn(request, model), accept)  # type: ignore[arg-type]


def ranking_capture(n: int, rng: np.random.Generator, model: RandomModel) -> dict[str, Any]:
    """The ``n``th captured ranking request: 20-36 candidates, k 5 or 10 or the default."""
    items = rng.choice(200, size=int(rng.integers(20, 37)), replace=False)
    payload: dict[str, Any] = {
        "customer": customer(rng),
        "candidates": [candidate(int(j), rng) for j in items],
    }
    if n % 3:
        payload["k"] = (5, 10.0)[n % 2]
    body = json.dumps(payload).encode()
    content_type = "application/json; charset=utf-8" if n % 17 == 0 else JSON
    output, output_type = served(body, content_type, CSV if n % 2 else JSON, model)
    return capture_record(
        request_body=body,
        request_content_type=content_type,
        response_body=output,
        response_content_type=output_type,
        inference_time=START + timedelta(seconds=97 * n),
        inference_id=f"r{n}" if n % 4 else None,
    )


def score_capture(rng: np.random.Generator, model: RandomModel, csv: bool) -> dict[str, Any]:
    """A score request (rows the caller built), JSON or CSV: never of the batched shape."""
    rows = pd.DataFrame()
    while rows.empty:  # a score request has every feature: rows without missing values
        rank = parse_request(request_of(ranking_capture(1, rng, model)), JSON, Limits())
        rows = rank.rows.dropna().astype(object)
    body = rows.to_csv(index=False) if csv else rows.to_json(orient="records")
    content_type = CSV if csv else JSON
    output, output_type = served(body.encode(), content_type, content_type, model)
    return capture_record(
        request_body=body.encode(),
        request_content_type=content_type,
        response_body=output,
        response_content_type=output_type,
        inference_time=START - timedelta(days=1),  # the earliest of the window
    )


def request_of(record: dict[str, Any]) -> str:
    return record["captureData"]["endpointInput"]["data"]


def changed(record: dict[str, Any], request: Any = None, response: Any = None) -> dict[str, Any]:
    """A copy of ``record`` whose JSON request and response bodies the functions edited."""
    record = json.loads(json.dumps(record))
    for key, edit in (("endpointInput", request), ("endpointOutput", response)):
        if edit is not None:
            payload = record["captureData"][key]
            body = json.loads(payload["data"])
            edit(body)
            payload["data"] = json.dumps(body)
    return record


def write_window(root: Path, n: int, seed: int) -> list[str]:
    """``n`` ranking captures in SageMaker's layout plus lines that are not; returns those."""
    rng, model = np.random.default_rng(seed), RandomModel(seed)
    writer = DirectoryCaptureWriter(root, "recs-dev", "AllTraffic", max_records=40)
    for i in range(n):
        writer.write(ranking_capture(i, rng, model))
    writer.close()

    def without_price(request: dict[str, Any]) -> None:
        del request["candidates"][3]["price"]

    def duplicated(request: dict[str, Any]) -> None:
        request["candidates"].append(request["candidates"][0])

    def stranger(body: dict[str, Any]) -> None:
        body["items"][0]["item_id"] = "never-a-candidate"

    json_answer = ranking_capture(2, rng, model)  # even: answered in JSON
    odd_lines = {
        "missing feature": changed(ranking_capture(1, rng, model), without_price),
        "duplicate item": changed(ranking_capture(3, rng, model), duplicated),
        "unknown item served": changed(json_answer, response=stranger),
        "json score request": score_capture(rng, model, csv=False),
        "csv score request": score_capture(rng, model, csv=True),
        "not a capture": {"captureData": {}},
    }
    files = sorted(root.rglob("*.jsonl"))
    first, middle = files[0], files[len(files) // 2]
    lines = first.read_text().splitlines(keepends=True)
    truncated = lines[5][: len(lines[5]) // 2] + "\n"
    broken = [json.dumps(odd_lines.pop("missing feature")) + "\n", truncated]
    first.write_text("".join(lines[:4] + broken + lines[4:]))  # a skip before a bad line
    lines = middle.read_text().splitlines(keepends=True)
    extra = [json.dumps(r) + "\n" for r in odd_lines.values()]
    middle.write_text("".join(lines[:10] + extra + lines[10:]))
    return ["missing feature", *odd_lines]


def per_line(directory: Path) -> tuple[list[CapturedInference], ReadStats]:
    """The reader before batching: ``parse_capture`` on each line."""
    stats, inferences = ReadStats(), []
    for where, record in iter_jsonl(directory, stats):
        try:
            inference = parse_capture(record)
        except (KeyError, TypeError, ValueError) as exc:
            stats.skip(where, exc)
            continue
        stats.records += 1
        when = inference.inference_time
        stats.start = when if stats.start is None else min(stats.start, when)
        stats.end = when if stats.end is None else max(stats.end, when)
        inferences.append(inference)
    return inferences, stats


def assert_same(got: list[CapturedInference], want: list[CapturedInference]) -> None:
    assert len(got) == len(want)
    exact = {"check_exact": True, "check_index_type": True}
    for a, b in zip(got, want, strict=True):
        assert (a.event_id, a.inference_id, a.inference_time) == (
            b.event_id,
            b.inference_id,
            b.inference_time,
        )
        assert type(a.request) is type(b.request)
        assert_frame_equal(a.request.rows, b.request.rows, check_column_type=True, **exact)
        if isinstance(b.request, RankRequest):
            assert (a.request.customer_id, a.request.k) == (b.request.customer_id, b.request.k)
        else:
            assert_frame_equal(a.request.ids, b.request.ids, **exact)
        assert_series_equal(a.scores, b.scores, **exact)
        assert_series_equal(a.served_rank, b.served_rank, **exact)


@pytest.fixture(scope="module")
def window(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("capture")
    return root, write_window(root, 200, seed=7)


@pytest.fixture(scope="module")
def reference(window: tuple[Path, list[str]]) -> tuple[list[CapturedInference], ReadStats]:
    return per_line(window[0])


@pytest.mark.parametrize("batch_records", [7, BATCH_RECORDS])
def test_batched_reading_yields_what_reading_line_by_line_does(
    window: tuple[Path, list[str]],
    reference: tuple[list[CapturedInference], ReadStats],
    batch_records: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (root, odd), (want, want_stats) = window, reference
    per_line_calls = []

    def counted(record: dict[str, Any]) -> CapturedInference:
        per_line_calls.append(record)
        return parse_capture(record)

    monkeypatch.setattr(captures, "parse_capture", counted)
    stats = ReadStats()
    got = list(iter_inferences(root, stats, batch_records=batch_records))
    assert_same(got, want)
    assert stats == want_stats
    assert (stats.records, stats.skipped) == (200 + 2, 5)  # + score requests; 4 bad, 1 cut
    assert stats.first_error is not None and "missing column 'price'" in stats.first_error
    assert stats.start == START - timedelta(days=1)
    # Only the lines of another shape were decoded one at a time.
    assert len(per_line_calls) == len(odd)


@pytest.mark.parametrize("chunk_rows", [97, 50_000])
def test_feature_chunks_hold_the_rows_read_line_by_line(
    window: tuple[Path, list[str]],
    reference: tuple[list[CapturedInference], ReadStats],
    chunk_rows: int,
) -> None:
    (root, _), (want, want_stats) = window, reference
    stats = ReadStats()
    chunks = list(iter_feature_chunks(root, stats, chunk_rows, batch_records=64))
    assert all(len(c) == chunk_rows for c in chunks[:-1]) and 0 < len(chunks[-1]) <= chunk_rows
    assert_frame_equal(
        pd.concat(chunks, ignore_index=True),
        pd.concat([i.request.rows for i in want], ignore_index=True),
        check_exact=True,
    )
    assert stats == want_stats


def test_a_batch_with_a_value_the_endpoint_rejects_is_read_line_by_line(tmp_path: Path) -> None:
    rng, model = np.random.default_rng(3), RandomModel(3)
    records = [ranking_capture(i, rng, model) for i in range(12)]

    def bad_price(request: dict[str, Any]) -> None:
        request["candidates"][2]["price"] = "cheap"

    def csv_stranger(record: dict[str, Any]) -> dict[str, Any]:
        output = record["captureData"]["endpointOutput"]
        output["data"] = output["data"].replace("\n", "\nnever-a-candidate,0.5,1\n", 1)
        return record

    records[4] = changed(records[4], bad_price)  # first batch of 6
    records[9] = csv_stranger(records[9])  # second batch; odd, so answered in CSV
    path = tmp_path / "recs-dev/AllTraffic/2026/11/25/06/a.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    want, want_stats = per_line(tmp_path)
    stats = ReadStats()
    assert_same(list(iter_inferences(tmp_path, stats, batch_records=6)), want)
    assert stats == want_stats and stats.skipped == 2
    assert "candidate 3 field 'price': expected a finite number, got 'cheap'" in str(
        stats.first_error
    )
