"""Decoding and validating endpoint requests into model input rows.

Two request shapes, so a caller can either score rows it built or let the endpoint rank:

* **score**: feature rows, each holding every name in ``MODEL_FEATURES`` (plus optional
  ``customer_id``/``item_id``, echoed back). JSON ``{"instances": [{...}, ...]}`` or a bare list
  of objects; CSV with a header row (``text/csv``).
* **rank**: JSON ``{"customer": {...}, "candidates": [{...}, ...], "k": 10}``; the customer
  record holds ``customer_id`` and every customer feature, each candidate ``item_id`` and every
  item feature (feature-store records; ``event_time`` is allowed and ignored). Rows are built by
  :func:`ml_code.features.definitions.score_rows`, the function training uses.

Numbers may arrive as JSON numbers or numeric strings (feature-store records store values as
strings) and must be finite; ``Integral`` features must be whole. Categorical values are
non-empty strings; values outside the training vocabulary are scored as missing, as in
training, and show up in drift monitoring. Rows are numbered from 1 in messages.
Anything else is a :class:`~ml_code.serving.errors.RequestError` naming the column, row and value.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import numpy as np
import pandas as pd

from ml_code.features.definitions import (
    ALL_FEATURES,
    CUSTOMER_FEATURES,
    EVENT_TIME_COLUMN,
    ID_COLUMNS,
    ITEM_FEATURES,
    MODEL_FEATURES,
    model_frame,
    score_rows,
)
from ml_code.serving.errors import RequestError

JSON = "application/json"
CSV = "text/csv"
CONTENT_TYPES = (JSON, CSV)
MAX_BYTES_ENV = "MLOPS_MAX_REQUEST_BYTES"
MAX_K_ENV = "MLOPS_MAX_K"
DEFAULT_K = 10

Where = Callable[[int], str]  # row number -> "candidate 3 field 'price'"
CellWhere = Callable[[str, int], str]  # (column, row number) -> the same


@dataclass(frozen=True)
class Limits:
    """Request bounds. Default: 6 MiB bodies (SageMaker's real-time payload cap), k <= 100."""

    max_bytes: int = 6 * 1024 * 1024
    max_k: int = 100

    @classmethod
    def from_env(cls) -> Limits:
        """Limits from ``MLOPS_MAX_REQUEST_BYTES`` / ``MLOPS_MAX_K``, defaults when unset."""
        default = cls()
        return cls(
            max_bytes=_positive_int_env(MAX_BYTES_ENV, default.max_bytes),
            max_k=_positive_int_env(MAX_K_ENV, default.max_k),
        )


def _positive_int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"environment variable {name} must be a positive integer, got {raw!r}")
    return value


@dataclass(frozen=True)
class ScoreRequest:
    """Feature rows to score; ``ids`` holds whichever ID columns the caller sent."""

    rows: pd.DataFrame
    ids: pd.DataFrame


