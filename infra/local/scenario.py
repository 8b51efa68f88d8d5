"""`mlops-kit local run`: the platform a stack would deploy, doing its job day by day on 127.0.0.1.

The run plans the stack offline (refusing one with mandatory policy violations), provisions the
emulator from that plan and then only plays the parts AWS plays: the shop's customers (history,
daily batches, ranking requests, the purchases that become ground truth), the SageMaker service
(running pipeline executions, hosting endpoints, emitting the model package, endpoint and S3
events it emits), CloudWatch (evaluating alarms) and EventBridge (routing events and schedules
to the plan's handlers). Which pipeline runs, with which parameters, which handler reacts to
what, and every threshold, come from the plan.

Time is simulated, on a fixed calendar (`SIMULATION_START`, whatever the real date), so a run
is a function of its seed and options alone. Every service reads the simulated clock: the
pipeline executor gives it to executions as `Execution.StartDateTime` (the validation step
judges freshness against it, as it does in AWS against the real start), the endpoint stamps
captures with it, alarms and events carry it. moto stamps executions with the wall clock,
while the retrain handler measures its cooldown from the alarm event's (simulated) time; so
before a handler runs, execution start times are set to their simulated start (`_Timeline`),
and a cooldown of 60 minutes means 60 simulated minutes, as in AWS.

Monitoring runs once a simulated day (the stack must schedule it daily), after the day's
ground truth has arrived, with the definition's own windows: drift over the last week of
capture, quality over the day whose labels are complete (`LABEL_HORIZON_DAYS` after it).

The plan's scheduled rules fire too (`EventRouter.fire_schedules` at each day's alarm round).
A `rate(...)` rule starts counting when the router first sees it, at the end of the first
simulated day, as a rule created by `pulumi up` starts counting then, and the retrain handler
decides what a scheduled retrain does, as in AWS (the dev stack retrains on schedule monthly,
so not within the default run). The summary shows every retrain request with its answer.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infra.local import traffic
from infra.local.alarms import AlarmEvaluator
from infra.local.defaults import (
    DEFAULT_BAD_BATCH_DAY,
    DEFAULT_CUSTOMERS,
    DEFAULT_DAYS,
    DEFAULT_HISTORY_DAYS,
    DEFAULT_REQUESTS_PER_DAY,
    DEFAULT_SEED,
    DEFAULT_SHIFT_DAY,
    SIMULATION_START,
)
from infra.local.emulator import ACCOUNT_ID, Emulator
from infra.local.endpoint_host import EndpointHost
from infra.local.events import (
    EventRouter,
    endpoint_state_change,
    model_package_state_change,
    pipeline_execution_status_change,
)
from infra.local.handlers import handlers_from_plan
from infra.local.jobs_runner import ForkServerRunner
from infra.local.pipeline_executor import ExecutionResult, PipelineExecutor, split_s3
from infra.local.provision import Provisioned, describe, provision
from infra.local.report import write_outputs
from infra.settings import schedule_period_seconds
from ml_code import lineage
from ml_code.data.dataset import Dataset, write_partition, write_reference
from ml_code.data.generate import generate_day, generate_world, get_scenario
from ml_code.data.validate import validate_dataset, write_report
from ml_code.features.build import MIN_DATA_DAYS
from ml_code.features.definitions import LABEL_HORIZON_DAYS, LOOKBACK_DAYS

TRAINING_TRIGGER = "initial"
SCHEDULE_TIME_PLACEHOLDER = "<aws.scheduler.scheduled-time>"
_PIPELINE = "aws:sagemaker/pipeline:Pipeline"
_SCHEDULE = "aws:scheduler/schedule:Schedule"
_NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
_TRAFFIC_HOUR = 9
_INGEST_HOUR = 22

Log = Callable[[str], None]


class ScenarioError(RuntimeError):
    """The stack cannot be run locally as planned; the message says why and what to change."""


@dataclass(frozen=True)
class ScenarioSettings:
    """The knobs of a run. Thresholds are not here: they are the stack's configuration."""

    project_dir: Path
    stack: str = "dev"
    days: int = DEFAULT_DAYS
    history_days: int = DEFAULT_HISTORY_DAYS
    shift_day: int = DEFAULT_SHIFT_DAY
    """Days after the simulation starts when customers change (the history is unchanged)."""
    scenario: str = "preference-shift"
    bad_batch_day: int | None = DEFAULT_BAD_BATCH_DAY
    seed: int = DEFAULT_SEED
    customers: int = DEFAULT_CUSTOMERS
    requests_per_day: int = DEFAULT_REQUESTS_PER_DAY
    start_date: dt.date = dt.date.fromisoformat(SIMULATION_START)
    """The first simulated day; the history ends the day before."""
    run_dir: Path | None = None
    plan: Mapping[str, Any] | None = None
    """An already made plan of `stack` (tests); default: plan it now."""

    def __post_init__(self) -> None:
        if self.history_days < MIN_DATA_DAYS:
            raise ScenarioError(
                f"history_days = {self.history_days} is too short: the first model's training "
                f"set needs {MIN_DATA_DAYS} days ({LOOKBACK_DAYS} of features before the oldest "
                f"cut-off, then its cut-offs and a {LABEL_HORIZON_DAYS}-day label window); "
                f"use --history-days {MIN_DATA_DAYS} or more"
            )


