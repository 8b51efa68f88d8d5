"""What a local run shows: a console summary, `summary.json` and `report.html` in the run folder.

The HTML report draws its plots as inline SVG from the run's numbers (polylines, no plotting
library): a report must open from a folder with no network, and the kit should not grow a
dependency for three charts. Drift and quality points sit on the day of the traffic they
measure (known a label horizon later); the shift and every retrain (with its outcome) are
marked, so a reader sees cause and effect on one time axis.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from infra.local import story

if TYPE_CHECKING:
    from infra.local.scenario import RunRecord

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
STATE_COLOURS = {"OK": "#2ca02c", "ALARM": "#d62728", "INSUFFICIENT_DATA": "#bbbbbb"}
MAX_FEATURES = 8
Point = tuple[dt.date, float]


def write_outputs(record: RunRecord, run_dir: Path) -> tuple[Path, Path]:
    """`summary.json` and `report.html` in `run_dir`; returns their paths."""
    run_dir.mkdir(parents=True, exist_ok=True)
    summary = run_dir / "summary.json"
    summary.write_text(json.dumps(record.to_json(), indent=2, default=str) + "\n")
    report = run_dir / "report.html"
    report.write_text(render_html(record))
    return summary, report


# -- console ----------------------------------------------------------------------------------


def print_summary(record: RunRecord, console: Console) -> None:
    """The tables a user reads at the end of `mlops-kit local run`, then the story they tell."""
    console.print(_days_table(record))
    console.print(
        _table(
            "Dataset versions",
            ("version", "from", "rows", "files"),
            [(d["version"], d["source"], d["rows"], d["files"]) for d in record.dataset_versions],
        )
    )
    if record.quarantined:
        console.print(
            _table(
                "Quarantined batches",
                ("day", "location", "failed checks"),
                [(q["day"], q["location"], "; ".join(q["failures"])) for q in record.quarantined],
            )
        )
    console.print(
        _table(
            "Model versions",
            ("version", "trigger", "NDCG@10 (test)", "champion, same rows", "AUC (test)", "status"),
            [
                (
                    m["version"],
                    _trigger(m["trigger"]),
                    _fmt(m["ndcg_at_10"]),
                    _fmt(m["champion_ndcg_at_10"]),
                    _fmt(m["auc"]),
                    m["status"],
                )
                for m in record.models
            ],
        )
    )
    console.print(
        _table(
            "Training runs",
            ("day", "execution", "trigger", "status", "seconds", "why not registered"),
            [
                (
                    _day(e["day"]),
                    e["execution"],
                    _trigger(e["trigger"]),
                    e["status"],
                    e["seconds"],
                    e["failure"][:80],
                )
                for e in record.executions
                if e["trigger"]
            ],
        )
    )
    console.print(
        _table(
            "Retrain requests (handler answers)",
            ("day", "cause", "started", "reason"),
            [
                (_day(r["day"]), r["cause"], r["started"], (r["reason"] or "")[:70])
                for r in record.retrain_requests
            ],
        )
    )
    console.print(
        _table(
            "Alarm transitions",
            ("evaluated", "alarm", "from", "to"),
            [(a["time"], a["alarm"], a["from"], a["to"]) for a in record.alarm_transitions],
        )
    )
    console.print(
        _table(
            "Deployments (blue/green switches)",
            ("day", "endpoint", "from", "to", "switched"),
            [
                (_day(d["day"]), d["endpoint"], d["from"] or "-", d["to"], d["switched"])
                for d in record.deployments
            ],
        )
    )
    console.print(
        _table(
            "Time spent (seconds)",
            ("phase", "seconds"),
            [(name, f"{seconds:.1f}") for name, seconds in record.phases.items()]
            + [("total", f"{sum(record.phases.values()):.1f}")],
        )
    )
    console.print("\n[bold]What happened[/]", highlight=False)
    console.print("\n".join(story.tell(record)), highlight=False, markup=False)


def _days_table(record: RunRecord) -> Table:
    table = Table(title="Simulated days")
    for column in ("day", "date", "requests", "batch", "serving", "drift (max PSI)"):
        table.add_column(column)
    for column in ("labels of", "NDCG@10", "alarms in ALARM"):
        table.add_column(column)
    for day in record.days:
        firing = [name.rsplit("-", 1)[-1] for name, s in day.alarms.items() if s == "ALARM"]
        table.add_row(
            str(day.index),
            day.date,
            str(day.requests),
            day.batch,
            f"v{day.serving_version}" if day.serving_version else "-",
            _fmt(day.drift_max_psi),
            day.monitored_day or "-",
            _fmt(day.ndcg_at_10),
            ", ".join(firing) or "-",
        )
    return table


def _trigger(reason: str) -> str:
    """`alarm:<name>:<CloudWatch's reason>` as `alarm <name>`: the reason is in the report."""
    kind, _, rest = reason.partition(":")
    return f"{kind} {rest.split(':', 1)[0]}" if kind in ("alarm", "recheck") else reason


def _table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(value) for value in row))
    return table


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _day(value: int | None) -> str:
    return "setup" if value is None else str(value)


# -- HTML -------------------------------------------------------------------------------------


def render_html(record: RunRecord) -> str:
    """A self-contained page: settings, four plots, the tables of the console summary."""
    shift = dt.date.fromisoformat(record.shift_date) if record.shift_date else None
    markers = ([(shift, "shift")] if shift else []) + _retrain_markers(record)
    drift = _drift_series(record)
    thresholds = _alarm_thresholds(record)
    quality = {
        "NDCG@10 (labelled traffic)": [
            (dt.date.fromisoformat(d.monitored_day), d.ndcg_at_10)
            for d in record.days
            if d.monitored_day and d.ndcg_at_10 is not None
        ]
    }
    shortfall = {
        "shortfall (standard errors)": [
            (dt.date.fromisoformat(d.monitored_day), d.quality_shortfall_z)
            for d in record.days
            if d.monitored_day and d.quality_shortfall_z is not None
        ]
    }
    sections = [
        "<h2>Feature drift (noise-corrected PSI per monitored feature, of the last days of "
        "traffic up to each day)</h2>",
        line_chart(drift, markers, thresholds.get("drift"), "PSI"),
        "<h2>Model quality (NDCG@10 of labelled traffic, by day of traffic)</h2>",
        line_chart(quality, markers, None, "NDCG@10"),
        "<h2>Quality shortfall (what the quality alarm watches: standard errors below the serving "
        "model's held-out NDCG@10)</h2>",
        line_chart(shortfall, markers, thresholds.get("quality"), "z"),
        "<h2>Alarm states (at each day's evaluation)</h2>",
        alarm_timeline(record),
        _html_table(
            "Models",
            ("version", "trigger", "dataset", "NDCG@10 (test)", "champion, same rows", "status"),
            [
                (
                    m["version"],
                    _trigger(m["trigger"]),
                    m["dataset_version"],
                    _fmt(m["ndcg_at_10"]),
                    _fmt(m["champion_ndcg_at_10"]),
                    m["status"],
                )
                for m in record.models
            ],
        ),
        _html_table(
            "Dataset versions",
            ("version", "from", "rows", "manifest"),
            [
                (d["version"], d["source"], d["rows"], d["manifest"])
                for d in record.dataset_versions
            ],
        ),
        _html_table(
            "Quarantined batches",
            ("day", "location", "failed checks"),
            [(q["day"], q["location"], "; ".join(q["failures"])) for q in record.quarantined],
        ),
        _html_table(
            "Retrain requests",
            ("day", "cause", "started", "reason"),
            [(r["day"], r["cause"], r["started"], r["reason"]) for r in record.retrain_requests],
        ),
        _html_table(
            "Alarm transitions",
            ("evaluated", "alarm", "from", "to"),
            [(a["time"], a["alarm"], a["from"], a["to"]) for a in record.alarm_transitions],
        ),
        _html_table(
            "Time spent (seconds)",
            ("phase", "seconds"),
            [(k, f"{v:.1f}") for k, v in record.phases.items()],
        ),
    ]
    settings = html.escape(json.dumps(record.settings, default=str))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>mlops-kit local run: {html.escape(record.stack)}</title>"
        "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:2px 6px;font-size:13px}</style></head><body>"
        f"<h1>Local run of stack {html.escape(record.stack)}</h1>"
        f"<p>Simulation from {record.start_date}; customers change on {record.shift_date}."
        f"</p><p><code>{settings}</code></p>" + "\n".join(sections) + "</body></html>\n"
    )


def _drift_series(record: RunRecord) -> dict[str, list[tuple[dt.date, float]]]:
    series: dict[str, list[tuple[dt.date, float]]] = {}
    for day in record.days:
        when = dt.date.fromisoformat(day.date)  # drift: the week of traffic ending that day
        for feature, psi in day.drift_psi.items():
            series.setdefault(feature, []).append((when, psi))
    ranked = sorted(series, key=lambda f: -max(v for _, v in series[f]))
    return {feature: series[feature] for feature in ranked[:MAX_FEATURES]}


def _retrain_markers(record: RunRecord) -> list[tuple[dt.date, str]]:
    """Each retrain (at the alarm evaluation after its day) and what came of it."""
    if not record.start_date:
        return []
    start = dt.date.fromisoformat(record.start_date)
    markers = []
    for execution in record.executions:
        if execution["day"] is None or not execution["trigger"]:
            continue
        outcome = "registered" if execution["status"] == "Succeeded" else "rejected"
        why = execution["trigger"].split(":")[0]
        when = start + dt.timedelta(days=execution["day"] + 1)
        markers.append((when, f"retrain ({why}): {outcome}"))
    return markers


def _alarm_thresholds(record: RunRecord) -> dict[str, float]:
    """The drift and quality alarms' thresholds, as provisioned from the stack config."""
    metrics = {"drift": "feature_drift_max_psi", "quality": "quality_shortfall_z"}
    found = {}
    for key, metric in metrics.items():
        for alarm in record.alarms:
            if alarm["metric"] == metric:
                found[key] = float(alarm["threshold"])
    return found


