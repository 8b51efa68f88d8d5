"""Validate a retail dataset batch before anything downstream may read it.

pandera schemas check types, ranges, nullability and key uniqueness of each table; referential
checks tie interactions to customers and the catalogue; partitions must hold only their own day's
events, and the newest partition must be at most ``max_age_days`` older than ``as_of``.

A failing batch produces ``validation_report.json`` and ``validation_report.md`` (per check: the
table, column, failing row count and a few example rows) and the script exits 1, so a pipeline
stops there. Validation never writes into its input; only an accepted batch is copied to the
output location, which therefore only ever holds data that passed.

Script::

    python -m ml_code.data.validate --input /opt/ml/processing/input/dataset \
        --output /opt/ml/processing/output/accepted --report /opt/ml/processing/output/report \
        [--as-of YYYY-MM-DD] [--max-age-days 2]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a file, as SageMaker does
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import pandas as pd  # noqa: E402
import pandera.pandas as pa  # noqa: E402

from ml_code.data.dataset import partition_dates, read_table  # noqa: E402
from ml_code.data.schema import (  # noqa: E402
    CATEGORIES,
    CUSTOMERS_FILE,
    EVENT_TYPES,
    ITEMS_FILE,
    PARTITION_FILE,
    SEGMENTS,
    partition_dir,
)

REPORT_JSON = "validation_report.json"
REPORT_MARKDOWN = "validation_report.md"
DEFAULT_MAX_AGE_DAYS = 2
EXAMPLES = 3


@dataclass
class Failure:
    """One failed check: where, how many rows, and a few of them."""

    table: str
    check: str
    column: str | None
    failing_rows: int
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ValidationReport:
    input: str
    as_of: str
    partitions: int
    rows: dict[str, int]
    failures: list[Failure]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, **asdict(self)}

    def to_markdown(self) -> str:
        status = "PASSED" if self.passed else "FAILED"
        lines = [
            f"# Data validation {status}",
            "",
            f"Input `{self.input}`, as of {self.as_of}, {self.partitions} partitions, rows "
            + ", ".join(f"{k}={v}" for k, v in self.rows.items()),
            "",
        ]
        if self.failures:
            lines += ["| table | column | check | failing rows |", "|---|---|---|---|"]
            lines += [
                f"| {f.table} | {f.column or '-'} | {f.check} | {f.failing_rows} |"
                for f in self.failures
            ]
            for f in self.failures:
                lines += ["", f"## {f.table}.{f.column or '*'}: {f.check}", ""]
                lines += [f"- `{json.dumps(row, default=str)}`" for row in f.examples]
        return "\n".join(lines) + "\n"


def _is_date(series: pd.Series) -> pd.Series:
    return series.map(lambda v: isinstance(v, dt.date) and not isinstance(v, dt.datetime))


def _utc_timestamps(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.DatetimeTZDtype) and str(series.dtype.tz) == "UTC"


CUSTOMERS = pa.DataFrameSchema(
    {
        "customer_id": pa.Column(str, nullable=False, unique=True),
        "segment": pa.Column(str, pa.Check.isin(SEGMENTS), nullable=False),
        "signup_date": pa.Column(checks=pa.Check(_is_date, name="is_date"), nullable=False),
    },
    strict=False,
    name="customers",
)
ITEMS = pa.DataFrameSchema(
    {
        "item_id": pa.Column(str, nullable=False, unique=True),
        "category": pa.Column(str, pa.Check.isin(CATEGORIES), nullable=False),
        "price": pa.Column("float64", [pa.Check.gt(0), pa.Check.lt(1e6)], nullable=False),
        "listed_date": pa.Column(checks=pa.Check(_is_date, name="is_date"), nullable=False),
    },
    strict=False,
    name="items",
)


def _inside_partition(frame: pd.DataFrame) -> pd.Series:
    if not _utc_timestamps(frame["event_time"]):
        return pd.Series(True, index=frame.index)
    return frame["event_time"].dt.strftime("%Y-%m-%d") == frame["partition_date"]


def interactions_schema(customer_ids: pd.Series, item_ids: pd.Series) -> pa.DataFrameSchema:
    """Interaction checks, including references to the given customers and items."""
    customers, items = set(customer_ids.dropna()), set(item_ids.dropna())
    return pa.DataFrameSchema(
        {
            "event_time": pa.Column(
                checks=pa.Check(_utc_timestamps, name="timestamp_utc"), nullable=False
            ),
            "customer_id": pa.Column(
                str,
                pa.Check(lambda s: s.isin(customers), name="references customers.customer_id"),
                nullable=False,
            ),
            "item_id": pa.Column(
                str,
                pa.Check(lambda s: s.isin(items), name="references items.item_id"),
                nullable=False,
            ),
            "event_type": pa.Column(str, pa.Check.isin(EVENT_TYPES), nullable=False),
            "quantity": pa.Column("int64", pa.Check.in_range(1, 1000), nullable=False),
            "price": pa.Column("float64", pa.Check.gt(0), nullable=False),
        },
        checks=pa.Check(_inside_partition, name="event_time inside its partition's day"),
        unique=["event_time", "customer_id", "item_id", "event_type"],
        report_duplicates="all",
        strict=False,
        name="interactions",
    )


def _examples(frame: pd.DataFrame, index: pd.Series) -> list[dict[str, Any]]:
    labels = [i for i in pd.unique(index.dropna()) if i in frame.index][:EXAMPLES]
    rows = frame.loc[labels].reset_index(drop=True)
    return json.loads(rows.to_json(orient="records", date_format="iso", default_handler=str))


def _run_schema(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> list[Failure]:
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        failures = []
        for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=True):
            index = group["index"]
            count = int(index.nunique()) if index.notna().any() else len(frame)
            failures.append(
                Failure(
                    table=schema.name,
                    check=str(check),
                    column=None if pd.isna(column) else str(column),
                    failing_rows=count,
                    examples=_examples(frame, index)
                    if index.notna().any()
                    else [{"failure_case": str(v)} for v in group["failure_case"].head(EXAMPLES)],
                )
            )
        return failures
    return []


def _read(path: Path, table: str) -> tuple[pd.DataFrame | None, list[Failure]]:
    try:
        return read_table(path), []
    except (OSError, ValueError) as exc:
        return None, [Failure(table, "readable parquet file", None, 0, [{"error": str(exc)}])]


def validate_dataset(
    root: str | Path, as_of: dt.date, max_age_days: int = DEFAULT_MAX_AGE_DAYS
) -> ValidationReport:
    """Run every check on the dataset under ``root`` (read-only)."""
    root = Path(root)
    failures: list[Failure] = []
    customers, problems = _read(root / CUSTOMERS_FILE, "customers")
    failures += problems
    items, problems = _read(root / ITEMS_FILE, "items")
    failures += problems
    days = partition_dates(root)
    parts = []
    for day in days:
        path = root / partition_dir(day.isoformat()) / PARTITION_FILE
        frame, problems = _read(path, "interactions")
        failures += problems
        if frame is not None:
            parts.append(frame.assign(partition_date=day.isoformat()))
    interactions = pd.concat(parts, ignore_index=True) if parts else None

    if customers is not None:
        failures += _run_schema(CUSTOMERS, customers)
    if items is not None:
        failures += _run_schema(ITEMS, items)
    if interactions is not None and customers is not None and items is not None:
        schema = interactions_schema(customers["customer_id"], items["item_id"])
        failures += _run_schema(schema, interactions)

    newest = days[-1] if days else None
    oldest_allowed = as_of - dt.timedelta(days=max_age_days)
    if newest is None or newest < oldest_allowed:
        failures.append(
            Failure(
                "interactions",
                f"freshness: newest partition on or after {oldest_allowed}",
                "date",
                0,
                [
                    {
                        "newest_partition": str(newest),
                        "as_of": as_of.isoformat(),
                        "max_age_days": max_age_days,
                    }
                ],
            )
        )
    rows = {
        "customers": 0 if customers is None else len(customers),
        "items": 0 if items is None else len(items),
        "interactions": 0 if interactions is None else len(interactions),
    }
    return ValidationReport(str(root), as_of.isoformat(), len(days), rows, failures)


def write_report(report: ValidationReport, directory: str | Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / REPORT_JSON).write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    (directory / REPORT_MARKDOWN).write_text(report.to_markdown())
    return directory / REPORT_JSON


def as_of_day(text: str) -> dt.date:
    """A date, or the UTC day of an ISO 8601 time (``Execution.StartDateTime``); a time
    without a zone is taken as UTC."""
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--as-of '{text}' is neither a date (YYYY-MM-DD) nor an ISO 8601 time"
        ) from None
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(dt.UTC).date()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Validate a dataset batch; copy it if accepted.")
    parser.add_argument("--input", default="/opt/ml/processing/input/dataset")
    parser.add_argument("--output", default="/opt/ml/processing/output/accepted")
    parser.add_argument("--report", default="/opt/ml/processing/output/report")
    parser.add_argument(
        "--as-of",
        type=as_of_day,
        default=None,
        help="reference day for freshness: a date or an ISO time such as the pipeline "
        "execution's start (default: today, UTC)",
    )
    parser.add_argument("--max-age-days", type=int, default=DEFAULT_MAX_AGE_DAYS)
    args = parser.parse_args(argv)
    as_of = args.as_of or dt.datetime.now(dt.UTC).date()
    report = validate_dataset(args.input, as_of, args.max_age_days)
    path = write_report(report, args.report)
    if not report.passed:
        print(report.to_markdown(), file=sys.stderr)
        print(f"validation failed; report in {path}", file=sys.stderr)
        return 1
    shutil.copytree(args.input, args.output, dirs_exist_ok=True)
    print(f"validation passed; accepted batch copied to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
