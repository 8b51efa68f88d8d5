"""`sourcedir.tar.gz`: the ML code every pipeline job runs, byte-identical for an unchanged tree.

The archive holds `ml_code/` and a top-level `inference.py` that re-exports the serving handler,
because SageMaker's scikit-learn serving container imports `SAGEMAKER_PROGRAM` as a top-level
module. Entries are sorted, with zero mtimes, uid/gid 0, empty owner names and modes 0644 (0755
for executables); caches and bytecode are left out; the gzip header carries no name and mtime 0.
So planning twice, on any machine, writes the same bytes, and the S3 object never shows a diff.

The object key is derived from the code hash, computed exactly as `ml_code.lineage.code_hash`
does (sha256 of the uncompressed, deterministic tar of the package), so the hash a trained
model records in its lineage names the S3 prefix of the code that trained it:
`code/<model>/<code hash[:16]>/sourcedir.tar.gz`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIR = PROJECT_ROOT / "ml_code"
BUILD_DIR = PROJECT_ROOT / ".mlops-kit" / "build"
ARCHIVE_NAME = "sourcedir.tar.gz"
PACKAGE = "ml_code"
SERVING_PROGRAM = "inference.py"
SERVING_SHIM = (
    b'"""SageMaker serving entry point: the container imports SAGEMAKER_PROGRAM by name."""\n'
    b"from ml_code.serving.inference import input_fn, model_fn, output_fn, predict_fn\n"
    b"\n"
    b'__all__ = ["input_fn", "model_fn", "output_fn", "predict_fn"]\n'
)
KEY_HASH_CHARS = 16
_EXCLUDED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".ruff_cache"})
_EXCLUDED_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class SourceBundle:
    path: Path
    """The archive on disk (a stable path: unchanged code leaves the file untouched)."""
    sha256: str
    """sha256 of the archive bytes."""
    code_hash: str
    """`ml_code.lineage.code_hash` of the package: what trained models record as lineage."""

    @property
    def key(self) -> str:
        """Object key under a workload's code prefix in the artifacts bucket."""
        return f"{self.code_hash[:KEY_HASH_CHARS]}/{ARCHIVE_NAME}"


def build_source_bundle(source_dir: Path = SOURCE_DIR, build_dir: Path = BUILD_DIR) -> SourceBundle:
    """Write `build_dir/sourcedir.tar.gz` from the package at `source_dir`.

    The file is replaced atomically and only when its bytes change, so stacks planned in
    parallel processes never read a half-written archive.
    """
    source_dir = Path(source_dir)
    if not (source_dir / "__init__.py").is_file():
        raise FileNotFoundError(
            f"{source_dir} is not a Python package (no __init__.py); the pipelines run the "
            f"'{PACKAGE}' package at the project root."
        )
    files = [(path.relative_to(source_dir).as_posix(), path) for path in _package_files(source_dir)]
    code_hash = hashlib.sha256(_tar((name, _read(path)) for name, path in files)).hexdigest()
    entries = [(f"{PACKAGE}/{name}", _read(path)) for name, path in files]
    entries.append((SERVING_PROGRAM, (SERVING_SHIM, 0o644)))
    archive = _gzip(_tar(sorted(entries)))
    path = Path(build_dir) / ARCHIVE_NAME
    _write_if_changed(path, archive)
    return SourceBundle(path=path, sha256=hashlib.sha256(archive).hexdigest(), code_hash=code_hash)


def _package_files(root: Path) -> list[Path]:
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and not _EXCLUDED_DIRS.intersection(path.relative_to(root).parts)
        and not path.name.endswith(_EXCLUDED_SUFFIXES)
    )


def _read(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), 0o755 if os.access(path, os.X_OK) else 0o644


def _tar(entries: Iterable[tuple[str, tuple[bytes, int]]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, (data, mode) in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = mode
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _gzip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as out:
        out.write(data)
    return buffer.getvalue()


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, path)
