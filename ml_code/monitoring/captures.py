"""Reading a window of SageMaker data-capture files back into model rows and predictions.

Captured inputs are decoded with the endpoint's own request parser, so monitoring sees the
exact rows the model scored, pair features included, whichever request shape was used. Files
are streamed line by line: memory holds one request (or one chunk of rows), not the window.
A line that cannot be decoded (another model version's payload, a truncated file) is skipped
and counted rather than failing the job.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ml_code.serving.capture import parse_inference_time, payload_text
from ml_code.serving.payloads import (
    CSV,
    Limits,
    RankRequest,
    ScoreRequest,
    media_type,
    parse_request,
)

# Captured requests already passed the endpoint's limits; re-checking them here would drop data.
_UNLIMITED = Limits(max_bytes=2**62, max_k=2**31)


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
    for path in sorted(Path(directory).rglob("*.jsonl")):
        if stats is not None:
            stats.files += 1
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    yield where, json.loads(line)
                except json.JSONDecodeError as exc:
                    if stats is None:
                        raise
                    stats.skip(where, exc)


def iter_inferences(directory: str | Path, stats: ReadStats) -> Iterator[CapturedInference]:
    """Every decodable captured invocation under ``directory``."""
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
        yield inference


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


def iter_feature_chunks(
    directory: str | Path, stats: ReadStats, chunk_rows: int = 50_000
) -> Iterator[pd.DataFrame]:
    """Model rows of the window in chunks of about ``chunk_rows`` rows."""
    pending: list[pd.DataFrame] = []
    size = 0
    for inference in iter_inferences(directory, stats):
        pending.append(inference.request.rows)
        size += len(inference.request.rows)
        if size >= chunk_rows:
            yield pd.concat(pending, ignore_index=True)
            pending, size = [], 0
    if pending:
        yield pd.concat(pending, ignore_index=True)
