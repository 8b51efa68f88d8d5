"""Dataset versions are immutable, and a model traces back to what made it and rebuilds."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import boto3
import joblib
import numpy as np
import pytest
from moto import mock_aws

from ml_code import lineage
from ml_code.data.dataset import load_dataset
from ml_code.features.build import build_training_sets, feature_tables, read_split, write_outputs
from ml_code.training.model import Hyperparameters
from ml_code.training.train import PACKAGE_DIR, predict_scores, train_model

REGION = "us-east-1"


def _tree(root: Path) -> Path:
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("A = 1\n")
    (root / "pkg" / "b.py").write_text("B = 2\n")
    (root / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"junk")
    return root / "pkg"


def test_code_hash_depends_on_content_only(tmp_path: Path) -> None:
    first = _tree(tmp_path / "one")
    second = _tree(tmp_path / "two")
    os.utime(second / "a.py", (0, 0))
    (second / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"other junk")
    assert lineage.code_hash(first) == lineage.code_hash(second)
    (second / "b.py").write_text("B = 3\n")
    assert lineage.code_hash(first) != lineage.code_hash(second)


def test_git_commit_prefers_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_COMMIT", "abc123")
    assert lineage.git_commit() == "abc123"


def test_local_version_is_content_addressed_and_written_once(
    small_dataset_dir: Path, tmp_path: Path
) -> None:
    store = tmp_path / "versions"
    manifest = lineage.publish_local_version(small_dataset_dir, store)
    assert manifest.total_rows == sum(f.rows for f in manifest.files if f.rows is not None) > 0
    path = store / manifest.version / lineage.MANIFEST_FILE
    original = path.read_bytes()
    assert lineage.publish_local_version(small_dataset_dir, store) == manifest
    with pytest.raises(lineage.ManifestExistsError):
        lineage._write_once(path, "overwrite attempt")
    assert path.read_bytes() == original
    data = lineage.local_version_dir(store, manifest.version)
    assert lineage.manifest_for_directory(data).version == manifest.version


def _upload(client, bucket: str, prefix: str, root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            client.put_object(
                Bucket=bucket,
                Key=f"{prefix}/{path.relative_to(root).as_posix()}",
                Body=path.read_bytes(),
            )


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="lake")
        client.put_bucket_versioning(Bucket="lake", VersioningConfiguration={"Status": "Enabled"})
        yield client


def test_s3_manifest_pins_object_versions_and_is_never_overwritten(
    s3, small_dataset_dir: Path, tmp_path: Path
) -> None:
    _upload(s3, "lake", "raw/batch-1", small_dataset_dir)
    manifest = lineage.publish_s3_version("s3://lake/raw/batch-1", "s3://lake/manifests")
    assert all(f.version_id for f in manifest.files)
    assert manifest.version == lineage.manifest_for_directory(small_dataset_dir).version
    key = f"manifests/{manifest.version}/manifest.json"
    stored = s3.get_object(Bucket="lake", Key=key)["Body"].read()

    with pytest.raises(lineage.ManifestExistsError):
        lineage.write_manifest_s3(manifest, "s3://lake/manifests")
    assert s3.get_object(Bucket="lake", Key=key)["Body"].read() == stored
    versions = s3.list_object_versions(Bucket="lake", Prefix=key)["Versions"]
    assert len(versions) == 1

    # The raw files change later; the manifest still reads back the pinned versions.
    s3.put_object(Bucket="lake", Key="raw/batch-1/items.parquet", Body=b"overwritten")
    copy = lineage.download_s3_version(lineage.read_manifest(f"s3://lake/{key}"), tmp_path / "d")
    assert lineage.manifest_for_directory(copy).version == manifest.version


def test_a_manifest_built_on_the_previous_one_reads_only_what_changed(
    s3, small_dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _upload(s3, "lake", "raw/grow", small_dataset_dir)
    first = lineage.publish_s3_version("s3://lake/raw/grow", "s3://lake/manifests")
    s3.put_object(Bucket="lake", Key="raw/grow/notes.txt", Body=b"a new file")
    read: list[str] = []
    real_get = s3.get_object
    monkeypatch.setattr(s3, "get_object", lambda **kw: read.append(kw["Key"]) or real_get(**kw))
    second = lineage.publish_s3_version(
        "s3://lake/raw/grow", "s3://lake/manifests", s3, previous=first
    )
    assert read == ["raw/grow/notes.txt"]
    full = lineage.publish_s3_version("s3://lake/raw/grow", "s3://lake/manifests-full", s3)
    assert second == full  # same entries, hashes and version as reading everything
    assert second.version != first.version


def test_a_model_traces_back_to_its_dataset_and_code_and_rebuilds_identically(
    small_dataset_dir: Path, tmp_path: Path
) -> None:
    store = tmp_path / "versions"
    manifest = lineage.publish_local_version(small_dataset_dir, store)
    model_dir = _build_and_train(
        lineage.local_version_dir(store, manifest.version),
        tmp_path / "run-1",
        Hyperparameters(seed=7, max_iter=30),
        manifest.version,
    )
    metadata = json.loads((model_dir / "metadata.json").read_text())
    record = metadata["lineage"]
    assert record["dataset_version"] == manifest.version
    assert record["code_hash"] == lineage.code_hash(PACKAGE_DIR)

    # Rebuild from nothing but the lineage record: the stored version and the hyperparameters.
    rebuilt = _build_and_train(
        lineage.local_version_dir(store, record["dataset_version"]),
        tmp_path / "run-2",
        Hyperparameters(**metadata["hyperparameters"]),
        record["dataset_version"],
    )
    again = json.loads((rebuilt / "metadata.json").read_text())["lineage"]
    assert again["train_files_sha256"] == record["train_files_sha256"]
    test = read_split(tmp_path / "run-1" / "features" / "test")
    first = joblib.load(model_dir / "model.joblib")
    second = joblib.load(rebuilt / "model.joblib")
    assert np.array_equal(predict_scores(first, test), predict_scores(second, test))


def _build_and_train(data: Path, run: Path, hp: Hyperparameters, version: str) -> Path:
    dataset = load_dataset(data)
    splits, plan = build_training_sets(dataset)
    as_of = dataset.last_date + dt.timedelta(days=1)
    write_outputs(splits, plan, feature_tables(dataset, as_of), run / "features")
    train_model(
        run / "features" / "train",
        run / "features" / "validation",
        run / "model",
        hp,
        dataset_version=version,
    )
    return run / "model"
