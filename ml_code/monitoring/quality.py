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
``quality_shortfall_z``    Endpoint, Model      see below; not sent without a reference
``ground_truth_coverage``  Endpoint, Model      share of captured inferences labelled
=========================  ===================  ==========================================

**Window.** Labels arrive a label horizon after the traffic they are about, so the window is
offset, as SageMaker's model-quality monitor offsets it: with ``--label-delay-days D`` and
``--window-days W`` the job scores the requests captured from ``--window-end`` minus D + W
days to ``--window-end`` minus D days (default: every captured request), and coverage counts
only those. One day of a small endpoint is too few outcomes to judge a ranking by: at 20
requests a day, a day's NDCG@10 rests on 2 to 14 purchases and its standard deviation (0.09 to
0.20) is several times any change worth acting on. W days (5 by default) pool enough of them:
30 to 50 rankings with a purchase at 20 requests a day.

**Minimum sample.** With fewer than ``--min-labelled`` rankings with a purchase in the window
(none at all in an endpoint's first days, before any label is complete) the job publishes no
quality metric, writes a report with ``"status": "insufficient data"`` and exits 0: no labels
yet is the normal state of a new endpoint, not a failed job, and silence is what the quality
alarm treats as not breaching.

**Shortfall.** A fixed NDCG threshold is either far below the live level (it never fires) or at
it (it fires on noise), and it is wrong for the next model. So the job compares the window with
the serving model's own held-out result, ``evaluation.json`` of its training run (``--reference``;
the training pipeline publishes it next to the baseline): its test NDCG@10 ``ref``, the standard
deviation ``s`` of per-customer NDCG@10 and the number ``m`` of test customers with a purchase.
With ``live`` the window's mean NDCG@10 over ``n`` rankings with a purchase::

    quality_shortfall_z = (ref * (1 - tolerance) - live) / sqrt(s**2 / n + s**2 / m)

the number of standard errors by which live quality falls short of the held-out level less a
tolerance (5% by default: the gap between a test split and the following weeks that is not
worth a retrain). The standard error uses the held-out ``s``, not the window's: it is what the
spread is when nothing changed, and a window's own estimate from a dozen purchases is itself
noisy. The ``s**2 / m`` term is the uncertainty of ``ref``, which every period shares.

Only requests from the day after the reference model's labels end (``labels_through`` in its
evaluation) are judged against it: a retrained model's first windows would otherwise hold its
predecessor's traffic, and the predecessor's failure would be read as the new model's.

**False alarms.** When nothing changed, ``live`` has mean ``ref`` and the shortfall is roughly
normal with mean ``-tolerance * ref / SE`` and standard deviation 1 (a bit less: the ``m`` term
is shared). So a period crosses a threshold of ``t`` standard errors with probability at most
``1 - Phi(t)``: 2.3% per period at ``t = 2``, and less the larger the sample (at ``ref`` 0.46,
``s`` 0.34 and 40 rankings, ``SE`` is 0.059, the mean is -0.39 and the chance is 0.8%). The
alarm asks for several periods in a row; consecutive windows share W - 1 days, so periods are
not independent and the rate falls less than the product would say, which is why the alarm's
periods count in windows, not days. A model packaged before ``evaluation.json`` existed (no
reference file) gets the raw metrics only.

Run: ``python -m ml_code.monitoring.quality --capture DIR --ground-truth DIR --output DIR
[--reference DIR] [--window-end ISO] [--label-delay-days 6] [--window-days 5]
[--min-labelled 10] [--tolerance 0.05] [--endpoint NAME --model NAME --publish]``; writes
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
    QUALITY_SHORTFALL_Z,
    Datum,
    cloudwatch_request,
    parse_window_end,
    put,
)
from ml_code.serving.payloads import RankRequest  # noqa: E402
from ml_code.training.metrics import per_customer_metrics  # noqa: E402