@dataclass
class DayRecord:
    index: int
    date: str
    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    """HTTP status -> count, of the day's ranking requests."""
    malformed: dict[str, int] = field(default_factory=dict)
    """HTTP status -> count, of the malformed requests a buggy client sent the same day."""
    batch: str = ""
    dataset_version: str | None = None
    monitored_day: str | None = None
    drift_max_psi: float | None = None
    drift_psi: dict[str, float] = field(default_factory=dict)
    ndcg_at_10: float | None = None
    """Live NDCG@10 of the quality window ending on `monitored_day` (published only)."""
    quality_shortfall_z: float | None = None
    ground_truth_coverage: float | None = None
    alarms: dict[str, str] = field(default_factory=dict)
    serving_version: int | None = None


@dataclass
class RunRecord:
    """Everything the summary, the report and the tests read: plain data, JSON-serialisable."""

    stack: str
    settings: dict[str, Any]
    run_dir: str = ""
    start_date: str = ""
    shift_date: str = ""
    phases: dict[str, float] = field(default_factory=dict)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    provisioned: str = ""
    alarms: list[dict[str, Any]] = field(default_factory=list)
    """The provisioned alarms: name, metric, comparison, threshold (from the stack config)."""
    dataset_versions: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    executions: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    alarm_transitions: list[dict[str, Any]] = field(default_factory=list)
    retrain_requests: list[dict[str, Any]] = field(default_factory=list)
    schedules: list[dict[str, Any]] = field(default_factory=list)
    undelivered: list[dict[str, Any]] = field(default_factory=list)
    days: list[DayRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RunRecord:
        """A record read back from `summary.json`."""
        return cls(**{**doc, "days": [DayRecord(**day) for day in doc.get("days", [])]})


@dataclass
class _Clock:
    """The simulated time every local service reads (endpoint capture, events, alarms)."""

    now: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass(frozen=True)
class _Layout:
    """Where the platform keeps things, read from the plan's pipeline definitions."""

    model: str
    training_pipeline: str
    monitoring_pipeline: str | None
    monitoring_parameters: dict[str, str]
    dataset_uri: str
    max_data_age_days: int
    ground_truth_uri: str
    eventbridge_buckets: frozenset[str]

    @property
    def raw_bucket(self) -> str:
        return split_s3(self.dataset_uri)[0]

    @property
    def versions_uri(self) -> str:
        return f"s3://{self.raw_bucket}/dataset-versions/{self.model}"

    def quarantine_prefix(self, day: dt.date) -> str:
        return f"quarantine/{self.model}/{day.isoformat()}/"


def plan_for(settings: ScenarioSettings, log: Log) -> dict[str, Any]:
    """The stack's offline plan; refuses a stack with mandatory policy violations."""
    from infra.plan.runner import plan_stack
    from infra.policy.report import PolicyReport

    if settings.plan is not None:
        doc = dict(settings.plan)
    else:
        result = plan_stack(settings.project_dir, settings.stack)
        if not result.ok or result.doc is None:
            raise ScenarioError(f"planning stack '{settings.stack}' failed:\n{result.error}")
        doc = result.doc
    policy = doc.get("policy")
    if policy is not None:
        report = PolicyReport.from_json(policy)
        if report.mandatory_count:
            raise PolicyRefusal(report)
        log(
            f"policy {report.pack}: {report.mandatory_count} mandatory, "
            f"{report.advisory_count} advisory"
        )
    return doc


class PolicyRefusal(ScenarioError):
    """The plan violates mandatory policies; nothing is provisioned."""

    def __init__(self, report: Any) -> None:
        super().__init__(
            f"stack '{report.stack}' has {report.mandatory_count} mandatory policy violation(s); "
            "`pulumi up` would refuse it, so the local run does too"
        )
        self.report = report


def run_scenario(
    settings: ScenarioSettings,
    log: Log = lambda _: None,
    before_teardown: Callable[[LocalRun], None] | None = None,
) -> RunRecord:
    """Plan, provision, run the whole story; returns what happened (also in `run_dir`).

    `before_teardown` sees the run while its emulator and endpoint are still up (tests use it
    to check what the story left behind)."""
    run = LocalRun(settings, log)
    return run.execute(before_teardown)


class LocalRun:
    """One run. `execute()` drives it; the attributes are there for tests to inspect."""

    def __init__(self, settings: ScenarioSettings, log: Log) -> None:
        self.settings = settings
        self.log = log
        self.record = RunRecord(
            settings.stack,
            {
                k: str(v) if isinstance(v, Path | dt.date) else v
                for k, v in settings.__dict__.items()
                if k != "plan"
            },
        )
        self.run_dir = settings.run_dir or default_run_dir(settings.project_dir, settings.stack)
        self.record.run_dir = str(self.run_dir)
        self.start = settings.start_date
        self.clock = _Clock(dt.datetime.combine(self.start, dt.time(), dt.UTC))
        self.timeline = _Timeline()
        self.accepted: list[pd.DataFrame] = []
        self.items = pd.DataFrame()
        self.truth: dict[dt.date, pd.DataFrame] = {}
        self.sent: dict[dt.date, list[traffic.SentRequest]] = {}
        self._uploads: list[tuple[str, str]] = []
        self._manifest: lineage.DatasetManifest | None = None
        self._pending: list[str] = []

    # -- the whole run ------------------------------------------------------------------------

    def execute(self, before_teardown: Callable[[LocalRun], None] | None = None) -> RunRecord:
        """The plan is made in its own process, so the job server starts and the shop's
        history is generated meanwhile; nothing is provisioned before the plan has passed the
        policy pack."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(max_workers=1) as planner:
            planned = planner.submit(plan_for, self.settings, self.log)
            with Emulator() as cloud, ForkServerRunner() as runner, self._host(cloud) as host:
                self.cloud, self.runner, self.host = cloud, runner, host
                with self._phase("job server (while planning)"):
                    runner.start()
                with self._phase("history (while planning)"):
                    self._generate_history()
                with self._phase("plan (the rest of it)"):
                    self.plan = planned.result()
                self._after_plan(before_teardown)
        write_outputs(self.record, self.run_dir)
        return self.record

    def _after_plan(self, before_teardown: Callable[[LocalRun], None] | None) -> None:
        with self._phase("provision"):
            self._provision()
        with self._phase("first model"):
            self._first_model()
        for index in range(self.settings.days):
            with self._phase("simulated days"):
                self._day(index)
        if before_teardown is not None:
            before_teardown(self)

    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - started
            self.record.phases[name] = self.record.phases.get(name, 0.0) + spent

    @contextmanager
    def _host(self, cloud: Emulator) -> Iterator[EndpointHost]:
        host = EndpointHost(
            cloud.client("sagemaker"),
            cloud.client("s3"),
            cloud.client("cloudwatch"),
            self.run_dir / "endpoints",
            clock=self.clock,
            capture_batch=self.settings.requests_per_day,
        )
        try:
            yield host
        finally:
            host.close()

    # -- set-up -------------------------------------------------------------------------------

    def _provision(self) -> None:
        self.provisioned = provision(self.plan, self.cloud, self.settings.project_dir)
        self.record.provisioned = describe(self.provisioned)
        self.log(self.record.provisioned)
        self.s3 = self.cloud.client("s3")
        self.sagemaker = self.cloud.client("sagemaker")
        self.layout = _layout(self.plan, self.provisioned, self.sagemaker)
        self.router = EventRouter(self.cloud.client("events"), handlers_from_plan(self.plan))
        self.alarms = AlarmEvaluator(
            self.cloud.client("cloudwatch"),
            self.cloud.metric_samples,
            stamp=self.cloud.stamp_alarm_state,
        )
        described = self.cloud.client("cloudwatch").describe_alarms(AlarmTypes=["MetricAlarm"])
        self.record.alarms = [
            {
                "name": alarm["AlarmName"],
                "metric": alarm["MetricName"],
                "comparison": alarm["ComparisonOperator"],
                "threshold": alarm["Threshold"],
            }
            for alarm in described["MetricAlarms"]
        ]
        self.executor = PipelineExecutor(
            self.s3,
            self.sagemaker,
            self.run_dir / "jobs",
            region=self.cloud.region,
            account_id=self.cloud.account_id,
            runner=_TimedRunner(self.runner, self.record.jobs),
            on_upload=lambda bucket, key: self._uploads.append((bucket, key)),
            clock=self.clock,
        )

    def _generate_history(self) -> None:
        settings = self.settings
        history = settings.history_days
        scenario = get_scenario(settings.scenario, shift_day=history + settings.shift_day)
        self.world = generate_world(
            seed=settings.seed,
            n_customers=settings.customers,
            start_date=self.start - dt.timedelta(days=history),
            days=history,
            scenario=scenario,
        )
        self.record.start_date = self.start.isoformat()
        self.record.shift_date = self.world.shift_date.isoformat()
        interactions = self.world.interactions
        for date, events in interactions.groupby(interactions["event_time"].dt.date):
            self.truth[date] = events
        self.accepted = [interactions]

    def _first_model(self) -> None:
        dataset = self.world.dataset()
        self.clock.now = dt.datetime.combine(self.start, dt.time(), dt.UTC)
        self._upload_dataset(dataset.customers, dataset.items, dataset.interactions, "history")
        self.log(
            f"history: {self.settings.history_days} days, {len(dataset.interactions)} events, "
            f"dataset {self.record.dataset_versions[-1]['version']}"
        )
        version = self.record.dataset_versions[-1]["version"]
        started = self.sagemaker.start_pipeline_execution(
            PipelineName=self.layout.training_pipeline,
            PipelineExecutionDescription="first model of the local run",
            PipelineParameters=[
                {"Name": "DatasetVersion", "Value": version},
                {"Name": "TriggerReason", "Value": TRAINING_TRIGGER},
            ],
        )
        self.timeline.started(started["PipelineExecutionArn"], self.clock.now)
        self._run_pending(day=None)
        if self.host.live_config(self._endpoint_name()) is None:
            raise ScenarioError(
                "the first model was not deployed: see the executions and deliveries in "
                f"{self.run_dir / 'summary.json'}"
            )

    # -- one simulated day --------------------------------------------------------------------

    def _day(self, index: int) -> None:
        date = self.start + dt.timedelta(days=index)
        record = DayRecord(index, date.isoformat())
        self.record.days.append(record)
        self.truth[date] = generate_day(self.world, date)

        self.clock.now = _at(date, _TRAFFIC_HOUR)
        rng = np.random.default_rng([self.settings.seed, 2, index])
        requests = traffic.ranking_requests(
            self._accepted_dataset(), date, self.settings.requests_per_day, rng
        )
        url = self.host.url(self._endpoint_name())
        for _, body, content_type in traffic.malformed_requests(requests[0][1]):
            status = traffic.invoke(url, body, content_type=content_type)
            record.malformed[str(status)] = record.malformed.get(str(status), 0) + 1
        sent = traffic.send_day(url, date, requests, seed=self.settings.seed)
        self.host.flush()
        self.sent[date] = sent.sent
        record.requests = len(requests)
        record.statuses = {str(k): v for k, v in sorted(sent.statuses.items())}
        record.serving_version = self._serving_version()

        self.clock.now = _at(date, _INGEST_HOUR)
        record.batch, record.dataset_version = self._ingest(index, date)

        labelled = traffic.labels_known_on(date)
        if labelled in self.sent:
            self._upload_ground_truth(date, labelled)
            record.monitored_day = labelled.isoformat()
        self._monitor(date, record)

        self.clock.now = _at(date + dt.timedelta(days=1), 1)
        self.timeline.restamp(self.sagemaker, self.clock.now)
        for event in self.alarms.evaluate(self.clock.now):
            detail = event["detail"]
            self.record.alarm_transitions.append(
                {
                    "time": event["time"],
                    "day": index,
                    "alarm": detail["alarmName"],
                    "from": detail["previousState"]["value"],
                    "to": detail["state"]["value"],
                }
            )
            self._deliver(self.router.publish(event), index, "alarm " + detail["alarmName"])
        record.alarms = {e.alarm_name: e.state for e in self.alarms.evaluations}
        for delivery in self.router.fire_schedules(self.clock.now):
            self.record.schedules.append({"day": index, "rule": delivery.rule, "ok": delivery.ok})
            self._deliver([delivery], index, "schedule " + delivery.rule)
        self._run_pending(day=index)
        self.log(_day_line(record))

    def _accepted_dataset(self) -> Dataset:
        return Dataset(
            customers=self.world.customers,
            items=self.items,
            interactions=pd.concat(self.accepted, ignore_index=True),
        )

    # -- data: versions and quarantine --------------------------------------------------------

    def _ingest(self, index: int, date: dt.date) -> tuple[str, str | None]:
        """Validate the day's batch as ingestion would; accept it as a new dataset version or
        quarantine it with its report."""
        events = self.truth[date]
        bad = self.settings.bad_batch_day is not None and index == self.settings.bad_batch_day
        if bad:
            events = corrupt_batch(events)
        items = self.world.items[self.world.items["listed_date"] <= date].reset_index(drop=True)
        with tempfile.TemporaryDirectory() as tmp:
            batch = Path(tmp) / "batch"
            write_reference(self.world.customers, items, batch)
            write_partition(events, batch)
            report = validate_dataset(batch, date, self.layout.max_data_age_days)
            if not report.passed:
                prefix = self.layout.quarantine_prefix(date)
                write_report(report, Path(tmp) / "report")
                self._put_tree(batch, self.layout.raw_bucket, f"{prefix}batch/")
                self._put_tree(Path(tmp) / "report", self.layout.raw_bucket, f"{prefix}report/")
                self.record.quarantined.append(
                    {
                        "day": index,
                        "date": date.isoformat(),
                        "location": f"s3://{self.layout.raw_bucket}/{prefix}",
                        "failures": [
                            f"{f.table}.{f.column or '*'}: {f.check} ({f.failing_rows} rows)"
                            for f in report.failures
                        ],
                    }
                )
                return "quarantined", None
        self.accepted.append(events)
        self._upload_dataset(None, items, events, f"day {index}")
        return "accepted", self.record.dataset_versions[-1]["version"]

    def _upload_dataset(
        self,
        customers: pd.DataFrame | None,
        items: pd.DataFrame,
        interactions: pd.DataFrame,
        source: str,
    ) -> None:
        bucket, prefix = split_s3(self.layout.dataset_uri)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_reference(self.world.customers if customers is None else customers, items, root)
            write_partition(interactions, root)
            if customers is None:
                (root / "customers.parquet").unlink()
            if self.items.equals(items):
                (root / "items.parquet").unlink()
            self._put_tree(root, bucket, prefix)
        self.items = items
        manifest = lineage.publish_s3_version(
            self.layout.dataset_uri, self.layout.versions_uri, self.s3, previous=self._manifest
        )
        self._manifest = manifest
        self.record.dataset_versions.append(
            {
                "version": manifest.version,
                "source": source,
                "files": len(manifest.files),
                "rows": manifest.total_rows,
                "manifest": f"{self.layout.versions_uri}/{manifest.version}/manifest.json",
            }
        )

    def _put_tree(self, root: Path, bucket: str, prefix: str) -> None:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            self.s3.upload_file(str(path), bucket, f"{prefix}{path.relative_to(root).as_posix()}")

    # -- ground truth and monitoring ----------------------------------------------------------

    def _upload_ground_truth(self, today: dt.date, labelled: dt.date) -> None:
        horizon = [labelled + dt.timedelta(days=d) for d in range(LABEL_HORIZON_DAYS)]
        purchases = traffic.purchases_of({d: self.truth[d] for d in horizon})
        lines = traffic.ground_truth_lines(self.sent[labelled], purchases)
        bucket, key = split_s3(self._ground_truth_prefix(today))
        self.s3.put_object(
            Bucket=bucket,
            Key=f"{key}labels-{labelled.isoformat()}.jsonl",
            Body=("\n".join(lines) + "\n").encode(),
        )

    def _ground_truth_prefix(self, today: dt.date) -> str:
        return f"{self.layout.ground_truth_uri.rstrip('/')}/{today:%Y/%m/%d}/"

    def _monitor(self, today: dt.date, record: DayRecord) -> None:
        """The day's monitoring run, as the schedule starts it: the definition's own windows
        and inputs (drift over the last days of capture, quality over the days whose labels
        are complete, from every label the endpoint has received)."""
        if self.layout.monitoring_pipeline is None:
            return
        window_end = _at(today + dt.timedelta(days=1), 0)
        parameters = {
            **{
                name: value.replace(SCHEDULE_TIME_PLACEHOLDER, _iso(window_end))
                for name, value in self.layout.monitoring_parameters.items()
            },
            "WindowEnd": _iso(window_end),
        }
        started = self.sagemaker.start_pipeline_execution(
            PipelineName=self.layout.monitoring_pipeline,
            PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()],
        )
        self.timeline.started(started["PipelineExecutionArn"], self.clock.now)
        results = self._run_pending(day=record.index)
        for result in results:
            if result.pipeline_name == self.layout.monitoring_pipeline:
                self._read_monitoring(result, record)

    def _read_monitoring(self, result: ExecutionResult, record: DayRecord) -> None:
        for step in result.steps:
            outputs = (step.properties.get("ProcessingOutputConfig") or {}).get("Outputs", [])
            for output in outputs:
                uri = output["S3Output"]["S3Uri"]
                for name in ("drift_report.json", "quality_report.json"):
                    report = self._read_json(f"{uri.rstrip('/')}/{name}")
                    if report is None:
                        continue
                    if name.startswith("drift"):
                        if report.get("too_few_requests"):
                            continue  # not published, so no alarm saw it: noise, not drift
                        record.drift_max_psi = report.get("max_psi")
                        record.drift_psi = {
                            feature: values["psi"]
                            for feature, values in (report.get("features") or {}).items()
                            if isinstance(values, dict)
                            and "psi" in values
                            and values.get("monitored", True)
                        }
                    else:
                        if report.get("status") == "insufficient data":
                            continue  # published nothing: too few labelled rankings
                        record.quality_shortfall_z = report.get("quality_shortfall_z")
                        ranking = report.get("ranking") or report.get("metrics") or {}
                        record.ndcg_at_10 = _first(report, ranking, "ndcg_at_10")
                        record.ground_truth_coverage = _first(
                            report, ranking, "ground_truth_coverage"
                        )

    def _read_json(self, uri: str) -> dict[str, Any] | None:
        bucket, key = split_s3(uri)
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None
        return json.loads(body)

    # -- the service side: executions, registrations, deployments ------------------------------

    def _claim(self) -> None:
        """Executions started since the last look are Executing from now on, as in SageMaker:
        a handler that lists them sees a run in progress."""
        for arn in self.executor.claim_new():
            self.timeline.started(arn, self.clock.now)
            self._pending.append(arn)

    def _run_pending(self, day: int | None) -> list[ExecutionResult]:
        """Run every execution started so far, emitting what SageMaker and S3 would emit."""
        results = []
        self._claim()
        while self._pending:
            arn = self._pending.pop(0)
            started = time.perf_counter()
            result = self.executor.run(arn)
            results.append(result)
            self._record_execution(result, day, time.perf_counter() - started)
            self._emit_uploads(day)
            self._emit_ending(result, day)
            self._emit_registrations(result, day)
            self._claim()
        return results

    def _record_execution(self, result: ExecutionResult, day: int | None, seconds: float) -> None:
        self.record.executions.append(
            {
                "day": day,
                "pipeline": result.pipeline_name,
                "execution": result.execution_arn.rsplit("/", 1)[-1],
                "status": result.status,
                "failure": result.failure_reason[:500],
                "trigger": str(result.parameters.get("TriggerReason", "")),
                "dataset_version": str(result.parameters.get("DatasetVersion", "")),
                "seconds": round(seconds, 2),
                "steps": {s.name: s.status for s in result.steps},
            }
        )

    def _emit_uploads(self, day: int | None) -> None:
        uploads, self._uploads = self._uploads, []
        for bucket, key in uploads:
            if bucket in self.layout.eventbridge_buckets:
                event = object_created(bucket, key, self.s3, self.clock.now, self.cloud.region)
                self._deliver(self.router.publish(event), day, f"s3 {key}")

    def _emit_ending(self, result: ExecutionResult, day: int | None) -> None:
        """SageMaker's status change event when an execution ends, as EventBridge receives it."""
        described = self.sagemaker.describe_pipeline_execution(
            PipelineExecutionArn=result.execution_arn
        )
        event = pipeline_execution_status_change(
            described["PipelineArn"],
            result.execution_arn,
            result.status,
            now=self.clock.now,
            started=self.timeline.starts.get(result.execution_arn, self.clock.now),
            description=str(described.get("PipelineExecutionDescription") or ""),
        )
        self._deliver(self.router.publish(event), day, f"execution {result.status}")

    def _emit_registrations(self, result: ExecutionResult, day: int | None) -> None:
        for step in result.steps:
            arn = step.properties.get("ModelPackageArn") if step.status == "Succeeded" else None
            if not arn:
                continue
            package = self.sagemaker.describe_model_package(ModelPackageName=arn)
            self.record.models.append(_model_entry(package, result, day))
            event = model_package_state_change(
                arn,
                package["ModelPackageGroupName"],
                package["ModelApprovalStatus"],
                now=self.clock.now,
                package=package,
            )
            self._deliver(self.router.publish(event), day, f"package {arn.rsplit('/', 2)[-2:]}")
            self._sync_endpoints(day)

    def _sync_endpoints(self, day: int | None) -> None:
        for switch in self.host.sync():
            self.record.deployments.append(
                {
                    "day": day,
                    "endpoint": switch.endpoint,
                    "from": switch.from_config,
                    "to": switch.to_config,
                    "switched": switch.switched,
                    "reason": switch.reason,
                }
            )
            if not switch.switched:
                continue
            arn = self.sagemaker.describe_endpoint(EndpointName=switch.endpoint)["EndpointArn"]
            event = endpoint_state_change(arn, switch.endpoint, "IN_SERVICE", now=self.clock.now)
            self._deliver(self.router.publish(event), day, f"endpoint {switch.endpoint}")

    def _deliver(self, deliveries: list[Any], day: int | None, cause: str) -> None:
        for delivery in deliveries:
            if not delivery.ok:
                self.record.undelivered.append(
                    {"day": day, "cause": cause, "rule": delivery.rule, "error": delivery.error}
                )
                continue
            result = delivery.result if isinstance(delivery.result, dict) else {}
            if "started" in result:
                self.record.retrain_requests.append(
                    {
                        "day": day,
                        "cause": cause,
                        "started": result["started"],
                        "reason": result.get("reason"),
                        "execution": (result.get("execution_arn") or "").rsplit("/", 1)[-1],
                    }
                )
                self._claim()

    def _endpoint_name(self) -> str:
        names = [e["EndpointName"] for e in self.sagemaker.list_endpoints()["Endpoints"]]
        if len(names) != 1:
            raise ScenarioError(f"expected the model's one endpoint, found {names}")
        return names[0]

    def _serving_version(self) -> int | None:
        """The model package version live on the endpoint (the deploy handler names endpoint
        configurations `<endpoint>-v<version>`)."""
        config = self.host.live_config(self._endpoint_name()) or ""
        _, _, version = config.rpartition("-v")
        return int(version) if version.isdigit() else None


# -- plan reading ------------------------------------------------------------------------------


def _layout(plan: Mapping[str, Any], provisioned: Provisioned, sagemaker: Any) -> _Layout:
    models = (plan.get("config") or {}).get("mlops:models") or []
    if isinstance(models, str):  # plans hold structured config values as JSON text
        models = json.loads(models)
    if not models:
        raise ScenarioError("the stack configures no model (mlops:models is empty)")
    model = models[0]["name"]
    definitions = {
        s["PipelineName"]: json.loads(
            sagemaker.describe_pipeline(PipelineName=s["PipelineName"])["PipelineDefinition"]
        )
        for s in sagemaker.list_pipelines()["PipelineSummaries"]
    }
    training = [n for n, d in definitions.items() if _parameter(d, "InputDataUri") is not None]
    if len(training) != 1:
        raise ScenarioError(f"expected one training pipeline, found {sorted(training)}")
    schedule = next((r for r in plan.get("resources", []) if r["type"] == _SCHEDULE), None)
    monitoring, fixed = None, {}
    if schedule is not None:
        expression = str((schedule.get("inputs") or {}).get("scheduleExpression", ""))
        if schedule_period_seconds(expression) != 86400:
            raise ScenarioError(
                f"mlops:monitoringSchedule = '{expression}': the local run monitors once a "
                "simulated day, as ground truth arrives; run it on a stack monitoring "
                "'rate(1 day)'"
            )
        target = (schedule.get("inputs") or {}).get("target") or {}
        monitoring = str(target.get("arn", "")).rsplit("/", 1)[-1] or None
        given = (target.get("sagemakerPipelineParameters") or {}).get("pipelineParameters") or []
        fixed = {p["name"]: str(p["value"]) for p in given}
    ground_truth_uri = ""
    if monitoring in definitions:
        ground_truth_uri = str(_parameter(definitions[monitoring], "GroundTruthUri") or "")
    else:
        monitoring = None
    return _Layout(
        model=model,
        training_pipeline=training[0],
        monitoring_pipeline=monitoring,
        monitoring_parameters=fixed,
        dataset_uri=str(_parameter(definitions[training[0]], "InputDataUri")),
        max_data_age_days=int(_parameter(definitions[training[0]], "MaxDataAgeDays") or 2),
        ground_truth_uri=ground_truth_uri,
        eventbridge_buckets=_eventbridge_buckets(plan, provisioned),
    )


def _parameter(definition: Mapping[str, Any], name: str) -> Any:
    for parameter in definition.get("Parameters", []):
        if parameter["Name"] == name:
            return parameter.get("DefaultValue")
    return None


def _eventbridge_buckets(plan: Mapping[str, Any], provisioned: Provisioned) -> frozenset[str]:
    """Buckets whose notification configuration sends events to EventBridge: only those emit
    `Object Created` events, as in AWS."""
    names = set()
    for resource in plan.get("resources", []):
        if resource["type"] != _NOTIFICATION or not (resource.get("inputs") or {}).get(
            "eventbridge"
        ):
            continue
        for urn in (resource.get("propertyDependencies") or {}).get("bucket", []):
            identity = provisioned.identity(urn)
            if identity is not None and identity.name:
                names.add(identity.name)
    return frozenset(names)


# -- events the service side emits ------------------------------------------------------------


def object_created(bucket: str, key: str, s3: Any, now: dt.datetime, region: str) -> dict[str, Any]:
    """S3's `Object Created` event on EventBridge, in AWS's shape."""
    head = s3.head_object(Bucket=bucket, Key=key)
    detail = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": {
            "key": key,
            "size": head["ContentLength"],
            "etag": head["ETag"].strip('"'),
            **({"version-id": head["VersionId"]} if head.get("VersionId") else {}),
            "sequencer": f"{int(now.timestamp() * 1000):016X}",
        },
        "request-id": uuid.uuid4().hex[:16].upper(),
        "requester": ACCOUNT_ID,
        "source-ip-address": "127.0.0.1",
        "reason": "PutObject",
    }
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"s3://{bucket}/{key}/{head['ETag']}")),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT_ID,
        "time": _iso(now),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": detail,
    }


