"""A WSGI app on the SageMaker inference container contract, for the local endpoint.

* ``GET /ping``: 200 once the model is loaded, 503 with the load error otherwise.
* ``POST /invocations``: ``input_fn`` -> ``predict_fn`` -> ``output_fn``; the body's
  ``Content-Type`` and the ``Accept`` header select the formats. A
  :class:`~ml_code.serving.errors.RequestError` becomes its 4xx status with a JSON
  ``{"error": "..."}`` body; any other failure a 500. The app keeps serving either way.
* ``X-Amzn-SageMaker-Inference-Id`` becomes the capture's ``inferenceId`` (the ground-truth key).

Run: ``python -m ml_code.serving.app --model-dir DIR [--port 8080] [--capture-dir DIR |
--capture-s3-uri s3://bucket/prefix] [--endpoint NAME] [--variant AllTraffic]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a file, as SageMaker does
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from http import HTTPStatus  # noqa: E402
from socketserver import ThreadingMixIn  # noqa: E402
from typing import Any  # noqa: E402
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server  # noqa: E402

from ml_code.serving.capture import (  # noqa: E402
    CaptureWriter,
    DirectoryCaptureWriter,
    S3CaptureWriter,
    capture_record,
)
from ml_code.serving.errors import RequestError  # noqa: E402
from ml_code.serving.inference import (  # noqa: E402
    LoadedModel,
    model_fn,
    negotiate_accept,
    output_fn,
    predict_fn,
)
from ml_code.serving.payloads import Limits, parse_request  # noqa: E402

log = logging.getLogger(__name__)

INFERENCE_ID_HEADER = "HTTP_X_AMZN_SAGEMAKER_INFERENCE_ID"
_DRAIN_CAP = 16 * 1024 * 1024
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class InferenceApp:
    """WSGI callable serving one model; safe to share between server threads."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        capture: CaptureWriter | None = None,
        limits: Limits | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.capture = capture
        self.limits = limits or Limits.from_env()
        self.clock = clock
        self.model: LoadedModel | None = None
        self.load_error: str | None = None
        try:
            self.model = model_fn(model_dir)
        except Exception as exc:  # the health check reports it; the process stays up
            log.exception("model failed to load from %s", model_dir)
            self.load_error = f"model not loaded: {type(exc).__name__}: {exc}"

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path == "/ping":
            if method != "GET":
                return _error(start_response, HTTPStatus.METHOD_NOT_ALLOWED, "use GET /ping")
            if self.model is None:
                return _error(start_response, HTTPStatus.SERVICE_UNAVAILABLE, str(self.load_error))
            return _respond(start_response, HTTPStatus.OK, b"", "text/plain")
        if path == "/invocations":
            if method != "POST":
                return _error(
                    start_response, HTTPStatus.METHOD_NOT_ALLOWED, "use POST /invocations"
                )
            return self._invoke(environ, start_response)
        return _error(start_response, HTTPStatus.NOT_FOUND, f"no route {path!r}")

    def _invoke(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if self.model is None:
            return _error(start_response, HTTPStatus.SERVICE_UNAVAILABLE, str(self.load_error))
        try:
            body = self._read_body(environ)
            accept = negotiate_accept(environ.get("HTTP_ACCEPT"))
            content_type = environ.get("CONTENT_TYPE", "")
            request = parse_request(body, content_type, self.limits)
            output, output_type = output_fn(predict_fn(request, self.model), accept)
        except RequestError as exc:
            return _error(start_response, exc.status, exc.message)
        except Exception:
            log.exception("invocation failed")
            return _error(start_response, HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")
        self._capture(body, content_type, output, output_type, environ.get(INFERENCE_ID_HEADER))
        return _respond(start_response, HTTPStatus.OK, output, output_type)

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        raw_length = environ.get("CONTENT_LENGTH") or ""
        if not raw_length.isdigit():
            raise RequestError("send a Content-Length header", HTTPStatus.LENGTH_REQUIRED)
        length = int(raw_length)
        if length > self.limits.max_bytes:
            _drain(environ["wsgi.input"], length)
            raise RequestError(
                f"request body is {length} bytes; the limit is {self.limits.max_bytes}",
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            )
        return environ["wsgi.input"].read(length) if length else b""

    def _capture(
        self,
        body: bytes,
        content_type: str,
        output: bytes,
        output_type: str,
        inference_id: str | None,
    ) -> None:
        if self.capture is None:
            return
        record = capture_record(
            request_body=body,
            request_content_type=content_type,
            response_body=output,
            response_content_type=output_type,
            inference_time=self.clock(),
            inference_id=inference_id,
        )
        try:
            self.capture.write(record)
        except Exception:  # capture is best effort, as in SageMaker: the caller still gets scores
            log.exception("data capture failed")


def _drain(stream: Any, length: int) -> None:
    """Read and drop a rejected body (up to a cap) so the client sees the 413, not a reset."""
    remaining = min(length, _DRAIN_CAP)
    while remaining > 0:
        chunk = stream.read(min(remaining, 1 << 16))
        if not chunk:
            return
        remaining -= len(chunk)


def create_app(
    model_dir: str | Path,
    *,
    capture: CaptureWriter | None = None,
    limits: Limits | None = None,
) -> InferenceApp:
    """The app for the model extracted at ``model_dir``."""
    return InferenceApp(model_dir, capture=capture, limits=limits)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.debug("%s - %s", self.address_string(), format % args)


def serve(app: InferenceApp, host: str = "127.0.0.1", port: int = 8080) -> WSGIServer:
    """A threaded server for ``app`` (port 0 picks a free port); call ``serve_forever()``."""
    return make_server(
        host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )


def _respond(
    start_response: StartResponse, status: int, body: bytes, content_type: str
) -> list[bytes]:
    start_response(
        f"{int(status)} {HTTPStatus(status).phrase}",
        [("Content-Type", content_type), ("Content-Length", str(len(body)))],
    )
    return [body]


def _error(start_response: StartResponse, status: int, message: str) -> list[bytes]:
    body = json.dumps({"error": message}).encode("utf-8")
    return _respond(start_response, status, body, "application/json")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model-dir", default="/opt/ml/model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    destination = parser.add_mutually_exclusive_group()
    destination.add_argument("--capture-dir", help="write capture files under this directory")
    destination.add_argument("--capture-s3-uri", help="write capture objects under this S3 URI")
    parser.add_argument("--endpoint", default="local-endpoint")
    parser.add_argument("--variant", default="AllTraffic")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    capture: CaptureWriter | None = None
    if args.capture_dir:
        capture = DirectoryCaptureWriter(args.capture_dir, args.endpoint, args.variant)
    elif args.capture_s3_uri:
        capture = S3CaptureWriter(args.capture_s3_uri, args.endpoint, args.variant)
    server = serve(create_app(args.model_dir, capture=capture), args.host, args.port)
    log.info("serving %s on http://%s:%d", args.model_dir, args.host, server.server_port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        if capture is not None:
            capture.close()


if __name__ == "__main__":
    main()