REPORT_FILE = "quality_report.json"
REFERENCE_FILE = "evaluation.json"
RANKING_K = 10  # fixed: the metric names say @10
DEFAULT_WINDOW_DAYS = 5
DEFAULT_MIN_LABELLED = 10
DEFAULT_TOLERANCE = 0.05
INSUFFICIENT_DATA = "insufficient data"


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
    precision = ndcg = ndcg_sd = None
    rankings = with_purchase = 0
    if accumulator.ranking_groups:
        table = per_customer_metrics(
            np.concatenate(accumulator.ranking_groups),
            np.concatenate(accumulator.ranking_order),
            np.concatenate(accumulator.ranking_labels),
            RANKING_K,
        )
        rankings, with_purchase = len(accumulator.ranking_groups), len(table)
        if with_purchase:
            precision = float(table[f"precision_at_{RANKING_K}"].mean())
            ndcg = float(table[f"ndcg_at_{RANKING_K}"].mean())
        if with_purchase > 1:
            ndcg_sd = float(table[f"ndcg_at_{RANKING_K}"].std(ddof=1))
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
        "rankings_with_purchase": with_purchase,
        f"precision_at_{RANKING_K}": precision,
        f"ndcg_at_{RANKING_K}": ndcg,
        f"ndcg_at_{RANKING_K}_standard_deviation": ndcg_sd,
    }


