"""Inference handler on the SageMaker scikit-learn serving contract.

SageMaker's container (and :mod:`ml_code.serving.app` locally) calls, per request,
``output_fn(predict_fn(input_fn(body, content_type), model), accept)`` with
``model = model_fn(model_dir)`` loaded once per worker.

Responses (``application/json`` by default, ``text/csv`` on request):

* score request: ``{"scores": [0.12, ...]}`` in row order, plus ``"customer_id"``/``"item_id"``
  lists when the rows carried them; CSV: a ``score`` column (and the id columns).
* rank request: ``{"customer_id": "c1", "items": [{"item_id": "i7", "score": 0.91, "rank": 1},
  ...]}``, the top ``k`` candidates by descending score (ties keep request order);
  CSV: ``item_id,score,rank``.

A bad request raises :class:`~ml_code.serving.errors.RequestError` (a ``ValueError`` with an
HTTP 4xx ``status``), never a crash of the worker. ``output_fn`` returns ``(body, content_type)``,
which the SageMaker inference toolkit accepts.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # imported as a top-level module by SageMaker's serving container
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import json  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from http import HTTPStatus  # noqa: E402
from typing import Any  # noqa: E402

import joblib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ml_code.features.definitions import MODEL_FEATURES  # noqa: E402
from ml_code.serving.errors import RequestError  # noqa: E402
from ml_code.serving.payloads import (  # noqa: E402
    CSV,
    JSON,
    Limits,
    RankRequest,
    ScoreRequest,
    media_type,
    parse_request,
)

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"


@dataclass(frozen=True)
class LoadedModel:
    """The estimator with the column order it was trained on."""

    estimator: Any
    feature_names: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    def score(self, rows: pd.DataFrame) -> np.ndarray:
        """Probability of the positive class (a purchase) for each row."""
        proba = self.estimator.predict_proba(rows[list(self.feature_names)])
        classes = list(getattr(self.estimator, "classes_", [0, 1]))
        positive = next((i for i, c in enumerate(classes) if c in (1, True, "1")), -1)
        return np.asarray(proba, dtype=float)[:, positive]


@dataclass(frozen=True)
class ScorePrediction:
    scores: np.ndarray
    ids: pd.DataFrame


@dataclass(frozen=True)
class RankPrediction:
    customer_id: str
    item_ids: list[str]
    scores: np.ndarray


def model_fn(model_dir: str | Path) -> LoadedModel:
    """Load ``model.joblib`` and ``metadata.json`` from an extracted model artifact.

    Fails fast when the model was trained on features this serving code does not build, or
    when ``MLOPS_MAX_REQUEST_BYTES``/``MLOPS_MAX_K`` are not positive integers.
    """
    Limits.from_env()  # a misconfigured limit fails the deployment, not every request
    root = Path(model_dir)
    estimator = joblib.load(root / MODEL_FILE)
    metadata_path = root / METADATA_FILE
    metadata = json.loads(metadata_path.read_text("utf-8")) if metadata_path.exists() else {}
    names = _feature_names(metadata)
    unknown = [n for n in names if n not in MODEL_FEATURES]
    if unknown:
        raise ValueError(
            f"{metadata_path}: the model expects features {unknown} that this serving code does "
            "not build; deploy serving code from the commit that trained the model"
        )
    return LoadedModel(estimator=estimator, feature_names=names, metadata=metadata)


def _feature_names(metadata: dict[str, Any]) -> tuple[str, ...]:
    listed = metadata.get("features", metadata.get("feature_names"))
    if not listed:
        return MODEL_FEATURES
    return tuple(f["name"] if isinstance(f, dict) else str(f) for f in listed)


def input_fn(request_body: bytes | str, request_content_type: str) -> ScoreRequest | RankRequest:
    """Decode and validate a request (limits from ``MLOPS_MAX_REQUEST_BYTES``/``MLOPS_MAX_K``)."""
    return parse_request(request_body, request_content_type, Limits.from_env())


def predict_fn(
    input_data: ScoreRequest | RankRequest, model: LoadedModel
) -> ScorePrediction | RankPrediction:
    """Score rows, or rank a customer's candidates and keep the top k."""
    scores = model.score(input_data.rows)
    if isinstance(input_data, ScoreRequest):
        return ScorePrediction(scores=scores, ids=input_data.ids)
    order = np.argsort(-scores, kind="stable")[: input_data.k]
    item_ids = input_data.rows["item_id"].to_numpy()[order]
    return RankPrediction(
        customer_id=input_data.customer_id,
        item_ids=[str(i) for i in item_ids],
        scores=scores[order],
    )


def negotiate_accept(accept: str | None) -> str:
    """The response media type for an Accept header; JSON unless CSV is asked for first."""
    for entry in (accept or "").split(","):
        kind = media_type(entry)
        if kind in ("", "*/*", "application/*", JSON):
            return JSON
        if kind in (CSV, "text/*"):
            return CSV
    raise RequestError(
        f"cannot answer in {accept!r}; accept {JSON} or {CSV}", HTTPStatus.NOT_ACCEPTABLE
    )


def output_fn(
    prediction: ScorePrediction | RankPrediction, accept: str | None
) -> tuple[bytes, str]:
    """Serialise a prediction; returns ``(body, content_type)``."""
    kind = negotiate_accept(accept)
    if isinstance(prediction, ScorePrediction):
        table = prediction.ids.assign(score=prediction.scores)
        if kind == CSV:
            return _csv(table[[*prediction.ids.columns, "score"]]), CSV
        body: dict[str, Any] = {"scores": prediction.scores.tolist()}
        body.update({c: prediction.ids[c].tolist() for c in prediction.ids.columns})
        return _json(body), JSON
    ranked = pd.DataFrame(
        {
            "item_id": prediction.item_ids,
            "score": prediction.scores,
            "rank": np.arange(1, len(prediction.item_ids) + 1),
        }
    )
    if kind == CSV:
        return _csv(ranked), CSV
    items = ranked.to_dict(orient="records")
    return _json({"customer_id": prediction.customer_id, "items": items}), JSON


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, default=_json_scalar, allow_nan=False).encode("utf-8")


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _csv(table: pd.DataFrame) -> bytes:
    return table.to_csv(index=False, lineterminator="\n").encode("utf-8")