class _TimedRunner:
    """Records each job's wall time by step name, for the summary and the benchmark."""

    def __init__(self, inner: Any, out: list[dict[str, Any]]) -> None:
        self.inner = inner
        self.out = out

    def run(self, argv: Any, cwd: Path, env: Mapping[str, str], log: Path) -> int:
        started = time.perf_counter()
        code = self.inner.run(argv, cwd, env, log)
        step = log.stem.rsplit("-", 1)[-1]
        self.out.append({"step": step, "seconds": round(time.perf_counter() - started, 3)})
        return code


class _Timeline:
    """Simulated start times of executions, written into the emulator.

    moto stamps an execution with the wall clock when it is created; the retrain handler
    measures its cooldown from the alarm event's time, which here is simulated. Before handlers
    run, each execution's start is set to the simulated time it started, as the service would
    have stamped it.
    """

    def __init__(self) -> None:
        self.starts: dict[str, dt.datetime] = {}

    def started(self, arn: str, when: dt.datetime) -> None:
        self.starts.setdefault(arn, when)

    def restamp(self, sagemaker: Any, now: dt.datetime) -> None:
        from moto.backends import get_backend

        for account in get_backend("sagemaker").values():
            for backend in account.values():
                for pipeline in backend.pipelines.values():
                    for arn, execution in pipeline.pipeline_executions.items():
                        if arn in self.starts and self.starts[arn] <= now:
                            _set_start(execution, self.starts[arn])


