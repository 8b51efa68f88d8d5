"""Does the drift alarm measure change? Offline calibration on synthetic worlds (no emulator).

For each seed and scenario a world is generated with ``HISTORY_DAYS`` of history before
``START`` and ``SIMULATED_DAYS`` simulated days after it; the scenario's change starts on
simulated day ``1 + seed % 3``. The baseline is built as training builds it: candidate rows
(``ml_code.features.build.build_examples``) at the ``TRAIN_CUTOFFS`` newest label-complete
cut-offs before ``START``, with one cluster per (customer, cut-off). Each simulated day then gets
the endpoint's traffic as ``infra.local.traffic.ranking_requests`` builds it (feature tables at
the day, ``generate_candidates``, a random sample of active customers) turned into model rows by
``score_rows``, which is what the drift job's capture reader does with a captured request. At
the end of every day the drift job's decision is taken over the trailing ``WINDOW_DAYS`` days,
published only when the window holds ``MIN_REQUESTS`` requests, as the deployed job does.

Printed per scenario and traffic level: days that drifted before the change (or at all, for
``none``), the first drift day counted from the change, and the largest statistic on days
without change. ``--output`` writes everything as JSON. World and traffic rows are cached under
``--cache`` (pickles keyed by seed and scenario), so re-running with other statistics is quick.

Run: ``python benchmarks/drift_calibration.py [--seeds 1 2 3 4 5] [--output FILE]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import pickle
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ml_code.data.generate import generate_world, get_scenario  # noqa: E402
from ml_code.features.build import TRAIN_CUTOFFS, build_examples, feature_tables  # noqa: E402
from ml_code.features.candidates import generate_candidates  # noqa: E402
from ml_code.features.compute import window  # noqa: E402
from ml_code.features.definitions import (  # noqa: E402
    EVENT_TIME_COLUMN,
    LABEL_HORIZON_DAYS,
    LOOKBACK_DAYS,
    MODEL_FEATURES,
    model_features,
    score_rows,
)
from ml_code.monitoring import drift  # noqa: E402
from ml_code.monitoring.baseline import compute_baseline  # noqa: E402
from ml_code.monitoring.metrics import DEFAULT_PSI_THRESHOLD  # noqa: E402

START = dt.date(2026, 1, 7)
HISTORY_DAYS = 49
SIMULATED_DAYS = 30
SCENARIOS = ("none", "preference-shift", "price-shock", "new-items")
RATES = (20, 100)
WINDOW_DAYS = 7
MIN_REQUESTS = 100
DETECT_WITHIN_DAYS = 5


def shift_offset(seed: int) -> int:
    """The simulated day the change starts (1..3), varied with the seed."""
    return 1 + seed % 3


def baseline_rows(world: Any) -> tuple[pd.DataFrame, int]:
    """Candidate rows at the training cut-offs and their number of (customer, cut-off) groups.

    The cut-offs are the ``TRAIN_CUTOFFS`` newest whose label window closes before ``START``,
    the population the endpoint is trained on and, later, scores.
    """
    dataset = world.dataset(through=START - dt.timedelta(days=1))
    newest = START - dt.timedelta(days=LABEL_HORIZON_DAYS)
    cutoffs = [newest - dt.timedelta(days=k) for k in range(TRAIN_CUTOFFS)]
    rows = pd.concat(
        [build_examples(dataset, c, with_labels=False) for c in cutoffs], ignore_index=True
    )
    groups = int(rows[["customer_id", EVENT_TIME_COLUMN]].drop_duplicates().shape[0])
    return rows[["customer_id", "item_id", *MODEL_FEATURES]], groups


def day_requests(world: Any, day: dt.date, customers: int, seed: int) -> pd.DataFrame:
    """Model rows of ``customers`` ranking requests on ``day``, a ``request`` column numbering
    them in sampling order (so the first 20 requests are a sample of 20)."""
    dataset = world.dataset(through=day - dt.timedelta(days=1))
    customer_table, item_table = feature_tables(dataset, day)
    history = dataset.interactions
    pairs = generate_candidates(customer_table, item_table, history, day)
    active = window(history, day, LOOKBACK_DAYS)["customer_id"].unique()
    ids = pairs.loc[pairs["customer_id"].isin(active), "customer_id"].drop_duplicates().to_numpy()
    rng = np.random.default_rng([seed, day.toordinal()])
    chosen = rng.choice(ids, size=min(customers, len(ids)), replace=False)
    order = pd.Series(np.arange(len(chosen)), index=chosen.astype(str))
    chosen_pairs = pairs[pairs["customer_id"].isin(chosen)]
    rows = score_rows(
        customer_table[customer_table["customer_id"].isin(chosen)],
        chosen_pairs.merge(item_table, on="item_id"),
    )
    rows.insert(0, "request", rows["customer_id"].map(order).to_numpy())
    return rows.sort_values(["request", "item_id"], kind="stable").reset_index(drop=True)


def _cached(path: Path, build: Any) -> Any:
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(value))
    return value


def world_for(seed: int, scenario: str) -> Any:
    start = START - dt.timedelta(days=HISTORY_DAYS)
    return generate_world(
        seed=seed,
        start_date=start,
        days=HISTORY_DAYS + SIMULATED_DAYS,
        scenario=get_scenario(scenario, shift_day=HISTORY_DAYS + shift_offset(seed)),
    )


def simulate(seed: int, scenario: str, cache: Path) -> dict[str, Any]:
    """Baseline rows (shared by a seed's scenarios: nothing changes before ``START``) and the
    traffic rows of every simulated day at the highest rate."""

    def traffic() -> list[pd.DataFrame]:
        world = world_for(seed, scenario)
        return [
            day_requests(world, START + dt.timedelta(days=d), max(RATES), seed)
            for d in range(SIMULATED_DAYS)
        ]

    base = _cached(cache / f"baseline-{seed}.pkl", lambda: baseline_rows(world_for(seed, "none")))
    days = _cached(cache / f"traffic-{seed}-{scenario}.pkl", traffic)
    return {"baseline": base, "days": days}


def evaluate(
    baseline: Mapping[str, Any],
    days: Sequence[pd.DataFrame],
    rate: int,
    threshold: float,
    window_days: int = WINDOW_DAYS,
    min_requests: int = MIN_REQUESTS,
    daily: list[tuple[Any, int]] | None = None,
) -> list[dict[str, Any]]:
    """The drift job's report at the end of each simulated day, as the alarm would see it.

    ``daily``: the per-day accumulators and request counts of :func:`daily_shards` (computed
    here when not given), so several windows can share them.
    """
    if daily is None:
        daily = daily_shards(baseline, days, rate)
    out = []
    for d in range(len(daily)):
        accumulator = drift.DriftAccumulator(baseline)
        requests = 0
        for day, count in daily[max(0, d - window_days + 1) : d + 1]:
            accumulator.merge(day)  # shards of the window, one per day
            requests += count
        report = drift.drift_report(accumulator, threshold)
        published = requests >= min_requests
        out.append(
            {
                "day": d,
                "requests": requests,
                "published": published,
                "statistic": report["max_psi"],
                "feature": report["max_psi_feature"],
                "alarm": bool(published and report["max_psi"] > threshold),
                "per_feature": {
                    n: {k: f.get(k) for k in ("psi", "psi_raw", "p_value", "buckets")}
                    for n, f in report["features"].items()
                },
            }
        )
    return out


def daily_shards(
    baseline: Mapping[str, Any], days: Sequence[pd.DataFrame], rate: int
) -> list[tuple[Any, int]]:
    """One accumulator per simulated day over its first ``rate`` requests, and their count."""
    daily = []
    for rows in days:
        day = drift.DriftAccumulator(baseline)
        day.update(rows[rows["request"] < rate])
        daily.append((day, int(min(rate, rows["request"].nunique()))))
    return daily


def republish(
    reports: list[dict[str, Any]], min_requests: int, threshold: float
) -> list[dict[str, Any]]:
    """The same reports under another publication floor (only ``published``/``alarm`` change)."""
    out = []
    for r in reports:
        published = r["requests"] >= min_requests
        alarm = bool(published and r["statistic"] is not None and r["statistic"] > threshold)
        out.append({**r, "published": published, "alarm": alarm})
    return out


def summarise(scenario: str, seed: int, reports: list[dict[str, Any]]) -> dict[str, Any]:
    shift = shift_offset(seed) if scenario != "none" else SIMULATED_DAYS
    before = [r for r in reports if r["day"] < shift and r["published"]]
    after = [r["day"] - shift for r in reports if r["day"] >= shift and r["alarm"]]
    quiet = max((r["statistic"] for r in before), default=None)
    return {
        "scenario": scenario,
        "seed": seed,
        "shift_day": None if scenario == "none" else shift,
        "alarms_before_change": [r["day"] for r in before if r["alarm"]],
        "first_alarm_after_change": min(after) if after else None,
        "max_statistic_without_change": quiet,
        "feature_of_max": max(before, key=lambda r: r["statistic"])["feature"] if before else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    parser.add_argument("--rates", type=int, nargs="+", default=list(RATES))
    parser.add_argument("--threshold", type=float, default=DEFAULT_PSI_THRESHOLD)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/mlops-kit-drift-calibration"))
    parser.add_argument(
        "--window-days",
        type=int,
        nargs="+",
        default=[WINDOW_DAYS],
        help="trailing window(s) of the drift decision, in days",
    )
    parser.add_argument(
        "--min-requests",
        type=int,
        nargs="+",
        default=[MIN_REQUESTS],
        help="requests the window needs before the statistic is published",
    )
    parser.add_argument(
        "--no-per-day", action="store_true", help="leave the per-day reports out of --output"
    )
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    features = model_features()
    results: list[dict[str, Any]] = []
    for seed in args.seeds:
        for scenario in args.scenarios:
            started = time.perf_counter()
            sim = simulate(seed, scenario, args.cache)
            rows, groups = sim["baseline"]
            baseline = compute_baseline(rows, features)
            assert baseline["clusters"] == groups, "one cluster per customer and cut-off"
            for rate in args.rates:
                daily = daily_shards(baseline, sim["days"], rate)
                for window_days in args.window_days:
                    computed = evaluate(
                        baseline, sim["days"], rate, args.threshold, window_days, daily=daily
                    )
                    for min_requests in args.min_requests:
                        reports = republish(computed, min_requests, args.threshold)
                        summary = {
                            "rate": rate,
                            "window_days": window_days,
                            "min_requests": min_requests,
                            **summarise(scenario, seed, reports),
                        }
                        results.append(summary if args.no_per_day else {**summary, "days": reports})
                        print(
                            f"seed {seed} {scenario:>16} {rate:>3}/day window {window_days}d "
                            f"min {min_requests}: "
                            f"alarms before change {summary['alarms_before_change']}, first "
                            f"after change +{summary['first_alarm_after_change']}, max quiet "
                            f"{_fmt(summary['max_statistic_without_change'])} "
                            f"({summary['feature_of_max']}) "
                            f"[{time.perf_counter() - started:.0f}s]",
                            flush=True,
                        )
    for window_days in args.window_days:
        for min_requests in args.min_requests:
            group = [
                r
                for r in results
                if (r["window_days"], r["min_requests"]) == (window_days, min_requests)
            ]
            print(_table(group, args.threshold, window_days, min_requests))
    if args.output:
        args.output.write_text(json.dumps(results, indent=1, default=float) + "\n")
    return 0


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _table(
    results: list[dict[str, Any]],
    threshold: float,
    window_days: int = WINDOW_DAYS,
    min_requests: int = MIN_REQUESTS,
) -> str:
    lines = [
        f"\nthreshold {threshold}; window {window_days} days; published from {min_requests} "
        "requests",
        "rate  scenario          false alarms (seed:days)   first alarm after change (+days)  "
        "max quiet",
    ]
    keys = sorted({(r["rate"], r["scenario"]) for r in results}, key=lambda k: (k[0], k[1]))
    for rate, scenario in keys:
        group = [r for r in results if (r["rate"], r["scenario"]) == (rate, scenario)]
        false = {r["seed"]: r["alarms_before_change"] for r in group if r["alarms_before_change"]}
        first = [r["first_alarm_after_change"] for r in group] if scenario != "none" else []
        quiet = [r["max_statistic_without_change"] for r in group]
        quiet = [q for q in quiet if q is not None]
        late = [f for f in first if f is None or f > DETECT_WITHIN_DAYS]
        lines.append(
            f"{rate:>4}  {scenario:<16}  {str(false or 'none'):<25}  "
            f"{str(first) if first else '-':<22}{' LATE' if late else '':<11} "
            f"{_fmt(max(quiet) if quiet else None)}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