def evaluate(
    inferences: Iterable[CapturedInference], ground_truth: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """Join inferences with ground truth and report (the importable core of the job)."""
    accumulator = QualityAccumulator()
    for inference in inferences:
        key = inference.inference_id
        accumulator.add(inference, ground_truth.get(key) if key is not None else None)
    return quality_report(accumulator)


@dataclass(frozen=True)
class Reference:
    """The serving model's held-out NDCG@10: mean, per-list standard deviation, lists."""

    value: float
    standard_deviation: float
    count: int
    serving_since: datetime | None = None
    """The day after the model's labels end: no request before it can have been served by
    this model, so none is judged against its reference."""


def load_reference(directory: str | Path | None) -> Reference | None:
    """The reference in ``evaluation.json`` under ``directory`` (as `ml_code.training.evaluate`
    writes it), or None when there is none: a model packaged before the training pipeline
    published it, or a report without the per-customer spread."""
    if directory is None:
        return None
    paths = sorted(Path(directory).rglob(REFERENCE_FILE))
    if not paths:
        return None
    try:
        evaluation = json.loads(paths[0].read_text(encoding="utf-8"))
        ndcg = evaluation["ranking_metrics"][f"ndcg_at_{RANKING_K}"]
        value, count = float(ndcg["value"]), int(ndcg.get("count") or 0)
        since = _day_after((evaluation.get("evaluation") or {}).get("labels_through"))
        spread = ndcg.get("customer_standard_deviation")
        if spread is None and count:
            spread = float(ndcg["standard_deviation"]) * math.sqrt(count)
    except (KeyError, TypeError, ValueError):
        return None
    if spread is None or not (math.isfinite(value) and math.isfinite(spread)) or spread <= 0:
        return None
    return Reference(value, float(spread), count, since)


def _day_after(day: Any) -> datetime | None:
    try:
        start = datetime.fromisoformat(str(day)).replace(tzinfo=UTC)
    except ValueError:
        return None
    return start + timedelta(days=1)


def shortfall_z(
    reference: Reference, live: float, rankings: int, tolerance: float = DEFAULT_TOLERANCE
) -> float:
    """Standard errors by which ``live`` (a mean over ``rankings``) falls short of the
    reference less ``tolerance``; negative when live quality is above that level."""
    variance = reference.standard_deviation**2 / rankings
    if reference.count:
        variance += reference.standard_deviation**2 / reference.count
    return (reference.value * (1 - tolerance) - live) / math.sqrt(variance)


def quality_datums(report: Mapping[str, Any]) -> list[Datum]:
    """CloudWatch datums of a report, skipping statistics that could not be computed and, with
    too few labelled rankings, every quality statistic."""
    values = {GROUND_TRUTH_COVERAGE: report["ground_truth_coverage"]}
    if report.get("status") != INSUFFICIENT_DATA:
        values = {
            MODEL_AUC: report["auc"],
            MODEL_PRECISION_AT_10: report[f"precision_at_{RANKING_K}"],
            MODEL_NDCG_AT_10: report[f"ndcg_at_{RANKING_K}"],
            QUALITY_SHORTFALL_Z: report.get("quality_shortfall_z"),
            **values,
        }
    return [Datum(name, value) for name, value in values.items() if value is not None]


def judge(
    report: dict[str, Any],
    reference: Reference | None,
    *,
    min_labelled: int = DEFAULT_MIN_LABELLED,
    tolerance: float = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """Add the verdict to a report: enough labelled rankings or not, and the shortfall."""
    rankings = report["rankings_with_purchase"]
    live = report[f"ndcg_at_{RANKING_K}"]
    enough = rankings >= max(min_labelled, 1) and live is not None
    report["status"] = "ok" if enough else INSUFFICIENT_DATA
    report["min_labelled"] = min_labelled
    if not enough:
        report["reason"] = (
            f"{rankings} ranking(s) with a purchase in the window, fewer than the "
            f"{min_labelled} needed to publish quality"
        )
    report["tolerance"] = tolerance
    report["reference"] = (
        None
        if reference is None
        else {
            f"ndcg_at_{RANKING_K}": reference.value,
            "standard_deviation": reference.standard_deviation,
            "count": reference.count,
            "level": reference.value * (1 - tolerance),
        }
    )
    report["quality_shortfall_z"] = (
        shortfall_z(reference, live, rankings, tolerance)
        if enough and reference is not None
        else None
    )
    return report


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
    window_days: float = DEFAULT_WINDOW_DAYS,
    min_labelled: int = DEFAULT_MIN_LABELLED,
    tolerance: float = DEFAULT_TOLERANCE,
    reference_dir: str | Path | None = None,
    cloudwatch: Any = None,
) -> dict[str, Any]:
    """The processing job: join, score, write ``quality_report.json``, optionally publish."""
    if publish_metrics and not (endpoint and model):
        raise ValueError("--publish needs --endpoint and --model (the metric dimensions)")
    if label_delay_days is not None and label_delay_days < 0:
        raise ValueError(f"--label-delay-days must not be negative, got {label_delay_days}")
    if window_days <= 0:
        raise ValueError(f"--window-days must be positive, got {window_days}")
    if min_labelled < 0:
        raise ValueError(f"--min-labelled must not be negative, got {min_labelled}")
    if not 0 <= tolerance < 1:
        raise ValueError(f"--tolerance is a share of the reference in [0, 1), got {tolerance}")
    window_end = window_end or datetime.now(UTC)
    reference = load_reference(reference_dir)
    window = None
    if label_delay_days is not None:
        end = window_end - timedelta(days=label_delay_days)
        window = (end - timedelta(days=window_days), end)
        if reference is not None and reference.serving_since is not None:
            # a new model's first windows hold its predecessor's traffic: not judged by it
            window = (max(window[0], min(reference.serving_since, end)), end)
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
    judge(report, reference, min_labelled=min_labelled, tolerance=tolerance)
    report["window_end"] = window_end.isoformat()
    report["label_delay_days"] = label_delay_days
    report["window_days"] = window_days if window is not None else None
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
        help="score the requests this many days before --window-end (default: all)",
    )
    parser.add_argument(
        "--window-days",
        type=float,
        default=DEFAULT_WINDOW_DAYS,
        help="days of requests scored, ending --label-delay-days before --window-end",
    )
    parser.add_argument(
        "--min-labelled",
        type=int,
        default=DEFAULT_MIN_LABELLED,
        help="rankings with a purchase needed to publish quality (fewer: insufficient data)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="share of the reference NDCG@10 live quality may fall short by unremarked",
    )
    parser.add_argument("--reference", help="directory holding the serving model's evaluation.json")
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
        window_days=args.window_days,
        min_labelled=args.min_labelled,
        tolerance=args.tolerance,
        reference_dir=args.reference,
    )
    keys = (
        "status",
        "auc",
        f"precision_at_{RANKING_K}",
        f"ndcg_at_{RANKING_K}",
        "quality_shortfall_z",
        "ground_truth_coverage",
    )
    print(json.dumps({k: report[k] for k in keys}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