@dataclass(frozen=True)
class RankRequest:
    """One customer's candidates to rank; ``rows`` as built by ``score_rows``."""

    customer_id: str
    rows: pd.DataFrame
    k: int


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type/Accept entry (``"text/csv; charset=utf-8"``)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_request(
    body: bytes | str | None, content_type: str | None, limits: Limits
) -> ScoreRequest | RankRequest:
    """Decode and validate one request body, or raise :class:`RequestError`."""
    kind = media_type(content_type)
    if kind not in CONTENT_TYPES:
        raise RequestError(
            f"unsupported content type {content_type!r}; send one of {', '.join(CONTENT_TYPES)}",
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        )
    raw = body.encode("utf-8") if isinstance(body, str) else (body or b"")
    if len(raw) > limits.max_bytes:
        raise RequestError(
            f"request body is {len(raw)} bytes; the limit is {limits.max_bytes}",
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(f"request body is not valid UTF-8: {exc}") from exc
    if not text.strip():
        raise RequestError("request body is empty")
    if kind == CSV:
        return _score_request(_csv_records(text), source="CSV")
    return _json_request(text, limits)


def _json_request(text: str, limits: Limits) -> ScoreRequest | RankRequest:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(f"malformed JSON: {exc}") from exc
    if isinstance(payload, list):
        return _score_request(object_rows(payload, "row"), source="JSON")
    if isinstance(payload, dict) and set(payload) == {"instances"}:
        instances = payload["instances"]
        if not isinstance(instances, list):
            raise RequestError(f"'instances' must be a list of objects, got {_kind(instances)}")
        return _score_request(object_rows(instances, "row"), source="JSON")
    if isinstance(payload, dict) and "customer" in payload:
        return _rank_request(payload, limits)
    raise RequestError(
        'JSON body must be {"instances": [...]}, a list of feature objects, or '
        '{"customer": {...}, "candidates": [...], "k": 10}'
    )


def _csv_records(text: str) -> list[dict[str, str]]:
    try:
        table = [row for row in csv.reader(io.StringIO(text, newline=""), strict=True) if row]
    except csv.Error as exc:
        raise RequestError(f"malformed CSV: {exc}") from exc
    header, rows = table[0], table[1:]
    if len(set(header)) != len(header):
        duplicated = sorted({c for c in header if header.count(c) > 1})
        raise RequestError(f"malformed CSV: header repeats columns {duplicated}")
    if not rows:
        raise RequestError("CSV body has a header row but no data rows")
    for number, row in enumerate(rows, start=1):
        if len(row) != len(header):
            raise RequestError(
                f"malformed CSV: row {number} has {len(row)} fields, the header has {len(header)}"
            )
    return [dict(zip(header, row, strict=True)) for row in rows]


def object_rows(items: list[Any], label: str) -> list[dict[str, Any]]:
    if not items:
        raise RequestError(f"no {label}s to score: the list is empty")
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise RequestError(
                f"{label} {number}: expected an object of features, got {_kind(item)}"
            )
    return items


def check_columns(
    records: Sequence[Mapping[str, Any]],
    required: Sequence[str],
    optional: Sequence[str],
    label: str,
    expected: str,
) -> None:
    """Every record holds all ``required`` keys and nothing beyond ``optional``."""
    required_set, allowed = set(required), set(required) | set(optional)
    for number, record in enumerate(records, start=1):
        keys = set(record)
        if keys == required_set:
            continue
        where = label if label == "customer" else f"{label} {number}"
        missing = [c for c in required if c not in keys]
        if missing:
            names = ", ".join(repr(c) for c in missing)
            raise RequestError(f"{where}: missing column{'s' * (len(missing) > 1)} {names}")
        unknown = sorted(keys - allowed)
        if unknown:
            names = ", ".join(repr(c) for c in unknown)
            also = f" and optionally {', '.join(optional)}" if optional else ""
            raise RequestError(
                f"{where}: unknown column{'s' * (len(unknown) > 1)} {names}; "
                f"expected {expected}{also}"
            )


def _score_request(records: list[dict[str, Any]], source: str) -> ScoreRequest:
    check_columns(records, MODEL_FEATURES, ID_COLUMNS, "row", "the model's features")
    frame = pd.DataFrame(records, columns=[*MODEL_FEATURES, *ID_COLUMNS], dtype=object)
    rows = validated_features(frame, MODEL_FEATURES, lambda c, i: f"column {c!r} row {i}", source)
    present_ids = [c for c in ID_COLUMNS if c in frame.columns and frame[c].notna().any()]
    ids = pd.DataFrame(index=frame.index)
    for column in present_ids:
        ids[column] = valid_ids(frame[column], lambda i, c=column: f"column {c!r} row {i}")
    return ScoreRequest(rows=model_frame(rows), ids=ids)


def _rank_request(payload: dict[str, Any], limits: Limits) -> RankRequest:
    unknown = sorted(set(payload) - {"customer", "candidates", "k"})
    if unknown:
        raise RequestError(
            f"unknown field{'s' if len(unknown) > 1 else ''} {unknown} in a ranking request; "
            "expected 'customer', 'candidates' and optionally 'k'"
        )
    customer, candidates = payload["customer"], payload.get("candidates")
    if not isinstance(customer, dict):
        raise RequestError(f"'customer' must be an object of features, got {_kind(customer)}")
    if not isinstance(candidates, list):
        raise RequestError(f"'candidates' must be a list of objects, got {_kind(candidates)}")
    k = valid_k(payload.get("k", DEFAULT_K), limits)
    customer_features = [f.name for f in CUSTOMER_FEATURES]
    item_features = [f.name for f in ITEM_FEATURES]
    check_columns(
        [customer],
        ["customer_id", *customer_features],
        [EVENT_TIME_COLUMN],
        "customer",
        "customer_id and the customer features",
    )
    check_columns(
        object_rows(candidates, "candidate"),
        ["item_id", *item_features],
        [EVENT_TIME_COLUMN],
        "candidate",
        "item_id and the item features",
    )
    customer_frame = pd.DataFrame([customer], columns=customer_features, dtype=object)
    customer_frame = validated_features(
        customer_frame, customer_features, lambda c, _: f"customer field {c!r}", "JSON"
    )
    customer_id = valid_ids(
        pd.Series([customer["customer_id"]]), lambda _: "customer field 'customer_id'"
    ).iloc[0]
    items = pd.DataFrame(candidates, columns=["item_id", *item_features], dtype=object)
    items = validated_features(
        items, item_features, lambda c, i: f"candidate {i} field {c!r}", "JSON"
    )
    items["item_id"] = valid_ids(items["item_id"], lambda i: f"candidate {i} field 'item_id'")
    duplicated = items["item_id"].duplicated()
    if duplicated.any():
        first = int(np.flatnonzero(duplicated.to_numpy())[0])
        raise RequestError(
            f"candidate {first + 1}: duplicate item_id {items['item_id'].iloc[first]!r}"
        )
    record = {"customer_id": customer_id, **customer_frame.iloc[0].to_dict()}
    return RankRequest(customer_id=customer_id, rows=score_rows(record, items), k=k)


def valid_k(value: Any, limits: Limits) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not _whole(value):
        raise RequestError(f"'k' must be an integer from 1 to {limits.max_k}, got {_show(value)}")
    if not 1 <= value <= limits.max_k:
        raise RequestError(f"'k' must be from 1 to {limits.max_k}, got {_show(value)}")
    return int(value)


def validated_features(
    frame: pd.DataFrame, columns: Sequence[str], where: CellWhere, source: str
) -> pd.DataFrame:
    """Check every feature cell's type; numeric columns come back as float64.

    ``frame`` holds the values as sent (object dtype), so a message can quote the original.
    """
    out = {name: frame[name] for name in frame.columns}
    for name in columns:
        feature = ALL_FEATURES[name]
        if feature.kind == "numeric":
            integral = feature.dtype == "Integral"
            out[name] = _numbers(frame[name], integral, lambda i, c=name: where(c, i))
        else:
            _check_strings(frame[name], source, lambda i, c=name: where(c, i))
    return pd.DataFrame(out, index=frame.index)


def _numbers(column: pd.Series, integral: bool, where: Where) -> pd.Series:
    values = np.fromiter((_as_float(v) for v in column), dtype=float, count=len(column))
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise RequestError(f"{where(i + 1)}: expected a finite number, got {_show(column.iloc[i])}")
    if integral:
        fractional = values != np.round(values)
        if fractional.any():
            i = int(np.flatnonzero(fractional)[0])
            raise RequestError(f"{where(i + 1)}: expected an integer, got {_show(column.iloc[i])}")
    return pd.Series(values, index=column.index, dtype="float64")


def _as_float(value: Any) -> float:
    """A cell as a float, NaN when it is not a number (bools and containers included)."""
    if isinstance(value, bool) or value is None:
        return math.nan
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return math.nan
    return math.nan


def _check_strings(column: pd.Series, source: str, where: Where) -> None:
    ok = column.map(lambda v: isinstance(v, str) and v.strip() != "").to_numpy(dtype=bool)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        value = column.iloc[i]
        what = "a non-empty string" if source == "JSON" else "a non-empty value"
        raise RequestError(f"{where(i + 1)}: expected {what}, got {_show(value)}")


def valid_ids(column: pd.Series, where: Where) -> pd.Series:
    def valid(v: Any) -> bool:
        if isinstance(v, bool):
            return False
        return (isinstance(v, str) and v.strip() != "") or isinstance(v, int)

    ok = column.map(valid).to_numpy(dtype=bool)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise RequestError(
            f"{where(i + 1)}: expected a non-empty string or integer id, "
            f"got {_show(column.iloc[i])}"
        )
    return column.map(str).astype(object)


def _whole(value: float) -> bool:
    return math.isfinite(value) and float(value).is_integer()


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def _show(value: Any) -> str:
    """A cell as the caller wrote it: strings quoted, JSON literals as JSON spells them."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null" if value is None else "NaN"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)[:60]
    return repr(value)
