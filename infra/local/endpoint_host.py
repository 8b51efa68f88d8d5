"""Serve the emulator's endpoints on the SageMaker container contract, on 127.0.0.1.

The emulator stores endpoints, configs and models; this host runs them. For every endpoint it
finds the model its current configuration names, downloads and loads that model's artifact,
and serves `GET /ping` and `POST /invocations` with the kit's inference handler, writing data
capture where the configuration says. When the deploy handler points an endpoint at a new
configuration, the host loads the new model fully before it switches traffic (blue/green): a
model that fails to load never takes traffic, and the old one keeps serving.

Like SageMaker, the host publishes each endpoint variant's `AWS/SageMaker` metrics to the
emulator's CloudWatch, stamped with the (simulated) time of the request: `Invocations`,
`Invocation4XXErrors`, `Invocation5XXErrors` (per request, summed by CloudWatch) and
`ModelLatency` in microseconds, so the plan's invocation, error and latency alarms see traffic.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from threadpoolctl import ThreadpoolController

from infra.local.pipeline_executor import extract_s3_archive
from ml_code.serving.app import InferenceApp, serve
from ml_code.serving.capture import CaptureWriter, S3CaptureWriter

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass(frozen=True)
class Switch:
    """One blue/green switch (or a refused one) of an endpoint."""

    endpoint: str
    from_config: str | None
    to_config: str
    model_data_url: str
    switched: bool
    reason: str = ""


class SampledCapture:
    """`InitialSamplingPercentage`: capture that share of requests, reproducibly."""

    def __init__(self, inner: CaptureWriter, percent: float, seed: int = 0) -> None:
        self.inner = inner
        self.percent = percent
        self.random = random.Random(seed)
        self.lock = threading.Lock()

    def write(self, record: Mapping[str, Any]) -> None:
        with self.lock:
            keep = self.random.uniform(0, 100) < self.percent
        if keep:
            self.inner.write(record)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()


SAGEMAKER_NAMESPACE = "AWS/SageMaker"


class EndpointMetrics:
    """Per-request `AWS/SageMaker` datapoints of one endpoint variant, sent on `flush()`."""

    def __init__(self, cloudwatch: Any, endpoint: str, variant: str) -> None:
        self.cloudwatch = cloudwatch
        self.dimensions = [
            {"Name": "EndpointName", "Value": endpoint},
            {"Name": "VariantName", "Value": variant},
        ]
        self.pending: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def record(self, when: datetime, status: int, seconds: float) -> None:
        def datum(name: str, value: float, unit: str) -> dict[str, Any]:
            return {
                "MetricName": name,
                "Dimensions": self.dimensions,
                "Timestamp": when,
                "Value": value,
                "Unit": unit,
            }

        data = [
            datum("Invocations", 1, "Count"),
            datum("Invocation4XXErrors", float(400 <= status < 500), "Count"),
            datum("Invocation5XXErrors", float(status >= 500), "Count"),
            datum("ModelLatency", round(seconds * 1e6), "Microseconds"),
        ]
        with self.lock:
            self.pending.extend(data)

    def flush(self) -> None:
        with self.lock:
            data, self.pending = self.pending, []
        for start in range(0, len(data), 1000):
            self.cloudwatch.put_metric_data(
                Namespace=SAGEMAKER_NAMESPACE, MetricData=data[start : start + 1000]
            )


class _Slot:
    """The WSGI app a server calls; the app inside is swapped atomically on a switch.

    Each request runs on its own thread with one OpenMP thread: the host shares the machine
    with the emulator and the jobs, and an OpenMP pool spinning for cores that are busy made a
    25 ms ranking take 330 ms on two cores. (A SageMaker instance has its cores to itself.)
    """

    def __init__(
        self, app: InferenceApp, metrics: EndpointMetrics, clock: Callable[[], datetime]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.clock = clock
        self._threads = ThreadpoolController()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/invocations":
            return self.app(environ, start_response)
        status: list[int] = []

        def recording(line: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            status.append(int(line.split(" ", 1)[0]))
            return start_response(line, headers, *rest)

        started = time.perf_counter()
        with self._threads.limit(limits=1, user_api="openmp"):
            body = self.app(environ, recording)
        self.metrics.record(
            self.clock(), status[0] if status else 500, time.perf_counter() - started
        )
        return body


@dataclass
class _Served:
    config: str
    slot: _Slot
    server: Any
    thread: threading.Thread
    capture: CaptureWriter | None


class EndpointHost:
    def __init__(
        self,
        sagemaker: Any,
        s3: Any,
        cloudwatch: Any,
        workdir: Path,
        *,
        clock: Callable[[], datetime],
        capture_batch: int = 1,
    ) -> None:
        """`capture_batch`: captured requests per capture file (SageMaker also batches them);
        1 writes each request at once, more cuts the objects a monitoring job downloads, and
        `flush()` writes what is buffered."""
        self.sagemaker = sagemaker
        self.s3 = s3
        self.cloudwatch = cloudwatch
        self.workdir = workdir
        self.clock = clock
        self.capture_batch = capture_batch
        self.served: dict[str, _Served] = {}
        self.switches: list[Switch] = []

    def url(self, endpoint: str) -> str:
        host, port = self.served[endpoint].server.server_address[:2]
        return f"http://{host}:{port}"

    def live_config(self, endpoint: str) -> str | None:
        served = self.served.get(endpoint)
        return served.config if served else None

    def sync(self) -> list[Switch]:
        """Bring every served endpoint to the configuration the emulator says it has."""
        changes = []
        for summary in self.sagemaker.list_endpoints()["Endpoints"]:
            name = summary["EndpointName"]
            config = self.sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
            if self.live_config(name) != config:
                changes.append(self._switch(name, config))
        self.switches.extend(changes)
        return changes

    def flush(self) -> None:
        """Write every endpoint's buffered capture records and metrics."""
        for served in self.served.values():
            if served.capture is not None:
                served.capture.flush()
            served.slot.metrics.flush()

    def close(self) -> None:
        for served in self.served.values():
            served.server.shutdown()
            served.server.server_close()
            if served.capture is not None:
                served.capture.close()
        self.served.clear()

    def _switch(self, endpoint: str, config_name: str) -> Switch:
        config = self.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
        variant = config["ProductionVariants"][0]
        model = self.sagemaker.describe_model(ModelName=variant["ModelName"])
        container = model.get("PrimaryContainer") or model["Containers"][0]
        url = container["ModelDataUrl"]
        previous = self.live_config(endpoint)
        try:
            model_dir = extract_s3_archive(self.s3, url, self.workdir / endpoint / config_name)
            capture = self._capture(endpoint, variant["VariantName"], config)
            app = InferenceApp(model_dir, capture=capture, clock=self.clock)
        except Exception as exc:  # noqa: BLE001 - a bad artifact must not take the endpoint down
            return Switch(endpoint, previous, config_name, url, False, f"not loaded: {exc}")
        if app.model is None:
            return Switch(endpoint, previous, config_name, url, False, str(app.load_error))
        served = self.served.get(endpoint)
        if served is None:
            metrics = EndpointMetrics(self.cloudwatch, endpoint, variant["VariantName"])
            slot = _Slot(app, metrics, self.clock)
            server = serve(slot, "127.0.0.1", 0)  # type: ignore[arg-type]
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            self.served[endpoint] = _Served(config_name, slot, server, thread, capture)
        else:
            old_capture = served.capture
            served.slot.app, served.config, served.capture = app, config_name, capture
            if old_capture is not None:
                old_capture.close()
        return Switch(endpoint, previous, config_name, url, True)

    def _capture(self, endpoint: str, variant: str, config: dict[str, Any]) -> CaptureWriter | None:
        capture = config.get("DataCaptureConfig") or {}
        if not capture.get("EnableCapture", False):
            return None
        writer = S3CaptureWriter(
            capture["DestinationS3Uri"],
            endpoint,
            variant,
            client=self.s3,
            kms_key_id=capture.get("KmsKeyId"),
            max_records=self.capture_batch,
        )
        return SampledCapture(writer, float(capture.get("InitialSamplingPercentage", 100)))
