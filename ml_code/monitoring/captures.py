"""Reading a window of SageMaker data-capture files back into model rows and predictions.

Captured inputs are decoded with the endpoint's own request parser, so monitoring sees the
exact rows the model scored, pair features included, whichever request shape was used. Files
are streamed in batches of lines: memory holds one batch of requests (or one chunk of rows),
not the window. A line that cannot be decoded (another model version's payload, a truncated
file) is skipped and counted rather than failing the job.

Decoding a ranking request on its own costs tens of milliseconds of pandas overhead for a few
dozen rows, so the usual shape (a JSON ranking request answered in JSON or CSV) is decoded a
batch at a time: the same checks and the same :func:`score_rows` call as the endpoint's, once
for the batch. Any other line, or a batch whose values fail those checks, goes through
:func:`parse_capture` one line at a time, so results and skip reasons are the same either way.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml_code.features.definitions import (
    CUSTOMER_FEATURES,
    EVENT_TIME_COLUMN,
    ITEM_FEATURES,
    score_rows,
)
from ml_code.serving.capture import parse_inference_time, payload_text
from ml_code.serving.payloads import (
    CSV,
    DEFAULT_K,
    JSON,
    Limits,
    RankRequest,
    ScoreRequest,
    check_columns,
    media_type,
    object_rows,
    parse_request,
    valid_ids,
    valid_k,
    validated_features,
)

# Captured requests already passed the endpoint's limits; re-checking them here would drop data.
_UNLIMITED = Limits(max_bytes=2**62, max_k=2**31)
BATCH_RECORDS = 500
_CUSTOMER_FEATURES = [f.name for f in CUSTOMER_FEATURES]
_ITEM_FEATURES = [f.name for f in ITEM_FEATURES]
_CSV_HEADER = "item_id,score,rank\n"  # what the endpoint writes for a ranking (inference._csv)


@dataclass(frozen=True)
class CapturedInference:
    """One captured invocation: the parsed request and the scores the endpoint returned.

    ``scores`` aligns with ``request.rows`` (NaN for ranking candidates outside the top k);
    ``served_rank`` is each row's 1-based position in the response (0 when not returned).
    """

    event_id: str
    inference_id: str | None
    inference_time: datetime
    request: ScoreRequest | RankRequest
    scores: pd.Series
    served_rank: pd.Series


@dataclass
class ReadStats:
    """What a pass over the window saw; the jobs put it in their reports."""

    records: int = 0
    skipped: int = 0
    first_error: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    files: int = 0

    def skip(self, where: str, exc: Exception) -> None:
        self.skipped += 1
        if self.first_error is None:
            self.first_error = f"{where}: {exc}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "records": self.records,
            "skipped_records": self.skipped,
            "first_skip_reason": self.first_error,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
        }


def iter_jsonl(directory: str | Path, stats: ReadStats | None = None) -> Iterator[tuple[str, dict]]:
    """``(location, record)`` per line of every ``*.jsonl`` under ``directory``, in path order."""
    for where, record in _lines(directory, stats):
        if isinstance(record, json.JSONDecodeError):
            if stats is None:
                raise record
            stats.skip(where, record)
        else:
            yield where, record


def _lines(
    directory: str | Path, stats: ReadStats | None
) -> Iterator[tuple[str, Any | json.JSONDecodeError]]:
    """Like :func:`iter_jsonl`, but a bad line yields its error: batches skip it in line order."""
    for path in sorted(Path(directory).rglob("*.jsonl")):
        if stats is not None:
            stats.files += 1
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    record = exc
                yield f"{path}:{number}", record


Window = tuple[datetime, datetime]
"""[start, end) of inference times a job looks at; captures outside it are not read at all."""


def iter_inferences(
    directory: str | Path,
    stats: ReadStats,
    *,
    window: Window | None = None,
    batch_records: int = BATCH_RECORDS,
) -> Iterator[CapturedInference]:
    """Every decodable captured invocation under ``directory`` (in ``window`` when given)."""
    for batch in _batches(directory, stats, batch_records, window):
        for where, outcome in batch.outcomes:
            if _tally(stats, where, outcome):
                yield batch.inference(outcome) if isinstance(outcome, _Span) else outcome


def iter_feature_chunks(
    directory: str | Path,
    stats: ReadStats,
    chunk_rows: int = 50_000,
    *,
    window: Window | None = None,
    batch_records: int = BATCH_RECORDS,
) -> Iterator[pd.DataFrame]:
    """Model rows of the window in chunks of ``chunk_rows`` rows (the last one shorter)."""
    pending: list[pd.DataFrame] = []
    size = 0
    for batch in _batches(directory, stats, batch_records, window):
        for where, outcome in batch.outcomes:
            _tally(stats, where, outcome)
        for rows in batch.rows_in_order():
            pending.append(rows)
            size += len(rows)
        if size >= chunk_rows:
            window = pd.concat(pending, ignore_index=True)
            whole = size - size % chunk_rows
            for start in range(0, whole, chunk_rows):
                yield window.iloc[start : start + chunk_rows].reset_index(drop=True)
            pending = [window.iloc[whole:].reset_index(drop=True)] if whole < size else []
            size -= whole
    if pending:
        yield pd.concat(pending, ignore_index=True)


def _tally(stats: ReadStats, where: str, outcome: _Outcome) -> bool:
    """Count one line in ``stats``; False when it was skipped."""
    if isinstance(outcome, Exception):
        stats.skip(where, outcome)
        return False
    stats.records += 1
    when = outcome.inference_time
    stats.start = when if stats.start is None else min(stats.start, when)
    stats.end = when if stats.end is None else max(stats.end, when)
    return True


def parse_capture(record: dict[str, Any]) -> CapturedInference:
    """Decode one capture line (raises ``ValueError``/``KeyError`` when it is not ours)."""
    data, metadata = record["captureData"], record["eventMetadata"]
    request_payload, response_payload = data["endpointInput"], data["endpointOutput"]
    request = parse_request(
        payload_text(request_payload), request_payload["observedContentType"], _UNLIMITED
    )
    response_text = payload_text(response_payload)
    if media_type(response_payload["observedContentType"]) == CSV:
        response = pd.read_csv(io.StringIO(response_text), dtype={"item_id": str})
    else:
        response = _json_response(json.loads(response_text))
    scores, served = _align(request, response)
    return CapturedInference(
        event_id=str(metadata["eventId"]),
        inference_id=metadata.get("inferenceId"),
        inference_time=parse_inference_time(metadata["inferenceTime"]),
        request=request,
        scores=scores,
        served_rank=served,
    )


def _json_response(body: dict[str, Any]) -> pd.DataFrame:
    if "items" in body:
        return pd.DataFrame(body["items"], columns=["item_id", "score", "rank"]).astype(
            {"item_id": str}
        )
    return pd.DataFrame({"score": body["scores"]})


def _align(
    request: ScoreRequest | RankRequest, response: pd.DataFrame
) -> tuple[pd.Series, pd.Series]:
    index = request.rows.index
    if isinstance(request, ScoreRequest):
        if len(response) != len(index):
            raise ValueError(f"response has {len(response)} scores for {len(index)} rows")
        scores = pd.Series(response["score"].to_numpy(dtype=float), index=index)
        return scores, pd.Series(0, index=index)
    position = pd.Series(range(len(index)), index=request.rows["item_id"].astype(str).to_numpy())
    returned = response["item_id"].astype(str)
    unknown = set(returned) - set(position.index)
    if unknown:
        raise ValueError(f"response ranks items that were not candidates: {sorted(unknown)[:5]}")
    rows_at = position.loc[returned].to_numpy()
    scores = pd.Series(float("nan"), index=index)
    served = pd.Series(0, index=index)
    scores.iloc[rows_at] = response["score"].to_numpy(dtype=float)
    served.iloc[rows_at] = range(1, len(rows_at) + 1)
    return scores, served


# ---- batches ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ranking:
    """A capture line of the usual shape, its structure checked as ``parse_capture`` checks it.

    ``served`` is a JSON response as (request rows returned, their scores), or the data lines
    of a CSV response, which one ``read_csv`` call parses for the whole batch.
    """

    event_id: str
    inference_id: Any
    inference_time: datetime
    customer: dict[str, Any]
    candidates: list[dict[str, Any]]
    k: int
    positions: dict[str, int]
    served: tuple[list[int], list[float]] | str


@dataclass(frozen=True)
class _Span:
    """A line decoded with its batch: its model rows are ``_Batch.rows[start:stop]``."""

    event_id: str
    inference_id: Any
    inference_time: datetime
    customer_id: str
    k: int
    start: int
    stop: int


_Outcome = _Span | CapturedInference | Exception


@dataclass(frozen=True)
class _Batch:
    """Lines in file order, each a :class:`_Span`, a per-line result or why it was skipped."""

    outcomes: list[tuple[str, _Outcome]]
    rows: pd.DataFrame
    scores: np.ndarray
    served: np.ndarray

    def inference(self, span: _Span) -> CapturedInference:
        rows = self.rows.iloc[span.start : span.stop].reset_index(drop=True)
        return CapturedInference(
            event_id=span.event_id,
            inference_id=span.inference_id,
            inference_time=span.inference_time,
            request=RankRequest(customer_id=span.customer_id, rows=rows, k=span.k),
            scores=pd.Series(self.scores[span.start : span.stop], index=rows.index),
            served_rank=pd.Series(self.served[span.start : span.stop], index=rows.index),
        )

    def rows_in_order(self) -> list[pd.DataFrame]:
        """Every decoded line's rows in file order: runs of ``rows``, per-line results between."""
        pieces, taken, seen = [], 0, 0
        for _, outcome in self.outcomes:
            if isinstance(outcome, _Span):
                seen = outcome.stop
            elif isinstance(outcome, CapturedInference):
                pieces += [self.rows.iloc[taken:seen], outcome.request.rows]
                taken = seen
        pieces.append(self.rows.iloc[taken:])
        return [p for p in pieces if len(p)]


