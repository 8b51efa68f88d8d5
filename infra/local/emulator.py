"""moto's own HTTP server on 127.0.0.1, and the process environment that points boto3 at it.

The server is real HTTP, so code under test builds its clients the ordinary way (or reads
`AWS_ENDPOINT_URL`, as the handlers do) and subprocesses started with `os.environ` reach it too.
moto keeps its state in process-global backends, so only one emulator may be active in a
process, and entering one resets that state: every run starts from an empty account.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import boto3
from botocore.config import Config
from moto.backends import get_backend
from moto.server import ThreadedMotoServer

from infra.local import moto_extensions

ACCOUNT_ID = "123456789012"
"""moto's default account, and the account every plan is made for: ARNs in plans stay valid."""
DEFAULT_REGION = "us-east-1"
TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
_CLEARED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
"""A developer's profile or session token would otherwise outrank the testing credentials."""

_REQUEST_LOG = logging.getLogger("werkzeug")
"""moto's server logs every request at INFO; a demo's console wants the loop, not the traffic.
The level stays raised after the emulator stops: its handler threads may log after `stop()`."""

_active_lock = threading.Lock()
_active: Emulator | None = None


class EmulatorError(RuntimeError):
    """The emulator cannot start or is used outside its `with` block."""


class Emulator:
    """`with Emulator() as cloud:` serves the AWS APIs on 127.0.0.1 until the block ends."""

    def __init__(self, region: str = DEFAULT_REGION, port: int = 0) -> None:
        self.region = region
        self.account_id = ACCOUNT_ID
        self._port = port
        self._server: ThreadedMotoServer | None = None
        self._endpoint_url: str | None = None
        self._saved_env: dict[str, str | None] = {}

    @property
    def endpoint_url(self) -> str:
        if self._endpoint_url is None:
            raise EmulatorError("the emulator is not running; use it inside `with Emulator():`")
        return self._endpoint_url

    @property
    def environment(self) -> dict[str, str]:
        """What a process needs in its environment to reach this emulator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            **TEST_CREDENTIALS,
        }

    def client(self, service: str) -> Any:
        """A boto3 client for `service` bound to this emulator whatever the environment says."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    def metric_samples(
        self,
        namespace: str,
        metric_name: str,
        dimensions: Mapping[str, str],
        start: datetime,
        end: datetime,
    ) -> list[float]:
        """Every value published for one metric in [start, end).

        CloudWatch computes percentiles (`p99`) server-side; moto 5.2.5 accepts
        `ExtendedStatistics` and returns nothing for them, so the alarm evaluator computes them
        from the samples the emulator holds. Dimensions must match exactly, as in CloudWatch.
        Values published as `StatisticValues` carry no samples and are not included.
        """
        from moto.cloudwatch.models import MetricDatum

        self._require_running()
        backend = get_backend("cloudwatch")[self.account_id][self.region]
        wanted = sorted(dimensions.items())
        return [
            datum.value
            for datum in backend.get_all_metrics()
            if isinstance(datum, MetricDatum)
            and datum.namespace == namespace
            and datum.name == metric_name
            and sorted((d.name, d.value) for d in datum.dimensions) == wanted
            and _naive_utc(start) <= _naive_utc(datum.timestamp) < _naive_utc(end)
        ]

    def stamp_alarm_state(self, alarm_name: str, moment: datetime) -> None:
        """Date an alarm's last state change at `moment` (the simulated time it happened).

        moto stamps `SetAlarmState` with the wall clock, while the alarm evaluator runs at
        simulated times; the retrain handler reads `StateUpdatedTimestamp` to date an alarm's
        onset, as it reads CloudWatch's in AWS."""
        self._require_running()
        backend = get_backend("cloudwatch")[self.account_id][self.region]
        alarm = backend.alarms.get(alarm_name)
        if alarm is not None:
            alarm.state_updated_timestamp = _naive_utc(moment)

    def reset(self) -> None:
        """Empty every service's state, through moto's own reset endpoint."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status != 200:
                raise EmulatorError(f"moto refused to reset its state: HTTP {response.status}")

    def __enter__(self) -> Self:
        global _active
        with _active_lock:
            if _active is not None:
                raise EmulatorError(
                    f"an emulator is already active at {_active.endpoint_url}; moto's state is "
                    "process-wide, so use that one instead of starting a second"
                )
            _active = self
        try:
            self._start()
        except BaseException:
            with _active_lock:
                _active = None
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        global _active
        try:
            self._restore_environment()
            if self._server is not None:
                self._server.stop()
        finally:
            self._server = None
            self._endpoint_url = None
            with _active_lock:
                _active = None

    def _start(self) -> None:
        if _REQUEST_LOG.level < logging.WARNING:
            _REQUEST_LOG.setLevel(logging.WARNING)
        moto_extensions.install()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self._endpoint_url = f"http://{host}:{port}"
        self.reset()
        self._set_environment()

    def _set_environment(self) -> None:
        changes: dict[str, str | None] = {**self.environment, **dict.fromkeys(_CLEARED)}
        self._saved_env = {key: os.environ.get(key) for key in changes}
        for key, value in changes.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _restore_environment(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}

    def _require_running(self) -> None:
        if self._server is None:
            raise EmulatorError("the emulator is not running; use it inside `with Emulator():`")


def _naive_utc(moment: datetime) -> datetime:
    """moto keeps metric timestamps as naive UTC."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
