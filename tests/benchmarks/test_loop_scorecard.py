"""`benchmarks/loop_scorecard.py`'s `score_run` on small hand-made run summaries."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> Any:
    spec = importlib.util.spec_from_file_location(
        "loop_scorecard", ROOT / "benchmarks" / "loop_scorecard.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("loop_scorecard", module)
    spec.loader.exec_module(module)
    return module


scorecard = _load()
score_run = scorecard.score_run

START = dt.date(2026, 3, 2)
DRIFT = "mlops-dev-recommender-drift"
QUALITY = "mlops-dev-recommender-quality"


def _date(index: int) -> str:
    return (START + dt.timedelta(days=index)).isoformat()


def record(
    scenario: str,
    days: int = 30,
    shift_day: int = 3,
    quality: dict[int, float] | None = None,
    serving: dict[int, int] | None = None,
    lag: int = 6,
    **extra: Any,
) -> dict[str, Any]:
    """A summary in `RunRecord.to_json()`'s shape. `quality`: monitored day index -> live
    NDCG@10 (known `lag` days later); `serving`: day index -> version from then on."""
    quality = quality or {}
    serving = serving or {0: 1}
    version, day_records = None, []
    for index in range(days):
        version = serving.get(index, version)
        monitored = index - lag
        day = {"index": index, "date": _date(index), "serving_version": version, "alarms": {}}
        if monitored >= 0:
            day["monitored_day"] = _date(monitored)
            day["ndcg_at_10"] = quality.get(monitored)
        day_records.append(day)
    return {
        "settings": {"scenario": scenario, "seed": 1, "shift_day": shift_day, "days": days},
        "start_date": _date(0),
        "shift_date": _date(shift_day),
        "models": [{"version": 1, "status": "Approved", "day": None, "ndcg_at_10": 0.5}],
        "deployments": [{"day": None, "switched": True, "to": "ep-v1"}],
        "alarm_transitions": [],
        "retrain_requests": [],
        "executions": [],
        "days": day_records,
        **extra,
    }


def _alarm(day: int, name: str, to: str = "ALARM") -> dict[str, Any]:
    return {"day": day, "alarm": name, "from": "OK", "to": to, "time": ""}


def test_a_no_change_world_with_one_alarm_counts_one_false_alarm() -> None:
    run = record(
        "none",
        quality=dict.fromkeys(range(30), 0.5),
        alarm_transitions=[
            _alarm(0, DRIFT, to="OK"),
            _alarm(12, DRIFT),
            _alarm(13, DRIFT, to="OK"),
            _alarm(14, "mlops-dev-recommender-latency"),
        ],
        retrain_requests=[
            {"day": 12, "cause": f"alarm {DRIFT}", "started": False, "reason": "too early"}
        ],
    )
    score = score_run(run)
    assert score["false_alarms"] == 1
    assert score["false_retrains"] == 0 and score["retrains_started"] == 0
    assert score["other_alarms"] == {"latency": 1}
    assert score["drift_alarm_day"] is None  # nothing to detect
    assert score["checks"]["quiet"] is False
    assert score["quality_dropped"] is None and score["days_to_recovery"] is None


def test_a_quiet_no_change_world_passes() -> None:
    score = score_run(record("none", quality=dict.fromkeys(range(30), 0.5)))
    assert score["false_alarms"] == 0
    assert score["checks"]["quiet"] is True
    assert score["pre_change_level"] == pytest.approx(0.5)
    assert score["final_ratio"] == pytest.approx(1.0)


def test_detection_delay_counts_days_from_the_change_and_earlier_alarms_are_false() -> None:
    run = record(
        "preference-shift",
        shift_day=3,
        alarm_transitions=[
            _alarm(1, QUALITY),
            _alarm(2, QUALITY, to="OK"),
            _alarm(5, DRIFT),
            _alarm(9, QUALITY),
        ],
        retrain_requests=[
            {"day": 1, "cause": f"alarm {QUALITY}", "started": True, "reason": "started"},
            {"day": 9, "cause": f"alarm {QUALITY}", "started": True, "reason": "started"},
        ],
    )
    score = score_run(run)
    assert score["change_day"] == 3
    assert score["false_alarms"] == 1 and score["false_retrains"] == 1
    assert score["drift_alarm_day"] == 2
    assert score["quality_alarm_day"] == 6
    assert score["retrains_by_cause"] == {"quality": 2}
    assert score["checks"]["drift_in_time"] is True
    assert score["checks"]["quiet"] is False


def test_recovery_is_the_first_retrained_day_back_within_five_percent() -> None:
    # pre-change 0.5; the change (day 3) drops quality to 0.3; a retrain serves from day 12
    # and its days score 0.5, so trailing 3-day means are 0.367, 0.433, 0.5 from day 12 on
    quality = {d: 0.5 for d in range(3)} | {d: 0.3 for d in range(3, 12)}
    quality |= {d: 0.5 for d in range(12, 24)}
    run = record(
        "preference-shift",
        quality=quality,
        serving={0: 1, 12: 2},
        models=[
            {"version": 1, "status": "Approved", "day": None, "ndcg_at_10": 0.45},
            {"version": 2, "status": "Approved", "day": 11, "ndcg_at_10": 0.5},
        ],
        deployments=[
            {"day": None, "switched": True, "to": "ep-v1"},
            {"day": 11, "switched": True, "to": "ep-v2"},
        ],
        alarm_transitions=[_alarm(4, DRIFT), _alarm(10, QUALITY)],
        retrain_requests=[
            {"day": 4, "cause": f"alarm {DRIFT}", "started": False, "reason": "too early"},
            {"day": 10, "cause": f"alarm {QUALITY}", "started": True, "reason": "started"},
        ],
        executions=[
            {"day": None, "pipeline": "p-training", "status": "Succeeded", "steps": {}},
            {"day": 10, "pipeline": "p-training", "status": "Succeeded", "steps": {}},
        ],
    )
    score = score_run(run)
    assert score["pre_change_level"] == pytest.approx(0.5)
    assert score["pre_change_source"] == "live"
    assert score["quality_dropped"] is True
    assert score["min_ratio"] == pytest.approx(0.6)
    # monitored day 14 (11 days after the change) is the first whose trailing mean is 0.5;
    # its labels were complete on day 20
    assert score["days_to_recovery"] == 11
    assert score["recovery_seen_day"] == 17
    assert score["deployed"] == 1 and score["first_deploy_day"] == 8
    assert score["retrains_started"] == 1 and score["false_alarms"] == 0
    assert score["final_ratio"] == pytest.approx(1.0)
    assert score["checks"] == {
        "quiet": True,
        "drift_in_time": True,
        "deployed_in_time": True,
        "recovered_in_time": True,
        "rejection_retried": None,
    }


def test_no_recovery_without_a_retrained_model_and_a_rejection_not_retried() -> None:
    quality = {d: 0.5 for d in range(3)} | {d: 0.4 for d in range(3, 30)}
    run = record(
        "price-shock",
        quality=quality,
        executions=[
            {"day": None, "pipeline": "p-training", "status": "Succeeded", "steps": {}},
            {
                "day": 9,
                "pipeline": "p-training",
                "status": "Failed",
                "steps": {"CheckQuality": "Succeeded", "RejectModel": "Failed"},
            },
        ],
    )
    score = score_run(run)
    assert score["quality_dropped"] is True
    assert score["days_to_recovery"] is None
    assert score["rejected"] == 1 and score["retried"] is False and score["failed"] == 0
    assert score["checks"]["recovered_in_time"] is False
    assert score["checks"]["rejection_retried"] is False


def test_without_monitored_days_before_the_change_the_held_out_level_is_used() -> None:
    score = score_run(record("new-items", shift_day=0, quality={d: 0.4 for d in range(20)}))
    assert score["pre_change_source"] == "held-out"
    assert score["pre_change_level"] == pytest.approx(0.5)


def test_a_sparse_record_scores_without_raising() -> None:
    score = score_run({"settings": {"scenario": "none"}})
    assert score["false_alarms"] == 0 and score["pre_change_level"] is None
    assert score["final_level"] is None


def test_alarm_onsets_fall_back_to_the_days_states() -> None:
    run = record("none")
    del run["alarm_transitions"]
    run["days"][5]["alarms"] = {DRIFT: "ALARM"}
    run["days"][6]["alarms"] = {DRIFT: "ALARM"}
    assert score_run(run)["false_alarms"] == 1


def test_aggregate_and_tables_render() -> None:
    scores = [score_run(record("none", quality=dict.fromkeys(range(30), 0.5)))] * 2
    summary = {"none": scorecard.aggregate(scores)}
    assert summary["none"]["checks"]["quiet"] == {"pass": 2, "of": 2}
    assert "| none | 2 |" in scorecard.scenario_table(summary)
    assert scorecard.run_table(scores).count("\n| none |") == 2


@pytest.mark.parametrize(
    ("cause", "kind"),
    [
        ("alarm mlops-dev-recommender-drift", "drift"),
        ("schedule mlops-dev-recommender-retrain-recheck", "recheck"),
        ("schedule mlops-dev-recommender-retrain-schedule", "schedule"),
    ],
)
def test_retrains_are_counted_by_what_started_them(cause: str, kind: str) -> None:
    assert scorecard._cause_kind(cause) == kind