def _batches(
    directory: str | Path, stats: ReadStats, size: int, window: Window | None
) -> Iterator[_Batch]:
    lines = _lines(directory, stats)
    if window is not None:
        lines = (line for line in lines if _inside(line[1], window))
    while batch := list(islice(lines, size)):
        yield _decode(batch)


def _inside(record: Any, window: Window) -> bool:
    """Whether a line was captured in ``window``; a line without a readable time is kept, so
    it is skipped with its reason like any other broken line."""
    try:
        when = parse_inference_time(record["eventMetadata"]["inferenceTime"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return True
    return window[0] <= when < window[1]


def _decode(lines: list[tuple[str, Any]]) -> _Batch:
    """Decode a batch: lines of the usual shape together, the rest (or all, on failure) per line."""
    usual: dict[int, _Ranking] = {}
    for n, (_, record) in enumerate(lines):
        try:
            usual[n] = _ranking(record)
        except Exception:  # not the usual shape: parse_capture decodes it or says why not
            pass
    rows, customer_ids = pd.DataFrame(), []
    scores, served = np.empty(0), np.empty(0, dtype=np.int64)
    if usual:
        try:
            rows, customer_ids, scores, served = _rank_together(list(usual.values()))
        except Exception:  # a value the endpoint would reject: parse_capture names it, per line
            usual = {}
    spans: dict[int, _Span] = {}
    start = 0
    for (n, r), customer_id in zip(usual.items(), customer_ids, strict=True):
        stop = start + len(r.candidates)
        spans[n] = _Span(
            r.event_id, r.inference_id, r.inference_time, customer_id, r.k, start, stop
        )
        start = stop
    outcomes: list[tuple[str, _Outcome]] = []
    for n, (where, record) in enumerate(lines):
        if isinstance(record, json.JSONDecodeError):
            outcomes.append((where, record))
        elif n in spans:
            outcomes.append((where, spans[n]))
        else:
            try:
                outcomes.append((where, parse_capture(record)))
            except (KeyError, TypeError, ValueError) as exc:
                outcomes.append((where, exc))
    return _Batch(outcomes, rows, scores, served)


def _ranking(record: Any) -> _Ranking:
    """``record`` if it is a JSON ranking request answered in JSON or CSV, else raise.

    Checks what ``parse_capture`` checks per line except the feature values, which
    :func:`_rank_together` checks for the whole batch.
    """
    data, metadata = record["captureData"], record["eventMetadata"]
    request, response = data["endpointInput"], data["endpointOutput"]
    if media_type(request["observedContentType"]) != JSON:
        raise ValueError("not a JSON request")
    text = payload_text(request)
    text.encode("utf-8")  # parse_request refuses text that is not valid Unicode
    payload = json.loads(text)
    if not (
        isinstance(payload, dict)
        and "customer" in payload
        and set(payload) <= {"customer", "candidates", "k"}
        and isinstance(payload["customer"], dict)
        and isinstance(payload.get("candidates"), list)
    ):
        raise ValueError("not a ranking request")
    customer, candidates = payload["customer"], payload["candidates"]
    k = valid_k(payload.get("k", DEFAULT_K), _UNLIMITED)
    check_columns(
        [customer], ["customer_id", *_CUSTOMER_FEATURES], [EVENT_TIME_COLUMN], "customer", ""
    )
    check_columns(
        object_rows(candidates, "candidate"),
        ["item_id", *_ITEM_FEATURES],
        [EVENT_TIME_COLUMN],
        "candidate",
        "",
    )
    # ids as valid_ids maps them
    positions = {str(c["item_id"]): n for n, c in enumerate(candidates)}
    if len(positions) < len(candidates):
        raise ValueError("duplicate item_id")
    text = payload_text(response)
    if media_type(response["observedContentType"]) == CSV:
        served: tuple[list[int], list[float]] | str = _csv_lines(text)
    else:
        items = json.loads(text)["items"]
        if not isinstance(items, list):
            raise ValueError("not a ranking response")
        ids, values = [i["item_id"] for i in items], [i["score"] for i in items]
        if not all(isinstance(i, str) for i in ids) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        ):
            raise ValueError("not a ranking response")
        served = (_served_at(ids, positions), values)
    return _Ranking(
        event_id=str(metadata["eventId"]),
        inference_id=metadata.get("inferenceId"),
        inference_time=parse_inference_time(metadata["inferenceTime"]),
        customer=customer,
        candidates=candidates,
        k=k,
        positions=positions,
        served=served,
    )


def _csv_lines(text: str) -> str:
    """The data lines of a CSV ranking response, if pandas reads each as one row of 3 fields."""
    lines = text.removeprefix(_CSV_HEADER)
    if (
        len(lines) == len(text)
        or any(c in lines for c in '"\r\0')
        or not all(line.count(",") == 2 for line in lines.split("\n")[:-1])
        or lines[-1:] not in ("", "\n")
    ):
        raise ValueError("not a plain CSV ranking response")
    return lines


def _served_at(ids: list[str], positions: dict[str, int]) -> list[int]:
    """Request rows of the returned ids (raises on ids that were not candidates or repeat)."""
    at = [positions[i] for i in ids]
    if len(set(at)) < len(at):
        raise ValueError("an item is ranked twice")
    return at


def _rank_together(
    rankings: list[_Ranking],
) -> tuple[pd.DataFrame, list[str], np.ndarray, np.ndarray]:
    """Rows, customer ids, scores and served ranks of ``rankings``, built as ``parse_request``
    and ``_align`` build them per request, with one ``score_rows`` call; raises when a value
    fails the endpoint's checks."""
    customers = pd.DataFrame(
        [r.customer for r in rankings], columns=["customer_id", *_CUSTOMER_FEATURES], dtype=object
    )
    customers = validated_features(customers, _CUSTOMER_FEATURES, _nowhere, "JSON")
    customer_ids = valid_ids(customers["customer_id"], _nowhere).tolist()
    items = pd.DataFrame(
        [c for r in rankings for c in r.candidates],
        columns=["item_id", *_ITEM_FEATURES],
        dtype=object,
    )
    items = validated_features(items, _ITEM_FEATURES, _nowhere, "JSON")
    items["item_id"] = valid_ids(items["item_id"], _nowhere)
    # A customer can appear in several requests with different features: join on the request
    # number, then put the customer's id back.
    sizes = [len(r.candidates) for r in rankings]
    request = np.repeat(np.arange(len(rankings)), sizes)
    rows = score_rows(
        customers.assign(customer_id=np.arange(len(rankings))), items.assign(customer_id=request)
    )
    rows["customer_id"] = pd.Series(
        np.repeat(np.array(customer_ids, dtype=object), sizes), index=rows.index, dtype=object
    )
    scores = np.full(len(rows), np.nan)
    served = np.zeros(len(rows), dtype=np.int64)
    csv = _csv_responses([r.served for r in rankings if isinstance(r.served, str)])
    start = 0
    for r, size in zip(rankings, sizes, strict=True):
        if isinstance(r.served, str):
            ids, values = next(csv)
            at = _served_at(ids, r.positions)
        else:
            at, values = r.served
        scores[start + np.asarray(at, dtype=np.int64)] = np.asarray(values, dtype=float)
        served[start + np.asarray(at, dtype=np.int64)] = np.arange(1, len(at) + 1)
        start += size
    return rows, customer_ids, scores, served


def _csv_responses(bodies: list[str]) -> Iterator[tuple[list[Any], np.ndarray]]:
    """(item ids, scores) per CSV response body, all read by one ``read_csv`` call.

    The same parser as per response, so each number parses the same; only integers beyond
    2**53 could differ (read as int64 in one response, as float in the batch), so refuse them.
    """
    counts = [b.count("\n") for b in bodies]
    table = pd.DataFrame({"item_id": [], "score": []})
    if sum(counts):
        table = pd.read_csv(io.StringIO(_CSV_HEADER + "".join(bodies)), dtype={"item_id": str})
        score = table["score"]
        if score.dtype.kind not in "fi" or len(table) != sum(counts):
            raise ValueError("not a plain CSV ranking response")
        if (score[np.isfinite(score)].abs() >= 2**53).any():
            raise ValueError("scores too large to read the same in a batch")
    ids, scores = table["item_id"].tolist(), table["score"].to_numpy(dtype=float)
    start = 0
    for count in counts:
        yield ids[start : start + count], scores[start : start + count]
        start += count


def _nowhere(*_: Any) -> str:
    return "a batched request"  # messages are never shown: a failing batch is re-read per line
