"""Data capture in SageMaker's format, so the monitoring jobs read local and AWS captures alike.

One JSON line per successful invocation (rejected requests are not captured, as in SageMaker)::

    {"captureData": {
       "endpointInput":  {"observedContentType": "application/json", "mode": "INPUT",
                          "data": "<request body>", "encoding": "JSON"},
       "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                          "data": "<response body>", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "<uuid4>", "inferenceId": "<X-Amzn-SageMaker-Inference-Id>",
                       "inferenceTime": "2026-11-25T08:00:00Z"},
     "eventVersion": "0"}

``encoding`` is ``CSV`` for ``text/csv``, ``JSON`` for ``application/json`` (``data`` is then
the body text) and ``BASE64`` otherwise. ``inferenceId`` is present only when the caller sent
the header; model-quality monitoring joins ground truth on it.

Files follow SageMaker's layout ``{prefix}/{endpoint}/{variant}/yyyy/mm/dd/hh/{MM-SS-mmm}-{uuid}
.jsonl``, partitioned by inference time (UTC); every flush writes a new file or S3 object,
since objects are immutable.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import boto3

EVENT_VERSION = "0"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_ENCODINGS = {"text/csv": "CSV", "application/json": "JSON"}


def capture_record(
    *,
    request_body: bytes,
    request_content_type: str,
    response_body: bytes,
    response_content_type: str,
    inference_time: datetime,
    inference_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """One capture line for an invocation."""
    metadata: dict[str, Any] = {"eventId": event_id or str(uuid.uuid4())}
    if inference_id:
        metadata["inferenceId"] = inference_id
    metadata["inferenceTime"] = inference_time.astimezone(UTC).strftime(TIME_FORMAT)
    return {
        "captureData": {
            "endpointInput": _payload(request_body, request_content_type, "INPUT"),
            "endpointOutput": _payload(response_body, response_content_type, "OUTPUT"),
        },
        "eventMetadata": metadata,
        "eventVersion": EVENT_VERSION,
    }


def _payload(body: bytes, content_type: str, mode: str) -> dict[str, str]:
    encoding = _ENCODINGS.get(content_type.split(";", 1)[0].strip().lower(), "BASE64")
    data: str | None = None
    if encoding != "BASE64":
        try:
            data = body.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "BASE64"
    if data is None:
        data = base64.b64encode(body).decode("ascii")
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


def payload_text(payload: Mapping[str, Any]) -> str:
    """The body text of a captured ``endpointInput``/``endpointOutput``, whatever its encoding."""
    if payload.get("encoding") == "BASE64":
        return base64.b64decode(payload["data"]).decode("utf-8")
    return str(payload["data"])


def parse_inference_time(value: str) -> datetime:
    """``inferenceTime`` as an aware UTC datetime (fractional seconds tolerated)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def capture_key(endpoint: str, variant: str, when: datetime, prefix: str = "") -> str:
    """SageMaker's capture object key for a file whose first record was captured at ``when``."""
    when = when.astimezone(UTC)
    name = f"{when:%M-%S}-{when.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
    parts = [prefix.strip("/"), endpoint, variant, f"{when:%Y/%m/%d/%H}", name]
    return "/".join(p for p in parts if p)


class CaptureWriter(Protocol):
    """Where capture lines go; hosts call ``write`` per invocation and ``close`` at shutdown."""

    def write(self, record: Mapping[str, Any]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class _BatchingCaptureWriter(ABC):
    """Buffers lines and writes one file per batch and hour partition.

    ``max_records=1`` (the default) writes every invocation at once, so nothing is lost if the
    host dies; raise it to cut the number of objects under load.
    """

    def __init__(self, endpoint: str, variant: str, prefix: str, max_records: int) -> None:
        if max_records < 1:
            raise ValueError(f"max_records must be >= 1, got {max_records}")
        self.endpoint, self.variant, self.prefix = endpoint, variant, prefix
        self.max_records = max_records
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._first: datetime | None = None

    def write(self, record: Mapping[str, Any]) -> None:
        when = parse_inference_time(record["eventMetadata"]["inferenceTime"])
        line = json.dumps(record, separators=(",", ":"), allow_nan=False)
        with self._lock:
            if self._first is not None and _hour(self._first) != _hour(when):
                self._flush_locked()
            if self._first is None:
                self._first = when
            self._lines.append(line)
            if len(self._lines) >= self.max_records:
                self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        self.flush()

    def _flush_locked(self) -> None:
        if not self._lines or self._first is None:
            return
        key = capture_key(self.endpoint, self.variant, self._first, self.prefix)
        data = ("\n".join(self._lines) + "\n").encode("utf-8")
        self._put(key, data)
        self._lines, self._first = [], None

    @abstractmethod
    def _put(self, key: str, data: bytes) -> None:
        """Store one file's bytes under ``key``."""


def _hour(when: datetime) -> tuple[int, int, int, int]:
    return when.year, when.month, when.day, when.hour


class DirectoryCaptureWriter(_BatchingCaptureWriter):
    """Capture files under a local directory (``root/{prefix}/{endpoint}/{variant}/yyyy/...``)."""

    def __init__(
        self,
        root: str | Path,
        endpoint: str,
        variant: str = "AllTraffic",
        *,
        prefix: str = "",
        max_records: int = 1,
    ) -> None:
        super().__init__(endpoint, variant, prefix, max_records)
        self.root = Path(root)

    def _put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(data)
        os.replace(partial, path)  # readers never see a half-written file


class S3CaptureWriter(_BatchingCaptureWriter):
    """Capture objects under ``s3://bucket/prefix``, as SageMaker's ``DestinationS3Uri``.

    The default client honours ``AWS_ENDPOINT_URL``, so the same code writes to the emulator.
    With ``kms_key_id`` objects are encrypted with that key (SSE-KMS).
    """

    def __init__(
        self,
        destination_s3_uri: str,
        endpoint: str,
        variant: str = "AllTraffic",
        *,
        client: Any = None,
        kms_key_id: str | None = None,
        max_records: int = 1,
    ) -> None:
        if not destination_s3_uri.startswith("s3://"):
            raise ValueError(f"destination must be an s3:// URI, got {destination_s3_uri!r}")
        bucket, _, prefix = destination_s3_uri[len("s3://") :].partition("/")
        super().__init__(endpoint, variant, prefix, max_records)
        self.bucket = bucket
        self.client = client or boto3.client("s3")
        self.kms_key_id = kms_key_id

    def _put(self, key: str, data: bytes) -> None:
        extra: dict[str, str] = {}
        if self.kms_key_id:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentType="application/jsonl", **extra
        )
