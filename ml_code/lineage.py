"""Immutable dataset versions and the fingerprints that tie a model to what made it.

An accepted batch becomes a *dataset version*: a manifest listing every file (S3 key and object
version id, sha256, size, row count) and the hash of the dataset's schema. Its id is derived from
that content, and the manifest is written once and never overwritten: on S3 with a conditional
``put_object(IfNoneMatch="*")`` (the bucket should be versioned so the pinned object versions
stay readable), locally with an exclusive create beside a read-only copy of the files. Training
records the version id, :func:`code_hash` of the package it ran and :func:`git_commit`, so a
model version can be traced back and rebuilt from exactly the same inputs.

Manifest (``manifest.json``)::

    {"format": "mlops-kit/dataset-manifest", "version": "ds-<16 hex>",
     "location": "s3://bucket/prefix" | "<local dir>", "schema_hash": "<sha256>",
     "total_rows": 123, "files": [{"key": "items.parquet", "version_id": "..." | null,
                                   "sha256": "...", "size": 1, "rows": 200}, ...]}

Script::

    python -m ml_code.lineage --dataset DIR|s3://bucket/prefix --store DIR|s3://bucket/prefix
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a file, as SageMaker does
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import tarfile  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import pyarrow.parquet as pq  # noqa: E402

MANIFEST_FORMAT = "mlops-kit/dataset-manifest"
MANIFEST_FILE = "manifest.json"
DATA_DIR = "data"
_EXCLUDED_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
_EXCLUDED_SUFFIXES = (".pyc", ".pyo")


class ManifestExistsError(FileExistsError):
    """A manifest with this version id is already stored; versions are never overwritten."""


@dataclass(frozen=True)
class FileEntry:
    key: str
    sha256: str
    size: int
    rows: int | None
    version_id: str | None = None
    schema: str | None = None
    """sha256 of the Parquet file's Arrow schema (None for other files)."""


@dataclass(frozen=True)
class DatasetManifest:
    version: str
    location: str
    schema_hash: str
    files: tuple[FileEntry, ...]
    format: str = field(default=MANIFEST_FORMAT)

    @property
    def total_rows(self) -> int:
        return sum(f.rows or 0 for f in self.files)

    def to_json(self) -> str:
        body = asdict(self)
        body["total_rows"] = self.total_rows
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DatasetManifest:
        body = json.loads(text)
        if body.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"not a dataset manifest (format {body.get('format')!r})")
        files = tuple(FileEntry(**f) for f in body["files"])
        return cls(body["version"], body["location"], body["schema_hash"], files)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def code_hash(source_dir: str | Path) -> str:
    """sha256 of a deterministic tar of ``source_dir``: sorted paths, zeroed mtimes and owners,
    normalised modes, caches and bytecode excluded. Equal trees give equal hashes on any machine.
    """
    root = Path(source_dir)
    paths = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not _EXCLUDED_DIRS.intersection(p.relative_to(root).parts)
        and not p.name.endswith(_EXCLUDED_SUFFIXES)
    )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in paths:
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            data = path.read_bytes()
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return sha256_bytes(buffer.getvalue())


def git_commit(source_dir: str | Path | None = None) -> str | None:
    """The commit the code came from: env ``GIT_COMMIT``, else ``git rev-parse HEAD``, else None."""
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=source_dir or Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and len(commit) == 40 else None


def _parquet_info(data: bytes) -> tuple[int, str]:
    file = pq.ParquetFile(io.BytesIO(data))
    schema = file.schema_arrow.remove_metadata()
    return file.metadata.num_rows, schema.to_string(show_schema_metadata=False)


def _table_of(key: str) -> str:
    return key.split("/", 1)[0] if "/" in key else key


def _build_manifest(
    location: str,
    blobs: list[tuple[str, bytes, str | None]],
    known: Sequence[FileEntry] = (),
) -> DatasetManifest:
    """The manifest of ``blobs`` (read now) and ``known`` entries (unchanged objects, already
    hashed by an earlier manifest)."""
    files = list(known)
    for key, data, version_id in blobs:
        rows, schema = _parquet_info(data) if key.endswith(".parquet") else (None, None)
        schema_id = sha256_bytes(schema.encode()) if schema is not None else None
        files.append(FileEntry(key, sha256_bytes(data), len(data), rows, version_id, schema_id))
    if not files:
        raise ValueError(f"no files under {location}: nothing to version")
    files.sort(key=lambda f: f.key)
    schemas: dict[str, set[str]] = {}
    for entry in files:
        if entry.schema is not None:
            schemas.setdefault(_table_of(entry.key), set()).add(entry.schema)
    schema_text = json.dumps({t: sorted(s) for t, s in sorted(schemas.items())}, sort_keys=True)
    schema_hash = sha256_bytes(schema_text.encode())
    content = json.dumps([(f.key, f.sha256) for f in files] + [schema_hash]).encode()
    version = "ds-" + sha256_bytes(content)[:16]
    return DatasetManifest(version, location, schema_hash, tuple(files))


def schema_hash(dataset_dir: str | Path) -> str:
    """Hash of the Arrow schemas of a local dataset's Parquet tables (names, types, nullability)."""
    return manifest_for_directory(dataset_dir).schema_hash


def manifest_for_directory(dataset_dir: str | Path) -> DatasetManifest:
    """The manifest a local dataset directory would get (nothing is written)."""
    root = Path(dataset_dir)
    blobs = [
        (p.relative_to(root).as_posix(), p.read_bytes(), None)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]
    return _build_manifest(str(root), blobs)


def _write_once(path: Path, text: str) -> None:
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError as exc:
        raise ManifestExistsError(f"{path} already exists; dataset versions are immutable") from exc