def line_chart(
    series: Mapping[str, Sequence[tuple[dt.date, float]]],
    markers: Sequence[tuple[dt.date, str]] = (),
    threshold: float | None = None,
    y_label: str = "",
    width: int = 900,
    height: int = 300,
) -> str:
    """An SVG line chart: one polyline per series, dashed vertical markers, a threshold."""
    points = [p for values in series.values() for p in values]
    if not points:
        return "<p><em>No measurements in this run.</em></p>"
    dates = [p[0] for p in points] + [m[0] for m in markers]
    x0, x1 = min(dates), max(dates)
    span = max((x1 - x0).days, 1)
    values = [p[1] for p in points] + ([threshold] if threshold is not None else [])
    y0, y1 = min(0.0, min(values)), max(values) * 1.1 or 1.0
    left, right, top, bottom = 50, 180, 10, 30

    def x(day: dt.date) -> float:
        return left + (day - x0).days / span * (width - left - right)

    def y(value: float) -> float:
        return top + (1 - (value - y0) / ((y1 - y0) or 1.0)) * (height - top - bottom)

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"font-size='11' font-family='sans-serif'>",
        f"<line x1='{left}' y1='{y(y0)}' x2='{width - right}' y2='{y(y0)}' stroke='#333'/>",
        f"<line x1='{left}' y1='{top}' x2='{left}' y2='{height - bottom}' stroke='#333'/>",
        f"<text x='4' y='{top + 10}'>{html.escape(y_label)}</text>",
    ]
    for tick in (y0, (y0 + y1) / 2, y1):
        parts.append(f"<text x='4' y='{y(tick) + 4:.1f}'>{tick:.2f}</text>")
    for offset in range(0, span + 1, max(1, span // 8)):
        day = x0 + dt.timedelta(days=offset)
        parts.append(f"<text x='{x(day) - 14:.1f}' y='{height - 10}'>{day:%m-%d}</text>")
    if threshold is not None:
        parts.append(
            f"<line x1='{left}' y1='{y(threshold):.1f}' x2='{width - right}' "
            f"y2='{y(threshold):.1f}' stroke='#d62728' stroke-dasharray='2,2'/>"
            f"<text x='{width - right + 4}' y='{y(threshold) + 4:.1f}'>alarm threshold</text>"
        )
    for index, (day, label) in enumerate(markers):
        parts.append(
            f"<line x1='{x(day):.1f}' y1='{top}' x2='{x(day):.1f}' y2='{height - bottom}' "
            f"stroke='#555' stroke-dasharray='5,3'/>"
            f"<text x='{x(day) + 3:.1f}' y='{top + 10 + 12 * index}'>{html.escape(label)}</text>"
        )
    for index, (name, values) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        ordered = sorted(values)
        coords = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in ordered)
        parts.append(
            f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{coords}'/>"
        )
        parts += [
            f"<circle cx='{x(d):.1f}' cy='{y(v):.1f}' r='2.5' fill='{colour}'/>" for d, v in ordered
        ]
        parts.append(
            f"<text x='{width - right + 4}' y='{top + 24 + 14 * index}' fill='{colour}'>"
            f"{html.escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def alarm_timeline(record: RunRecord, width: int = 900, row: int = 22) -> str:
    """One row per alarm, one coloured cell per simulated day's evaluation."""
    names = sorted({name for day in record.days for name in day.alarms})
    if not names or not record.days:
        return "<p><em>No alarm evaluations in this run.</em></p>"
    left = 240
    cell = (width - left) / len(record.days)
    height = row * (len(names) + 1)
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        "font-size='11' font-family='sans-serif'>"
    ]
    for r, name in enumerate(names):
        parts.append(f"<text x='4' y='{r * row + 15}'>{html.escape(name)}</text>")
        for c, day in enumerate(record.days):
            state = day.alarms.get(name, "INSUFFICIENT_DATA")
            parts.append(
                f"<rect x='{left + c * cell:.1f}' y='{r * row + 3}' width='{cell - 1:.1f}' "
                f"height='{row - 6}' fill='{STATE_COLOURS.get(state, '#999')}'>"
                f"<title>{html.escape(day.date)}: {state}</title></rect>"
            )
    for c, day in enumerate(record.days):
        if c % max(1, len(record.days) // 8) == 0:
            parts.append(f"<text x='{left + c * cell:.1f}' y='{height - 4}'>{day.date[5:]}</text>")
    parts.append("</svg>")
    legend = " ".join(
        f"<span style='color:{colour}'>■ {state}</span>" for state, colour in STATE_COLOURS.items()
    )
    return "".join(parts) + f"<p>{legend}</p>"


def _html_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    return f"<h2>{html.escape(title)}</h2><table><tr>{head}</tr>{body}</table>"
