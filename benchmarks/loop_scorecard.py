"""Does the loop do its job? A scorecard of local runs over seeds and scenarios.

`python benchmarks/loop_scorecard.py` runs `mlops-kit local run` (``infra.local.scenario``) on
the dev stack for every seed of every scenario (default: seeds 1-5 of ``none``,
``preference-shift``, ``price-shock`` and ``new-items``, 30 simulated days, the change on day
3, no bad batch), several runs at a time in separate processes (``--workers``, default one per
core; each run has its own moto server and endpoint on free ports), plans the stack once and
hands the plan to every run. It prints a Markdown table with a row per scenario (over seeds),
one per run, the acceptance checks below with how many runs pass them, and writes everything
as JSON (``--json``, default ``benchmarks/results/loop_scorecard.json``). ``--runs-dir DIR``
keeps each run's folder (summary, report, jobs) as ``DIR/<scenario>-seed<seed>``; by default
they go to a temporary folder that is removed. ``--rescore DIR`` only scores the
``summary.json`` files found under DIR (no runs). The plan pins the source bundle built from
``ml_code/`` at the start: editing ``ml_code/`` while the grid runs makes every later run stop
at provisioning ("plan again").

Definitions (``score_run`` computes them from a run's ``summary.json``; day numbers are the
simulated day indices of ``RunRecord.days``, and an alarm's day is the day whose evaluation
raised it):

* Change day: the ``shift_day`` setting, i.e. the record's ``shift_date`` (counted from its
  ``start_date``). ``none`` has no change.
* Alarms: an alarm's kind is the last ``-`` part of its name (``drift``, ``quality``,
  ``errors``, ``latency``, ``invocations``). The model alarms are drift and quality.
* False alarms: transitions into ALARM of a model alarm in a ``none`` world (any day), or
  before the change day in a changed world. Retrains started by an alarm at those times are
  false retrains. Alarms of the other kinds are counted apart (``other_alarms``, by kind).
* Detection delay: days from the change day to the first drift alarm on or after it, and
  separately to the first quality alarm.
* Retrains started: retrain requests answered ``started`` (by cause: the alarm kind,
  ``recheck`` for the daily re-check of an alarm still in ALARM, or ``schedule``). Deployed:
  endpoint switches on a simulated day (the first model's deployment happens before day 0).
  Rejected: training executions whose ``RejectModel`` (Fail) step ran, i.e. the gate refused
  the candidate; ``failed`` counts training executions failing otherwise.
  Retried: after a rejection, another training execution started later.
* Live quality: a day's ``ndcg_at_10`` is the live NDCG@10 of the requests served on its
  ``monitored_day`` (labels arrive a label horizon later), by the model that served that day
  (``serving_version`` of the day whose date is ``monitored_day``).
* Pre-change level: mean live quality over monitored days before the change day. When no
  live quality precedes it (run too short, change too early, quality job failing) it is the
  first model's held-out ``ndcg_at_10`` (``models[0]``), and ``pre_change_source`` says
  ``held-out``. ``unmeasured_days`` counts monitored days without live quality.
* Quality dropped: a monitored day on or after the change, served by the first model, whose
  trailing mean (up to 3 monitored days, ending at it) is below 95% of the pre-change level,
  or a quality alarm on or after the change day.
* Days to recovery: days from the change to the first monitored day on or after it that is
  served by a retrained model and whose trailing 3-day mean live quality is within 5% of the
  pre-change level (at least 95% of it). ``recovery_seen_day`` is the simulated day that
  result was known (its labels complete), counted from the change.
* Final live quality: mean over the last 3 monitored days, and its ratio to the pre-change
  level.

Acceptance (``checks``, None where a check does not apply to a run): no-change worlds raise no
model alarm and start no retrain; a changed world raises the drift alarm 0-5 days after the
change and no model alarm before it; where quality dropped, a retrain is deployed within 12
days of the change and live quality recovers by day 20 after it; a rejected candidate is
retried.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

# Runs share the cores: OpenMP pools spinning for each other's cores slow every fit down (as
# in tests/conftest.py). Set before numpy or scikit-learn is imported, here and in workers.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCENARIOS = ("none", "preference-shift", "price-shock", "new-items")
SEEDS = (1, 2, 3, 4, 5)
DAYS = 30
SHIFT_DAY = 3
MODEL_ALARMS = ("drift", "quality")
TRAILING = 3
TOLERANCE = 0.05
DRIFT_WITHIN = 5
DEPLOY_WITHIN = 12
RECOVER_BY = 20
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "loop_scorecard.json"
_TRAINING_STEPS = ("Train", "CheckQuality", "RegisterModel", "RejectModel")
_REJECT_STEP = "RejectModel"


# -- scoring one run (pure: the summary JSON in, figures out) ---------------------------------


def score_run(record: Mapping[str, Any]) -> dict[str, Any]:
    """The scorecard's figures for one run, from its `summary.json` (`RunRecord.to_json()`).

    Tolerant of missing fields: what cannot be computed is None."""
    settings = record.get("settings") or {}
    scenario = str(settings.get("scenario") or "")
    changed = scenario != "none"
    days = [d for d in record.get("days") or [] if isinstance(d, Mapping)]
    start = _date(record.get("start_date")) or (_date(days[0].get("date")) if days else None)
    change_date = _date(record.get("shift_date"))
    if change_date is None and start is not None and settings.get("shift_day") is not None:
        change_date = start + dt.timedelta(days=int(settings["shift_day"]))
    if change_date is not None and start is not None:
        change = (change_date - start).days
    else:
        change = _int(settings.get("shift_day"))
        if change_date is None and change is not None and start is not None:
            change_date = start + dt.timedelta(days=change)

    def since_change(day: int | None) -> int | None:
        return None if day is None or change is None else day - change

    def before_change(day: int | None) -> bool:
        return change is not None and day is not None and day < change

    # alarms
    onsets = _alarm_onsets(record, days)
    false_alarms = 0
    first: dict[str, int | None] = dict.fromkeys(MODEL_ALARMS)
    other: dict[str, int] = {}
    for day, kind in onsets:
        if kind not in MODEL_ALARMS:
            other[kind] = other.get(kind, 0) + 1
            continue
        if not changed or before_change(day):
            false_alarms += 1
        elif first[kind] is None and day is not None:
            first[kind] = day

    # retrains
    requests = [r for r in record.get("retrain_requests") or [] if isinstance(r, Mapping)]
    started = [r for r in requests if r.get("started")]
    by_cause: dict[str, int] = {}
    false_retrains = 0
    for r in started:
        cause = _cause_kind(str(r.get("cause") or ""))
        by_cause[cause] = by_cause.get(cause, 0) + 1
        if cause != "schedule" and (not changed or before_change(_int(r.get("day")))):
            false_retrains += 1
    first_start = min((d for r in started if (d := _int(r.get("day"))) is not None), default=None)

    training = [e for e in record.get("executions") or [] if _is_training(e)]
    rejected_at = [i for i, e in enumerate(training) if _REJECT_STEP in (e.get("steps") or {})]
    failed = [
        e for i, e in enumerate(training) if e.get("status") == "Failed" and i not in rejected_at
    ]
    retried = len(training) > rejected_at[0] + 1 if rejected_at else None
    deploys = [
        d
        for d in record.get("deployments") or []
        if isinstance(d, Mapping) and d.get("switched") and d.get("day") is not None
    ]
    first_deploy = min((int(d["day"]) for d in deploys), default=None)

    # live quality
    models = [m for m in record.get("models") or [] if isinstance(m, Mapping)]
    first_version = _int(models[0].get("version")) if models else None
    served = {str(d.get("date")): _int(d.get("serving_version")) for d in days}
    if first_version is None:
        first_version = min((v for v in served.values() if v is not None), default=None)
    points = _monitored(days, served)  # (monitored date, ndcg, version, day index), by date
    values = [p[1] for p in points]
    trailing = [
        statistics.fmean(values[max(0, k - TRAILING + 1) : k + 1]) for k in range(len(values))
    ]

    pre_values = [p[1] for p in points if change_date is not None and p[0] < change_date]
    pre_source = None
    pre: float | None = None
    if pre_values:
        pre, pre_source = statistics.fmean(pre_values), "live"
    elif models and _float(models[0].get("ndcg_at_10")) is not None:
        pre, pre_source = _float(models[0].get("ndcg_at_10")), "held-out"

    def retrained(version: int | None) -> bool:
        return version is not None and first_version is not None and version != first_version

    after = [k for k, p in enumerate(points) if change_date is not None and p[0] >= change_date]
    dropped = None
    min_ratio = None
    recovery = recovery_seen = None
    if pre is not None and pre > 0 and after:
        ratios = [trailing[k] / pre for k in after]
        min_ratio = min(ratios)
        dropped = any(
            trailing[k] < (1 - TOLERANCE) * pre and not retrained(points[k][2]) for k in after
        )
        for k in after:
            if retrained(points[k][2]) and trailing[k] >= (1 - TOLERANCE) * pre:
                recovery = (points[k][0] - change_date).days
                recovery_seen = since_change(points[k][3])
                break
    if changed and first["quality"] is not None:
        dropped = True
    if not changed:
        dropped = None  # nothing changed: a dip is noise, counted by the false alarms

    final = statistics.fmean(values[-TRAILING:]) if values else None
    final_ratio = final / pre if final is not None and pre else None

    score: dict[str, Any] = {
        "scenario": scenario,
        "seed": settings.get("seed"),
        "days": len(days),
        "change_day": change,
        "change_date": change_date.isoformat() if change_date else None,
        "false_alarms": false_alarms,
        "false_retrains": false_retrains,
        "other_alarms": other,
        "drift_alarm_day": since_change(first["drift"]) if changed else None,
        "quality_alarm_day": since_change(first["quality"]) if changed else None,
        "retrains_started": len(started),
        "retrains_by_cause": by_cause,
        "retrain_refused": len(requests) - len(started),
        "first_retrain_day": since_change(first_start),
        "training_runs": len(training),
        "rejected": len(rejected_at),
        "failed": len(failed),
        "retried": retried,
        "deployed": len(deploys),
        "first_deploy_day": since_change(first_deploy),
        "pre_change_level": pre,
        "pre_change_source": pre_source,
        "monitored_days": len(points),
        "unmeasured_days": sum(
            1 for d in days if d.get("monitored_day") and _float(d.get("ndcg_at_10")) is None
        ),
        "quality_dropped": dropped,
        "min_ratio": min_ratio,
        "days_to_recovery": recovery,
        "recovery_seen_day": recovery_seen,
        "final_level": final,
        "final_ratio": final_ratio,
        "serving_versions": sorted({v for v in served.values() if v is not None}),
        "wall_seconds": round(sum((record.get("phases") or {}).values()), 1) or None,
    }
    score["checks"] = _checks(score, changed)
    return score


def _checks(score: Mapping[str, Any], changed: bool) -> dict[str, bool | None]:
    if not changed:
        quiet = score["false_alarms"] == 0 and score["retrains_started"] == 0
        return {
            "quiet": quiet,
            "drift_in_time": None,
            "deployed_in_time": None,
            "recovered_in_time": None,
            "rejection_retried": score["retried"] if score["rejected"] else None,
        }
    drift = score["drift_alarm_day"]
    dropped = score["quality_dropped"]
    deploy, recovery = score["first_deploy_day"], score["days_to_recovery"]
    return {
        "quiet": score["false_alarms"] == 0,
        "drift_in_time": drift is not None and 0 <= drift <= DRIFT_WITHIN,
        "deployed_in_time": (deploy is not None and deploy <= DEPLOY_WITHIN) if dropped else None,
        "recovered_in_time": (recovery is not None and recovery <= RECOVER_BY) if dropped else None,
        "rejection_retried": score["retried"] if score["rejected"] else None,
    }


def _alarm_onsets(
    record: Mapping[str, Any], days: list[Mapping[str, Any]]
) -> list[tuple[int | None, str]]:
    """(day, kind) of every transition into ALARM; from the days' alarm states when the
    record has no transitions list."""
    transitions = record.get("alarm_transitions")
    if transitions is not None:
        return [
            (_int(t.get("day")), _kind(str(t.get("alarm") or "")))
            for t in transitions
            if isinstance(t, Mapping) and t.get("to") == "ALARM"
        ]
    onsets: list[tuple[int | None, str]] = []
    previous: dict[str, str] = {}
    for d in days:
        for name, state in (d.get("alarms") or {}).items():
            if state == "ALARM" and previous.get(name) != "ALARM":
                onsets.append((_int(d.get("index")), _kind(name)))
            previous[name] = state
    return onsets


def _monitored(
    days: list[Mapping[str, Any]], served: Mapping[str, int | None]
) -> list[tuple[dt.date, float, int | None, int | None]]:
    seen: dict[dt.date, tuple[dt.date, float, int | None, int | None]] = {}
    for d in days:
        monitored, value = _date(d.get("monitored_day")), _float(d.get("ndcg_at_10"))
        if monitored is None or value is None:
            continue
        seen[monitored] = (
            monitored,
            value,
            served.get(monitored.isoformat()),
            _int(d.get("index")),
        )
    return [seen[k] for k in sorted(seen)]


def _is_training(execution: Any) -> bool:
    if not isinstance(execution, Mapping):
        return False
    steps = execution.get("steps") or {}
    return str(execution.get("pipeline", "")).endswith("-training") or any(
        s in steps for s in _TRAINING_STEPS
    )


def _kind(alarm: str) -> str:
    return alarm.rsplit("-", 1)[-1]


def _cause_kind(cause: str) -> str:
    """`alarm <name>` -> the alarm's kind; `schedule <...-recheck>` -> recheck (the rule that
    re-asks while an alarm stays on); `schedule <rule>` -> schedule."""
    what, _, name = cause.partition(" ")
    if what == "schedule" and name.endswith("-recheck"):
        return "recheck"
    return _kind(name) if what == "alarm" else what or "unknown"


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


# -- aggregation and tables -------------------------------------------------------------------


def aggregate(scores: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-scenario figures over its runs: totals, mean/min/max, per-seed lists, checks."""
    ok = [s for s in scores if not s.get("error")]
    out: dict[str, Any] = {"runs": len(scores), "errors": len(scores) - len(ok)}
    out["seeds"] = [s.get("seed") for s in ok]
    for key in (
        "false_alarms",
        "false_retrains",
        "retrains_started",
        "deployed",
        "rejected",
        "failed",
    ):
        values = [s[key] for s in ok]
        out[key] = {
            "total": sum(values),
            "runs_with_any": sum(1 for v in values if v),
            "per_seed": values,
        }
    for key in (
        "drift_alarm_day",
        "quality_alarm_day",
        "first_retrain_day",
        "first_deploy_day",
        "days_to_recovery",
        "recovery_seen_day",
        "pre_change_level",
        "min_ratio",
        "final_level",
        "final_ratio",
        "wall_seconds",
    ):
        out[key] = _spread([s.get(key) for s in ok])
    causes: dict[str, int] = {}
    for s in ok:
        for cause, n in (s.get("retrains_by_cause") or {}).items():
            causes[cause] = causes.get(cause, 0) + n
    out["retrains_by_cause"] = causes
    out["other_alarms"] = _sum_dicts(s.get("other_alarms") or {} for s in ok)
    out["quality_dropped"] = sum(1 for s in ok if s.get("quality_dropped"))
    out["retried"] = sum(1 for s in ok if s.get("retried"))
    out["pre_change_held_out"] = sum(1 for s in ok if s.get("pre_change_source") == "held-out")
    out["unmeasured_days"] = sum(s.get("unmeasured_days") or 0 for s in ok)
    checks: dict[str, dict[str, int]] = {}
    for s in ok:
        for name, passed in (s.get("checks") or {}).items():
            if passed is None:
                continue
            entry = checks.setdefault(name, {"pass": 0, "of": 0})
            entry["of"] += 1
            entry["pass"] += bool(passed)
    out["checks"] = checks
    return out