def _set_start(execution: Any, moment: dt.datetime) -> None:
    """moto keeps naive UTC datetimes."""
    naive = moment.astimezone(dt.UTC).replace(tzinfo=None)
    execution.creation_time = execution.start_time = execution.last_modified_time = naive


# -- small helpers -----------------------------------------------------------------------------


def corrupt_batch(events: pd.DataFrame) -> pd.DataFrame:
    """The bad batch: a broken upstream export with negative prices and unknown items."""
    bad = events.copy()
    rows = bad.index[:: max(1, len(bad) // 25)]
    bad.loc[rows, "price"] = -bad.loc[rows, "price"].abs() - 1.0
    dangling = bad.index[1 :: max(1, len(bad) // 25)]
    bad.loc[dangling, "item_id"] = "I-UNKNOWN"
    return bad


def _model_entry(
    package: Mapping[str, Any], result: ExecutionResult, day: int | None
) -> dict[str, Any]:
    metadata = package.get("CustomerMetadataProperties") or {}
    version = int(package["ModelPackageVersion"])
    return {
        "version": version,
        "arn": package["ModelPackageArn"],
        "status": package["ModelApprovalStatus"],
        "day": day,
        "trigger": str(result.parameters.get("TriggerReason", "")),
        "dataset_version": str(result.parameters.get("DatasetVersion", "")),
        "ndcg_at_10": _float(metadata.get("ndcg_at_10")),
        "champion_ndcg_at_10": _float(metadata.get("champion_ndcg_at_10")),
        "auc": _float(metadata.get("auc")),
        "model_data_url": (package.get("InferenceSpecification") or {})
        .get("Containers", [{}])[0]
        .get("ModelDataUrl"),
        "metadata": dict(metadata),
    }


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _first(report: Mapping[str, Any], nested: Mapping[str, Any], key: str) -> float | None:
    for source in (report, nested):
        value = source.get(key)
        if isinstance(value, dict):
            value = value.get("value")
        if isinstance(value, int | float):
            return float(value)
    return None


def _at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day_line(record: DayRecord) -> str:
    parts = [f"day {record.index:>2} {record.date}", f"{record.requests} requests"]
    parts.append(record.batch)
    if record.drift_max_psi is not None:
        parts.append(f"psi {record.drift_max_psi:.3f}")
    if record.ndcg_at_10 is not None:
        parts.append(f"ndcg {record.ndcg_at_10:.3f}")
    firing = [name for name, state in record.alarms.items() if state == "ALARM"]
    if firing:
        parts.append("ALARM " + ",".join(firing))
    return " | ".join(parts)


def default_run_dir(project_dir: Path, stack: str) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return project_dir / "runs" / f"{stamp}-{stack}"