def publish_local_version(dataset_dir: str | Path, store: str | Path) -> DatasetManifest:
    """Copy a dataset into ``store/<version>/data`` read-only and write its manifest once.

    Publishing identical content again returns the stored version without touching it.
    """
    manifest = manifest_for_directory(dataset_dir)
    target = Path(store) / manifest.version
    if (target / MANIFEST_FILE).exists():
        return read_manifest(target / MANIFEST_FILE)
    data = target / DATA_DIR
    for entry in manifest.files:
        destination = data / entry.key
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(dataset_dir) / entry.key, destination)
        destination.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    stored = DatasetManifest(manifest.version, str(data), manifest.schema_hash, manifest.files)
    _write_once(target / MANIFEST_FILE, stored.to_json())
    return stored


def local_version_dir(store: str | Path, version: str, verify: bool = True) -> Path:
    """The data directory of a stored local version, checked against its manifest."""
    target = Path(store) / version
    manifest = read_manifest(target / MANIFEST_FILE)
    data = target / DATA_DIR
    if verify:
        for entry in manifest.files:
            if sha256_file(data / entry.key) != entry.sha256:
                raise ValueError(f"{data / entry.key} does not match its manifest hash")
    return data


def _s3_client(client: Any | None) -> Any:
    if client is not None:
        return client
    import boto3

    return boto3.client("s3")


def _split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"expected an s3://bucket/prefix URI, got {uri!r}")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.strip("/")


def write_manifest_s3(manifest: DatasetManifest, store_uri: str, client: Any | None = None) -> str:
    """Put ``<store>/<version>/manifest.json`` only if absent; raise ManifestExistsError if not."""
    from botocore.exceptions import ClientError

    s3 = _s3_client(client)
    bucket, prefix = _split_s3(store_uri)
    key = f"{prefix}/{manifest.version}/{MANIFEST_FILE}".lstrip("/")
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=manifest.to_json().encode(),
            IfNoneMatch="*",
            ContentType="application/json",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"PreconditionFailed", "412"}:
            raise ManifestExistsError(f"s3://{bucket}/{key} already exists") from exc
        raise
    return f"s3://{bucket}/{key}"


def publish_s3_version(
    dataset_uri: str,
    store_uri: str,
    client: Any | None = None,
    previous: DatasetManifest | None = None,
) -> DatasetManifest:
    """Pin every object under ``dataset_uri`` by version id and write the manifest once.

    Objects whose version ``previous`` (an earlier manifest of the same location) already
    pinned are taken from it rather than read again: a dataset that grows by a partition a
    day is hashed a partition a day, not whole every day."""
    s3 = _s3_client(client)
    bucket, prefix = _split_s3(dataset_uri)
    base = f"{prefix}/" if prefix else ""
    pinned = {
        (f.key, f.version_id): f
        for f in (previous.files if previous is not None else ())
        if f.version_id not in (None, "null") and (f.schema or not f.key.endswith(".parquet"))
    }
    blobs, known = [], []
    for key, version_id in _current_objects(s3, bucket, base):
        entry = pinned.get((key[len(base) :], version_id))
        if entry is not None:
            known.append(entry)
            continue
        response = s3.get_object(Bucket=bucket, Key=key)
        blobs.append((key[len(base) :], response["Body"].read(), response.get("VersionId")))
    manifest = _build_manifest(dataset_uri.rstrip("/"), blobs, known)
    try:
        write_manifest_s3(manifest, store_uri, s3)
    except ManifestExistsError:
        return read_manifest(f"{store_uri.rstrip('/')}/{manifest.version}/{MANIFEST_FILE}", s3)
    return manifest


def _current_objects(s3: Any, bucket: str, prefix: str) -> list[tuple[str, str | None]]:
    """(key, current version id) of every object under ``prefix``; ids are None when the
    bucket is not versioned."""
    objects = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Versions", []):
            if item.get("IsLatest"):
                version = item.get("VersionId")
                objects.append((item["Key"], None if version in (None, "null") else version))
    return sorted(objects)


def download_s3_version(
    manifest: DatasetManifest, destination: str | Path, client: Any | None = None
) -> Path:
    """Fetch the pinned object versions of a manifest, verifying every hash."""
    s3 = _s3_client(client)
    bucket, prefix = _split_s3(manifest.location)
    destination = Path(destination)
    for entry in manifest.files:
        key = f"{prefix}/{entry.key}" if prefix else entry.key
        extra = {"VersionId": entry.version_id} if entry.version_id else {}
        data = s3.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
        if sha256_bytes(data) != entry.sha256:
            raise ValueError(f"s3://{bucket}/{key} does not match its manifest hash")
        (destination / entry.key).parent.mkdir(parents=True, exist_ok=True)
        (destination / entry.key).write_bytes(data)
    return destination


def read_manifest(uri: str | Path, client: Any | None = None) -> DatasetManifest:
    """A manifest from a local path or an ``s3://`` URI."""
    text = str(uri)
    if text.startswith("s3://"):
        bucket, key = _split_s3(text)
        body = _s3_client(client).get_object(Bucket=bucket, Key=key)["Body"].read()
        return DatasetManifest.from_json(body.decode())
    return DatasetManifest.from_json(Path(text).read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Publish an immutable dataset version.")
    parser.add_argument("--dataset", default="/opt/ml/processing/input/dataset")
    parser.add_argument("--store", required=True, help="directory or s3://bucket/prefix")
    args = parser.parse_args(argv)
    if args.dataset.startswith("s3://"):
        manifest = publish_s3_version(args.dataset, args.store)
    else:
        manifest = publish_local_version(args.dataset, args.store)
    print(json.dumps({"version": manifest.version, "rows": manifest.total_rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