def _spread(values: Iterable[Any]) -> dict[str, Any]:
    values = list(values)
    known = [v for v in values if v is not None]
    return {
        "mean": statistics.fmean(known) if known else None,
        "min": min(known) if known else None,
        "max": max(known) if known else None,
        "n": len(known),
        "per_seed": values,
    }


def _sum_dicts(dicts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            total[k] = total.get(k, 0) + v
    return total


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _range(spread: Mapping[str, Any], runs: int, digits: int = 1) -> str:
    """`mean [min–max] (n/runs)`; n/runs only when some runs have no value."""
    if not spread["n"]:
        return "–"
    text = f"{spread['mean']:.{digits}f}"
    if spread["min"] != spread["max"]:
        text += f" [{_fmt(spread['min'], digits)}–{_fmt(spread['max'], digits)}]"
    if spread["n"] != runs:
        text += f" ({spread['n']}/{runs})"
    return text


def scenario_table(summary: Mapping[str, Mapping[str, Any]]) -> str:
    header = (
        "| scenario | runs | false alarms (runs) | drift alarm, day | quality alarm, day | "
        "retrains started | deployed | rejected / retried | first deploy, day | "
        "recovery, days | final / pre-change |"
    )
    lines = [header, "|" + "---|" * header.count(" | ") + "---|"]
    for name, agg in summary.items():
        runs = agg["runs"] - agg["errors"]
        errors = f" ({agg['errors']} failed)" if agg["errors"] else ""
        lines.append(
            f"| {name} | {runs}{errors} "
            f"| {agg['false_alarms']['total']} ({agg['false_alarms']['runs_with_any']}) "
            f"| {_range(agg['drift_alarm_day'], runs)} "
            f"| {_range(agg['quality_alarm_day'], runs)} "
            f"| {agg['retrains_started']['total']} "
            f"| {agg['deployed']['total']} "
            f"| {agg['rejected']['total']} / {agg['retried']} "
            f"| {_range(agg['first_deploy_day'], runs)} "
            f"| {_range(agg['days_to_recovery'], runs)} "
            f"| {_range(agg['final_ratio'], runs, 3)} |"
        )
    return "\n".join(lines)


def run_table(scores: Sequence[Mapping[str, Any]]) -> str:
    header = (
        "| scenario | seed | false alarms | drift | quality | retrains (by cause) | deployed | "
        "rejected | retried | first deploy | pre-change (source) | dropped | recovery | "
        "final | final / pre | wall s |"
    )
    lines = [header, "|" + "---|" * header.count(" | ") + "---|"]
    for s in scores:
        if s.get("error"):
            lines.append(f"| {s.get('scenario')} | {s.get('seed')} | error: {s['error'][:60]} |")
            continue
        causes = ", ".join(f"{k} {v}" for k, v in sorted(s["retrains_by_cause"].items()))
        pre = f"{_fmt(s['pre_change_level'], 3)} ({s['pre_change_source'] or '–'})"
        lines.append(
            f"| {s['scenario']} | {s['seed']} | {s['false_alarms']} "
            f"| {_fmt(s['drift_alarm_day'])} | {_fmt(s['quality_alarm_day'])} "
            f"| {s['retrains_started']}{f' ({causes})' if causes else ''} | {s['deployed']} "
            f"| {s['rejected']} | {_fmt(s['retried'])} | {_fmt(s['first_deploy_day'])} "
            f"| {pre} | {_fmt(s['quality_dropped'])} | {_fmt(s['days_to_recovery'])} "
            f"| {_fmt(s['final_level'], 3)} | {_fmt(s['final_ratio'], 3)} "
            f"| {_fmt(s['wall_seconds'])} |"
        )
    return "\n".join(lines)


def checks_lines(summary: Mapping[str, Mapping[str, Any]]) -> list[str]:
    names = {
        "quiet": "no false alarm (none: no retrain either)",
        "drift_in_time": f"drift alarm 0-{DRIFT_WITHIN} days after the change",
        "deployed_in_time": f"retrain deployed within {DEPLOY_WITHIN} days (quality dropped)",
        "recovered_in_time": f"recovered within {RECOVER_BY} days (quality dropped)",
        "rejection_retried": "a rejected candidate was retried",
    }
    lines = []
    for scenario, agg in summary.items():
        parts = [f"{names.get(n, n)}: {c['pass']}/{c['of']}" for n, c in agg["checks"].items()]
        lines.append(f"- {scenario}: " + ("; ".join(parts) if parts else "no checks apply"))
    return lines


# -- running ----------------------------------------------------------------------------------


def _run_one(job: Mapping[str, Any]) -> dict[str, Any]:
    """One run in a worker process; returns its score (or the error) and where it ran."""
    from infra.local.scenario import ScenarioSettings, run_scenario

    run_dir = Path(job["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with (run_dir / "log.txt").open("w") as log:
        try:
            settings = ScenarioSettings(
                project_dir=ROOT,
                stack=job["stack"],
                days=job["days"],
                seed=job["seed"],
                scenario=job["scenario"],
                shift_day=job["shift_day"],
                bad_batch_day=job["bad_batch_day"],
                run_dir=run_dir,
                plan=job["plan"],
                **(
                    {"requests_per_day": job["requests_per_day"]} if job["requests_per_day"] else {}
                ),
            )
            record = run_scenario(settings, log=lambda line: print(line, file=log, flush=True))
            score = score_run(record.to_json())
        except Exception:  # one failed run must not lose the grid
            text = traceback.format_exc()
            log.write(text)
            score = {"scenario": job["scenario"], "seed": job["seed"], "error": text.strip()}
    score["run_dir"] = str(run_dir)
    score["wall_seconds_total"] = round(time.perf_counter() - started, 1)
    return score


def _plan(stack: str) -> dict[str, Any]:
    from infra.plan.runner import plan_stack

    result = plan_stack(ROOT, stack)
    if not result.ok or result.doc is None:
        raise SystemExit(f"planning stack '{stack}' failed:\n{result.error}")
    return result.doc


def run_grid(args: argparse.Namespace, runs_dir: Path) -> list[dict[str, Any]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    started = time.perf_counter()
    plan = _plan(args.stack)
    print(f"planned stack '{args.stack}' in {time.perf_counter() - started:.1f} s", flush=True)
    jobs = [
        {
            "stack": args.stack,
            "days": args.days,
            "seed": seed,
            "scenario": scenario,
            "shift_day": args.shift_day,
            "bad_batch_day": None if args.no_bad_batch else args.bad_batch_day,
            "requests_per_day": args.requests_per_day,
            "run_dir": str(runs_dir / f"{scenario}-seed{seed}"),
            "plan": plan,
        }
        for scenario in args.scenarios
        for seed in args.seeds
    ]
    workers = max(1, min(args.workers or os.cpu_count() or 1, len(jobs)))
    print(f"{len(jobs)} runs, {workers} at a time, in {runs_dir}", flush=True)
    scores: list[dict[str, Any]] = []
    # spawn: a clean interpreter per worker, since a forked copy of this one would inherit
    # threads and environment it did not start
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_run_one, job) for job in jobs]
        for done, future in enumerate(as_completed(futures), 1):
            score = future.result()
            scores.append(score)
            state = "FAILED" if score.get("error") else "ok"
            print(
                f"[{done}/{len(jobs)}] {score['scenario']} seed {score['seed']}: {state} "
                f"in {score['wall_seconds_total']:.0f} s",
                flush=True,
            )
    order = {(j["scenario"], j["seed"]): i for i, j in enumerate(jobs)}
    return sorted(scores, key=lambda s: order[(s["scenario"], s["seed"])])


def rescore(directory: Path) -> list[dict[str, Any]]:
    scores = []
    for path in sorted(directory.rglob("summary.json")):
        score = score_run(json.loads(path.read_text()))
        score["run_dir"] = str(path.parent)
        scores.append(score)
    return scores


def _csv(kind: type) -> Any:
    return lambda text: [kind(part) for part in text.split(",") if part.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=_csv(int), default=list(SEEDS))
    parser.add_argument("--scenarios", type=_csv(str), default=list(SCENARIOS))
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--shift-day", type=int, default=SHIFT_DAY)
    parser.add_argument("--requests-per-day", type=int, default=None, help="default: the run's")
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--workers", type=int, default=None, help="default: one per core")
    bad = parser.add_mutually_exclusive_group()
    bad.add_argument("--no-bad-batch", dest="no_bad_batch", action="store_true", default=True)
    bad.add_argument("--bad-batch", dest="no_bad_batch", action="store_false")
    parser.add_argument("--bad-batch-day", type=int, default=4, help="with --bad-batch")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--runs-dir", type=Path, default=None, help="keep the runs' folders here")
    parser.add_argument("--rescore", type=Path, default=None, help="score summaries under DIR")
    args = parser.parse_args(argv)

    from ml_code.data.generate import SCENARIOS as KNOWN

    unknown = sorted(set(args.scenarios) - set(KNOWN))
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {sorted(KNOWN)}")

    started = time.perf_counter()
    if args.rescore is not None:
        scores = rescore(args.rescore)
    elif args.runs_dir is not None:
        scores = run_grid(args, args.runs_dir.resolve())
    else:
        tmp = Path(tempfile.mkdtemp(prefix="loop-scorecard-"))
        try:
            scores = run_grid(args, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for score in scores:
            score.pop("run_dir", None)  # removed
    wall = time.perf_counter() - started

    names = dict.fromkeys(s["scenario"] for s in scores)
    summary = {name: aggregate([s for s in scores if s["scenario"] == name]) for name in names}
    print()
    print(scenario_table(summary))
    print()
    print(run_table(scores))
    print()
    print("checks (runs passing / runs the check applies to):")
    print("\n".join(checks_lines(summary)))
    unmeasured = sum(a["unmeasured_days"] for a in summary.values())
    if unmeasured:
        print(
            f"note: {unmeasured} monitored day(s) have no live quality (the quality job failed "
            "or published nothing): see the runs' executions"
        )
    held_out = sum(a["pre_change_held_out"] for a in summary.values())
    if held_out:
        print(
            f"note: {held_out} run(s) had no live quality before the change; their pre-change "
            "level is the first model's held-out NDCG@10"
        )
    print(f"\nwall time {wall:.0f} s")

    result = {
        "settings": {
            "stack": args.stack,
            "seeds": args.seeds,
            "scenarios": args.scenarios,
            "days": args.days,
            "shift_day": args.shift_day,
            "requests_per_day": args.requests_per_day,
            "bad_batch_day": None if args.no_bad_batch else args.bad_batch_day,
            "workers": args.workers or os.cpu_count(),
            "rescored": str(args.rescore) if args.rescore else None,
        },
        "thresholds": {
            "trailing_days": TRAILING,
            "tolerance": TOLERANCE,
            "drift_within_days": DRIFT_WITHIN,
            "deploy_within_days": DEPLOY_WITHIN,
            "recover_by_days": RECOVER_BY,
        },
        "wall_seconds": round(wall, 1),
        "scenarios": summary,
        "runs": scores,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"wrote {args.json}")
    return 1 if any(s.get("error") for s in scores) else 0


if __name__ == "__main__":
    sys.exit(main())
