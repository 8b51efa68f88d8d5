"""Validation stops bad batches with a readable report and never touches good data."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml_code.data import validate
from ml_code.data.dataset import read_table
from ml_code.data.generate import World
from ml_code.data.validate import REPORT_JSON, REPORT_MARKDOWN, main, validate_dataset


def _fingerprint(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _as_of(world: World) -> str:
    return (world.start_date + dt.timedelta(days=world.days)).isoformat()


def _first_partition(root: Path) -> Path:
    return sorted((root / "interactions").glob("date=*/part-0.parquet"))[0]


def _rewrite(path: Path, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    """Write a deliberately broken file, bypassing the dataset writer's schema."""
    with warnings.catch_warnings():  # pyarrow reads tz-aware columns through Series.values
        warnings.simplefilter("ignore", category=DeprecationWarning)
        table = pa.Table.from_pandas(change(read_table(path)), preserve_index=False)
    pq.write_table(table, path)


def _bad_type(root: Path) -> None:
    _rewrite(root / "items.parquet", lambda df: df.assign(price=df["price"].astype(str)))


def _null_key(root: Path) -> None:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        ids = df["customer_id"].astype(object)
        ids.iloc[[1, 2]] = None
        return df.assign(customer_id=ids)

    _rewrite(_first_partition(root), change)


def _duplicate_item(root: Path) -> None:
    _rewrite(root / "items.parquet", lambda df: pd.concat([df, df.head(2)], ignore_index=True))


def _dangling_customer(root: Path) -> None:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        ids = df["customer_id"].copy()
        ids.iloc[:3] = "C-ghost"
        return df.assign(customer_id=ids)

    _rewrite(_first_partition(root), change)


CASES = [
    (_bad_type, "items", "price", "dtype('float64')"),
    (_null_key, "interactions", "customer_id", "not_nullable"),
    (_duplicate_item, "items", "item_id", "field_uniqueness"),
    (_dangling_customer, "interactions", "customer_id", "references customers.customer_id"),
]


@pytest.fixture
def batch(small_dataset_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(small_dataset_dir, tmp_path / "incoming"))


def test_a_clean_batch_passes_and_is_copied_to_the_output(
    batch: Path, small_world: World, tmp_path: Path
) -> None:
    code = main(
        [
            "--input",
            str(batch),
            "--output",
            str(tmp_path / "accepted"),
            "--report",
            str(tmp_path / "report"),
            "--as-of",
            _as_of(small_world),
        ]
    )
    assert code == 0
    assert _fingerprint(tmp_path / "accepted") == _fingerprint(batch)
    assert json.loads((tmp_path / "report" / REPORT_JSON).read_text())["passed"] is True


@pytest.mark.parametrize(
    ("corrupt", "table", "column", "check"),
    CASES,
    ids=["bad-type", "null-key", "duplicate-key", "dangling-foreign-key"],
)
def test_a_bad_batch_fails_with_a_report_and_leaves_good_data_untouched(
    batch: Path, small_world: World, tmp_path: Path, corrupt, table, column, check
) -> None:
    accepted = tmp_path / "accepted"
    shutil.copytree(batch, accepted)  # the previous good dataset
    before_accepted = _fingerprint(accepted)
    corrupt(batch)
    before_input = _fingerprint(batch)

    code = main(
        [
            "--input",
            str(batch),
            "--output",
            str(accepted),
            "--report",
            str(tmp_path / "report"),
            "--as-of",
            _as_of(small_world),
        ]
    )

    assert code == 1
    assert _fingerprint(accepted) == before_accepted
    assert _fingerprint(batch) == before_input
    report = json.loads((tmp_path / "report" / REPORT_JSON).read_text())
    assert report["passed"] is False
    failure = next(
        f
        for f in report["failures"]
        if (f["table"], f["column"], f["check"]) == (table, column, check)
    )
    assert failure["failing_rows"] >= 1 and failure["examples"]
    markdown = (tmp_path / "report" / REPORT_MARKDOWN).read_text()
    assert "FAILED" in markdown and check in markdown


def test_counts_and_examples_name_the_offending_rows(batch: Path, small_world: World) -> None:
    _dangling_customer(batch)
    report = validate_dataset(batch, dt.date.fromisoformat(_as_of(small_world)))
    failure = next(f for f in report.failures if f.check.startswith("references customers"))
    assert failure.failing_rows == 3
    assert all(row["customer_id"] == "C-ghost" for row in failure.examples)


def test_a_stale_newest_partition_fails_freshness(
    batch: Path, small_world: World, tmp_path: Path
) -> None:
    late = (small_world.start_date + dt.timedelta(days=small_world.days + 5)).isoformat()
    code = main(
        [
            "--input",
            str(batch),
            "--output",
            str(tmp_path / "accepted"),
            "--report",
            str(tmp_path / "report"),
            "--as-of",
            late,
            "--max-age-days",
            "2",
        ]
    )
    assert code == 1
    assert not (tmp_path / "accepted").exists()
    report = json.loads((tmp_path / "report" / REPORT_JSON).read_text())
    [failure] = report["failures"]
    assert failure["check"].startswith("freshness")
    assert failure["examples"][0]["newest_partition"] == str(small_world.dataset().last_date)


def test_events_filed_under_the_wrong_day_are_caught(batch: Path, small_world: World) -> None:
    first = _first_partition(batch)
    _rewrite(first, lambda df: df.assign(event_time=df["event_time"] + pd.Timedelta(days=1)))
    report = validate_dataset(batch, dt.date.fromisoformat(_as_of(small_world)))
    assert any("inside its partition" in f.check for f in report.failures)


@pytest.mark.parametrize(
    ("given", "day"),
    [
        ("2026-01-07", dt.date(2026, 1, 7)),
        ("2026-01-07T23:30:00.123Z", dt.date(2026, 1, 7)),
        ("2026-01-08T01:00:00+05:00", dt.date(2026, 1, 7)),
        ("2026-01-07T10:00:00", dt.date(2026, 1, 7)),
    ],
)
def test_freshness_is_judged_on_the_utc_day_of_the_execution_start(given, day):
    assert validate.as_of_day(given) == day


def test_an_as_of_that_is_no_time_is_a_usage_error_naming_the_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        validate.main(["--as-of", "yesterday"])
    assert exit_info.value.code == 2
    assert "--as-of 'yesterday' is neither a date" in capsys.readouterr().err
