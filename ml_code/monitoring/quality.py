"""Model quality of captured traffic once ground truth (purchases) arrives (a processing job).

Ground truth uses SageMaker's ground-truth merge format, one JSON line per inference::

    {"groundTruthData": {"data": "0,1,0", "encoding": "CSV"},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "<the request's inference id>"},
     "eventVersion": "0"}

``data`` holds one label per scored row, in request order: per row of a score request, per
candidate of a ranking request (1 = purchased within the label horizon; ``JSON`` encoding
``"[0, 1, 0]"`` and ``BASE64`` are read too). It joins the capture on ``inferenceId``, the
``X-Amzn-SageMaker-Inference-Id`` header of the request; a later line for the same id wins.

* **AUC** (scikit-learn's ``roc_auc_score``) over every labelled row that has a score: all rows
  of score requests, the returned top k of ranking requests (the others were never scored).
* **precision@10 / NDCG@10** per ranking request, in the order the customer was shown (the
  returned items, then the rest), averaged over rankings with a purchase, using
  :mod:`ml_code.training.metrics` so the numbers match offline evaluation.
* **ground_truth_coverage** = captured inferences with ground truth / captured inferences
  (inferences captured without an inference id can never be labelled and count against it).

Published metrics (namespace and names in :mod:`ml_code.monitoring.metrics`):

=========================  ===================  ==========================================
Metric                     Dimensions           Value
=========================  ===================  ==========================================
``model_auc``              Endpoint, Model      AUC; not sent when labels hold one class
``model_precision_at_10``  Endpoint, Model      mean precision@10; not sent without rankings
``model_ndcg_at_10``       Endpoint, Model      mean NDCG@10; not sent without rankings
``ground_truth_coverage``  Endpoint, Model      share of captured inferences labelled
=========================  ===================  ==========================================

Labels arrive a label horizon after the traffic they are about, so the window is offset, as
SageMaker's model-quality monitor offsets it: with ``--label-delay-days D`` the job scores the
requests captured from ``--window-end`` minus D + 1 days to ``--window-end`` minus D days
(default: every captured request), and coverage counts only those.

Run: ``python -m ml_code.monitoring.quality --capture DIR --ground-truth DIR --output DIR
[--window-end ISO] [--label-delay-days 6] [--endpoint NAME --model NAME --publish]``; writes
``DIR/quality_report.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a file, as SageMaker does
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
from collections.abc import Iterable, Mapping  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from ml_code.monitoring.captures import (  # noqa: E402
    CapturedInference,
    ReadStats,
    iter_inferences,
    iter_jsonl,
)
from ml_code.monitoring.metrics import (  # noqa: E402
    GROUND_TRUTH_COVERAGE,
    MODEL_AUC,
    MODEL_NDCG_AT_10,
    MODEL_PRECISION_AT_10,
    Datum,
    cloudwatch_request,
    parse_window_end,
    put,
)
from ml_code.serving.payloads import RankRequest  # noqa: E402
from ml_code.training.metrics import ndcg_at_k, precision_at_k  # noqa: E402

REPORT_FILE = "quality_report.json"
RANKING_K = 10  # fixed: the metric names say @10


def parse_labels(ground_truth: Mapping[str, Any]) -> np.ndarray:
    """The label vector of one ``groundTruthData`` object."""
    encoding = str(ground_truth.get("encoding", "CSV")).upper()
    data = ground_truth["data"]
    if encoding == "BASE64":
        data, encoding = base64.b64decode(data).decode("utf-8"), "CSV"
    if encoding == "JSON":
        parsed = json.loads(data) if isinstance(data, str) else data
        values = parsed if isinstance(parsed, list) else [parsed]
    else:
        values = str(data).replace("\n", ",").split(",")
    labels = np.asarray([float(v) for v in values if str(v).strip() != ""], dtype=float)
    if labels.size == 0 or not np.all(np.isfinite(labels)) or np.any(labels < 0):
        raise ValueError(f"labels must be finite non-negative numbers, got {data!r}")
    return labels


def load_ground_truth(directory: str | Path, stats: ReadStats) -> dict[str, np.ndarray]:
    """Labels keyed by inference id from every ``*.jsonl`` under ``directory``."""
    labels: dict[str, np.ndarray] = {}
    for where, record in iter_jsonl(directory, stats):
        try:
            inference_id = str(record["eventMetadata"]["inferenceId"])
            labels[inference_id] = parse_labels(record["groundTruthData"])
        except (KeyError, TypeError, ValueError) as exc:
            stats.skip(where, exc)
    return labels


@dataclass
class QualityAccumulator:
    """Joined (score, label) pairs of a window; memory grows with labelled rows only."""

    captured: int = 0
    labelled: int = 0
    mismatched: int = 0
    scores: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    ranking_groups: list[np.ndarray] = field(default_factory=list)
    ranking_order: list[np.ndarray] = field(default_factory=list)
    ranking_labels: list[np.ndarray] = field(default_factory=list)

    def add(self, inference: CapturedInference, labels: np.ndarray | None) -> None:
        """Count a captured inference and, when labelled, keep its scores and labels."""
        self.captured += 1
        if labels is None:
            return
        rows = len(inference.request.rows)
        if labels.size != rows:
            self.mismatched += 1
            return
        self.labelled += 1
        scores = inference.scores.to_numpy(dtype=float)
        scored = np.isfinite(scores)
        self.scores.append(scores[scored])
        self.labels.append(labels[scored])
        if isinstance(inference.request, RankRequest):
            self.ranking_groups.append(np.full(rows, inference.event_id, dtype=object))
            self.ranking_order.append(_shown_order_scores(inference.served_rank.to_numpy()))
            self.ranking_labels.append(labels)


def _shown_order_scores(served_rank: np.ndarray) -> np.ndarray:
    """Scores reproducing what the customer saw: returned items by rank, then the others."""
    served = served_rank > 0
    position = np.where(served, served_rank, served_rank.size + np.arange(served_rank.size) + 1)
    return -position.astype(float)


def quality_report(accumulator: QualityAccumulator) -> dict[str, Any]:
    """AUC, ranking metrics and coverage of the joined window."""
    scores = np.concatenate(accumulator.scores) if accumulator.scores else np.empty(0)
    labels = np.concatenate(accumulator.labels) if accumulator.labels else np.empty(0)
    positive = labels > 0
    auc = None
    if 0 < positive.sum() < positive.size:
        auc = float(roc_auc_score(positive, scores))
    precision = ndcg = None
    rankings = 0
    if accumulator.ranking_groups:
        groups = np.concatenate(accumulator.ranking_groups)
        order = np.concatenate(accumulator.ranking_order)
        relevance = np.concatenate(accumulator.ranking_labels)
        precision = _finite(precision_at_k(groups, order, relevance, RANKING_K))
        ndcg = _finite(ndcg_at_k(groups, order, relevance, RANKING_K))
        rankings = len(accumulator.ranking_groups)
    return {
        "captured_inferences": accumulator.captured,
        "labelled_inferences": accumulator.labelled,
        "label_count_mismatches": accumulator.mismatched,
        "ground_truth_coverage": (
            accumulator.labelled / accumulator.captured if accumulator.captured else None
        ),
        "labelled_rows": int(labels.size),
        "positive_rows": int(positive.sum()),
        "auc": auc,
        "labelled_rankings": rankings,
        f"precision_at_{RANKING_K}": precision,
        f"ndcg_at_{RANKING_K}": ndcg,
    }


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def evaluate(
    inferences: Iterable[CapturedInference], ground_truth: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """Join inferences with ground truth and report (the importable core of the job)."""
    accumulator = QualityAccumulator()
    for inference in inferences:
        key = inference.inference_id
        accumulator.add(inference, ground_truth.get(key) if key is not None else None)
    return quality_report(accumulator)


def quality_datums(report: Mapping[str, Any]) -> list[Datum]:
    """CloudWatch datums of a report, skipping statistics that could not be computed."""
    values = {
        MODEL_AUC: report["auc"],
        MODEL_PRECISION_AT_10: report[f"precision_at_{RANKING_K}"],
        MODEL_NDCG_AT_10: report[f"ndcg_at_{RANKING_K}"],
        GROUND_TRUTH_COVERAGE: report["ground_truth_coverage"],
    }
    return [Datum(name, value) for name, value in values.items() if value is not None]


def run(
    capture_dir: str | Path,
    ground_truth_dir: str | Path,
    output_dir: str | Path,
    *,
    endpoint: str | None = None,
    model: str | None = None,
    publish_metrics: bool = False,
    window_end: datetime | None = None,
    label_delay_days: float | None = None,
    cloudwatch: Any = None,
) -> dict[str, Any]:
    """The processing job: join, score, write ``quality_report.json``, optionally publish."""
    if publish_metrics and not (endpoint and model):
        raise ValueError("--publish needs --endpoint and --model (the metric dimensions)")
    if label_delay_days is not None and label_delay_days < 0:
        raise ValueError(f"--label-delay-days must not be negative, got {label_delay_days}")
    window_end = window_end or datetime.now(UTC)
    window = None
    if label_delay_days is not None:
        end = window_end - timedelta(days=label_delay_days)
        window = (end - timedelta(days=1), end)
    truth_stats, capture_stats = ReadStats(), ReadStats()
    ground_truth = load_ground_truth(ground_truth_dir, truth_stats)
    inferences = iter_inferences(capture_dir, capture_stats, window=window)
    report = {
        "endpoint": endpoint,
        "model": model,
        **evaluate(inferences, ground_truth),
        "window": capture_stats.as_dict(),
        "ground_truth": {
            "files": truth_stats.files,
            "records": len(ground_truth),
            "skipped_records": truth_stats.skipped,
            "first_skip_reason": truth_stats.first_error,
        },
    }
    report["window_end"] = window_end.isoformat()
    report["label_delay_days"] = label_delay_days
    if endpoint and model:
        report["cloudwatch"] = cloudwatch_request(
            quality_datums(report), endpoint=endpoint, model=model, timestamp=window_end
        )
    if publish_metrics:
        report["published_metrics"] = put(report["cloudwatch"], cloudwatch)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Model quality of captured traffic.")
    parser.add_argument("--capture", required=True, help="directory of data-capture .jsonl files")
    parser.add_argument("--ground-truth", required=True, help="directory of ground-truth .jsonl")
    parser.add_argument("--output", required=True, help="directory for quality_report.json")
    parser.add_argument("--endpoint")
    parser.add_argument("--model")
    parser.add_argument("--publish", action="store_true", help="put metrics to CloudWatch")
    parser.add_argument(
        "--window-end",
        default="now",
        help="ISO time the window ends, or now (the default); stamps metrics",
    )
    parser.add_argument(
        "--label-delay-days",
        type=float,
        help="score the day of requests this many days before --window-end (default: all)",
    )
    args = parser.parse_args(argv)
    report = run(
        args.capture,
        args.ground_truth,
        args.output,
        endpoint=args.endpoint,
        model=args.model,
        publish_metrics=args.publish,
        window_end=parse_window_end(args.window_end),
        label_delay_days=args.label_delay_days,
    )
    keys = ("auc", f"precision_at_{RANKING_K}", f"ndcg_at_{RANKING_K}", "ground_truth_coverage")
    print(json.dumps({k: report[k] for k in keys}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
