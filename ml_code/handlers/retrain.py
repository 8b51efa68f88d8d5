"""Start the model's training pipeline when its drift or quality alarm fires, re-check while
it stays in ALARM, retrain on a schedule, and tell a person when a training run fails.

Alarm storms must start one run, not many (EventBridge delivers at least once, alarms flap,
the drift and quality alarms often fire together). So a run is started only when no execution
of the pipeline is Executing or Stopping and none started within the cooldown; and concurrent
duplicates that both pass that check collapse on a `ClientRequestToken` derived from the
pipeline and the event-time bucket (one bucket per cooldown window).

**A retrain must be able to see the change.** An alarm's *onset* is the day of the newest
traffic in the evidence that raised it: the time the alarm entered ALARM less the lag of that
evidence (a day for drift, whose window ends when the daily schedule fires; the label horizon
for quality, whose newest datapoint judges the requests of a horizon ago). The training
pipeline anchors its splits at the newest cut-off whose labels are complete,
`LABEL_HORIZON_DAYS` before the event's day, so a run started now has `newest cut-off - onset
+ 1` labelled days of the changed world. With fewer than `MIN_NEW_LABEL_DAYS` (counted from the
earliest onset among the model's alarms in ALARM), no run is started: it would train and be
judged on the old world and could not beat the champion.

**No stall.** An alarm that stays in ALARM sends no second event, so a rule on a schedule sends
a `recheck` event; while one of the model's alarms is in ALARM, the re-check does what the
alarm would, until the episode (the alarms in ALARM since their onset) is done. While a
`RETRY_ALARMS` alarm (quality: the serving model itself is below its threshold) is in ALARM it
is not done, as after a rejected candidate. Drift alone is done once the serving model has
learnt from days after the onset (its `labels_through`): features that keep moving after a
good retrain keep the drift alarm on, and retraining on them again would only give the gate
more to reject; a model retrained too early (on days before the onset) is retrained again.
Retries back off: the k-th run of an episode waits `COOLDOWN_MINUTES * 2**(k-1)` after the
previous one, and after `MAX_RUNS_PER_EPISODE` the handler starts nothing more and says so.

**Failures are told.** The same function receives the training pipeline's executions that end
Failed or Stopped and publishes why (a rejected candidate's figures) to the alarm topic.

Scheduled retrains still need `MIN_NEW_LABEL_DAYS` of labels the champion has not learnt from
(its package records `labels_through`).

The new run receives why it was started (`TriggerReason`) and the model it must beat
(`ChampionModelUri`: the latest Approved package's model artifact). The pipeline scores that
champion on the same held-out rows as the new model; with no approved model yet the parameter
is left out and the pipeline's default (no champion) applies.

Configuration comes from the environment: `PIPELINE_NAME`, `MODEL_PACKAGE_GROUP`,
`COOLDOWN_MINUTES` (default 360), `MIN_NEW_LABEL_DAYS` (default 0: no such check),
`ALARM_EVIDENCE_LAGS` (JSON: the model's alarm names and their evidence lag in days; only
these alarms start runs), `RETRY_ALARMS` (comma-separated), `ALARM_TOPIC_ARN`,
`LABEL_HORIZON_DAYS` (default 7), `MAX_RUNS_PER_EPISODE` (default 3). `AWS_ENDPOINT_URL` points
the clients at an emulator.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import ClientError

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
PIPELINE_EXECUTION_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
ENDED_BADLY = frozenset({"Failed", "Stopped"})
SCHEDULE_SOURCE = "schedule"
RECHECK_SOURCE = "recheck"
ACTIVE_STATUSES = frozenset({"Executing", "Stopping"})
TRIGGER_REASON_PARAMETER = "TriggerReason"
CHAMPION_MODEL_PARAMETER = "ChampionModelUri"
DEFAULT_COOLDOWN_MINUTES = 360
DEFAULT_LABEL_HORIZON_DAYS = 7
DEFAULT_MAX_RUNS_PER_EPISODE = 3
ACTIVE_LOOKBACK = timedelta(days=30)
"""Executions older than this are not listed; SageMaker stops pipeline executions long before."""
MAX_PARAMETER_LENGTH = 1024
MAX_CLOCK_SKEW = timedelta(minutes=5)
LABELS_THROUGH_KEY = "labels_through"


@dataclass(frozen=True)
class RetrainConfig:
    pipeline_name: str
    model_package_group: str
    cooldown_minutes: int = DEFAULT_COOLDOWN_MINUTES
    min_new_label_days: int = 0
    alarm_lags: Mapping[str, int] = field(default_factory=dict)
    """The model's alarms (name -> evidence lag in days); empty: any alarm event counts and
    the re-check has nothing to look at."""
    label_horizon_days: int = DEFAULT_LABEL_HORIZON_DAYS
    max_runs_per_episode: int = DEFAULT_MAX_RUNS_PER_EPISODE
    alarm_topic_arn: str = ""
    """Where a failed or stopped training run (a rejected candidate included) is reported."""
    retry_alarms: frozenset[str] = frozenset()
    """Alarms that say the serving model itself is below its threshold (quality). An episode
    without one of them in ALARM (drift alone) is done once the serving model has learnt from
    days after its onset."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RetrainConfig:
        env = os.environ if env is None else env
        missing = [k for k in ("PIPELINE_NAME", "MODEL_PACKAGE_GROUP") if not env.get(k)]
        if missing:
            raise ValueError(
                f"retrain handler: environment variables {missing} are not set; the "
                "RetrainingTrigger component sets them on the function."
            )
        raw_lags = env.get("ALARM_EVIDENCE_LAGS", "{}")
        try:
            lags = json.loads(raw_lags)
            valid = isinstance(lags, dict) and all(
                isinstance(v, int) and v >= 0 for v in lags.values()
            )
        except ValueError:
            valid = False
        if not valid:
            raise ValueError(
                f"retrain handler: ALARM_EVIDENCE_LAGS='{raw_lags}' is not a JSON object of "
                'alarm names to whole days, e.g. {"mlops-dev-recs-drift": 0}'
            )
        return cls(
            env["PIPELINE_NAME"],
            env["MODEL_PACKAGE_GROUP"],
            _whole(env, "COOLDOWN_MINUTES", DEFAULT_COOLDOWN_MINUTES, "minutes"),
            _whole(env, "MIN_NEW_LABEL_DAYS", 0, "days"),
            lags,
            _whole(env, "LABEL_HORIZON_DAYS", DEFAULT_LABEL_HORIZON_DAYS, "days"),
            _whole(env, "MAX_RUNS_PER_EPISODE", DEFAULT_MAX_RUNS_PER_EPISODE, "runs"),
            env.get("ALARM_TOPIC_ARN", ""),
            frozenset(n for n in env.get("RETRY_ALARMS", "").split(",") if n),
        )


def _whole(env: Mapping[str, str], key: str, default: int, unit: str) -> int:
    raw = env.get(key, str(default))
    if not raw.isdigit():
        raise ValueError(f"retrain handler: {key}='{raw}' is not a whole number of {unit}")
    return int(raw)


@dataclass(frozen=True)
class Episode:
    """The model's alarms in ALARM: which, and when the change they report began."""

    alarms: tuple[str, ...]
    onset: datetime


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
    if event.get("detail-type") == PIPELINE_EXECUTION_STATUS_CHANGE:
        return notify_failure(
            event,
            client=boto3.client("sagemaker", endpoint_url=endpoint),
            sns=boto3.client("sns", endpoint_url=endpoint),
            config=RetrainConfig.from_env(),
        )
    return retrain(
        event,
        client=boto3.client("sagemaker", endpoint_url=endpoint),
        cloudwatch=boto3.client("cloudwatch", endpoint_url=endpoint),
        config=RetrainConfig.from_env(),
    )


def retrain(
    event: Mapping[str, Any],
    *,
    client: Any,
    config: RetrainConfig,
    cloudwatch: Any = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Start at most one execution for this event; say why one was or was not started.

    "Now" is the event's time (when the alarm changed state), falling back to the clock: the
    cooldown is about how far apart alarms are, not about delivery delays or replays. A time
    without a zone is UTC; a time later than the clock (a forged or skewed event) is the
    clock's, so it cannot skip the cooldown or hide the executions already started."""
    if now is None:
        clock = datetime.now(UTC)
        now = min(_event_time(event, clock), clock + MAX_CLOCK_SKEW)
    reason = trigger_reason(event, config)
    if reason is None:
        return _result(False, _ignored(event), None)

    episode = None
    if reason != SCHEDULE_SOURCE:
        episode = alarm_episode(cloudwatch, config, event, now)
        if episode is None:
            return _result(False, "ignored: none of the model's alarms is in ALARM", None)
        if reason == RECHECK_SOURCE:
            reason = f"recheck:{','.join(episode.alarms)} still in ALARM"

    champion = champion_package(client, config.model_package_group)
    latest_arn, blocked_because = _blocking_execution(client, config, now, episode, champion)
    if blocked_because is not None:
        return _result(False, blocked_because, latest_arn)

    parameters = [{"Name": TRIGGER_REASON_PARAMETER, "Value": reason[:MAX_PARAMETER_LENGTH]}]
    too_early = (
        _nothing_new(champion, config, now) if episode is None else _too_early(episode, config, now)
    )
    if too_early is not None:
        return _result(False, too_early, None)
    model = model_data_url(champion)
    if model is not None:
        parameters.append({"Name": CHAMPION_MODEL_PARAMETER, "Value": model})
    try:
        response = client.start_pipeline_execution(
            PipelineName=config.pipeline_name,
            PipelineExecutionDescription=reason[:MAX_PARAMETER_LENGTH],
            PipelineParameters=parameters,
            ClientRequestToken=request_token(config, now),
        )
    except ClientError as error:
        # A concurrent invocation used the same token with different parameters (another
        # alarm's reason, say): that invocation's run is the one this event asked for.
        if error.response.get("Error", {}).get("Code") == "ConflictException":
            message = error.response["Error"].get("Message", "")
            return _result(False, f"duplicate: {message}", None)
        raise
    return _result(True, reason, response["PipelineExecutionArn"])


def notify_failure(
    event: Mapping[str, Any], *, client: Any, sns: Any, config: RetrainConfig
) -> dict[str, Any]:
    """Tell a person that a training run failed or was stopped, with why: for a candidate the
    gate rejected, the failure reason holds its figures (SageMaker's event does not carry it,
    so the execution is described). The re-check retries while quality stays in ALARM."""
    detail = event.get("detail")
    detail = detail if isinstance(detail, Mapping) else {}
    status = detail.get("currentPipelineExecutionStatus")
    arn = str(detail.get("pipelineExecutionArn", ""))
    pipeline = str(detail.get("pipelineArn", "")).rsplit("/", 1)[-1]
    if status not in ENDED_BADLY or pipeline.lower() != config.pipeline_name.lower():
        return _result(False, f"ignored: {pipeline or 'a pipeline'} execution is {status}", None)
    described = client.describe_pipeline_execution(PipelineExecutionArn=arn)
    why = described.get("FailureReason") or "no reason given"
    message = (
        f"Training run {arn.rsplit('/', 1)[-1]} of {config.pipeline_name} ended {status}.\n"
        f"Why: {why}\nStarted because: {described.get('PipelineExecutionDescription', '')}\n"
        "A retrain started by an alarm is retried by the daily re-check while the model's "
        "quality alarm stays in ALARM, with backoff, up to a cap; look before then if the "
        "reason is not a rejected candidate."
    )
    if not config.alarm_topic_arn:
        return _result(False, f"not notified (no ALARM_TOPIC_ARN): {why}", arn)
    sns.publish(
        TopicArn=config.alarm_topic_arn,
        Subject=f"{config.pipeline_name}: training run {status}"[:100],
        Message=message,
    )
    return _result(False, f"notified: {why}", arn)


def trigger_reason(event: Mapping[str, Any], config: RetrainConfig) -> str | None:
    """`alarm:<name>:<reason>` for one of the model's alarms entering ALARM, `schedule`,
    `recheck`, or None to ignore."""
    if event.get("source") in (SCHEDULE_SOURCE, RECHECK_SOURCE):
        return str(event["source"])
    if event.get("detail-type") != ALARM_STATE_CHANGE:
        return None
    detail = event.get("detail") or {}
    state = detail.get("state") if isinstance(detail, Mapping) else None
    if not isinstance(state, Mapping):
        return None
    name = str(detail.get("alarmName", ""))
    if state.get("value") != "ALARM" or (config.alarm_lags and name not in config.alarm_lags):
        return None
    return f"alarm:{name}:{state.get('reason', '')}"


def alarm_episode(
    cloudwatch: Any, config: RetrainConfig, event: Mapping[str, Any], now: datetime
) -> Episode | None:
    """The model's alarms in ALARM now and the earliest onset among them (an alarm event
    counts as in ALARM since its own time, whatever a lagging describe says)."""
    onsets: dict[str, datetime] = {}
    if event.get("detail-type") == ALARM_STATE_CHANGE:
        name = str((event.get("detail") or {}).get("alarmName", ""))
        onsets[name] = now - timedelta(days=config.alarm_lags.get(name, 0))
    if cloudwatch is not None and config.alarm_lags:
        described = cloudwatch.describe_alarms(
            AlarmNames=sorted(config.alarm_lags), AlarmTypes=["MetricAlarm"]
        )
        for alarm in described.get("MetricAlarms", []):
            if alarm.get("StateValue") != "ALARM":
                continue
            name = alarm["AlarmName"]
            since = _aware(
                alarm.get("StateTransitionedTimestamp") or alarm["StateUpdatedTimestamp"]
            )
            onset = since - timedelta(days=config.alarm_lags.get(name, 0))
            onsets[name] = min(onset, onsets.get(name, onset))
    if not onsets:
        return None
    return Episode(tuple(sorted(onsets)), min(onsets.values()))


def champion_package(client: Any, model_package_group: str) -> dict[str, Any] | None:
    """The latest Approved package, described; None when none is approved."""
    packages = client.list_model_packages(
        ModelPackageGroupName=model_package_group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )["ModelPackageSummaryList"]
    if not packages:
        return None
    return client.describe_model_package(ModelPackageName=packages[0]["ModelPackageArn"])


def model_data_url(package: Mapping[str, Any] | None) -> str | None:
    """A described package's model artifact (S3 URI); None without a package or artifact."""
    containers = ((package or {}).get("InferenceSpecification") or {}).get("Containers") or []
    url = containers[0].get("ModelDataUrl") if containers else None
    return url if isinstance(url, str) and url.startswith("s3://") else None


def newest_labelled_cutoff(now: datetime, config: RetrainConfig) -> date:
    """The newest cut-off whose label window is complete in a run started at `now` (its data
    ends the day before): where the training pipeline anchors its splits."""
    return now.astimezone(UTC).date() - timedelta(days=config.label_horizon_days)


def _too_early(episode: Episode, config: RetrainConfig, now: datetime) -> str | None:
    """Why a run now could not see the change the alarms report, or None."""
    if config.min_new_label_days <= 0:
        return None
    onset = episode.onset.astimezone(UTC).date()
    new_days = (newest_labelled_cutoff(now, config) - onset).days + 1
    if new_days >= config.min_new_label_days:
        return None
    return (
        f"too early: the alarms' onset is {onset.isoformat()}; a run now would train and be "
        f"judged on {max(new_days, 0)} labelled day(s) since (at least "
        f"{config.min_new_label_days} needed to learn the change)"
    )


def labels_through(package: Mapping[str, Any] | None) -> date | None:
    """The last day of behaviour a registered model learnt from; None when the package does not
    say (a package from before the key existed)."""
    raw = ((package or {}).get("CustomerMetadataProperties") or {}).get(LABELS_THROUGH_KEY)
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        return None


def learnt_through(package: Mapping[str, Any] | None, config: RetrainConfig) -> date | None:
    """The newest cut-off a registered model learnt from (its `labels_through` less the rest of
    that cut-off's label window); None when the package does not say."""
    seen = labels_through(package)
    return None if seen is None else seen - timedelta(days=config.label_horizon_days - 1)


def _nothing_new(
    champion: Mapping[str, Any] | None, config: RetrainConfig, now: datetime
) -> str | None:
    """Why a scheduled retrain now could not learn anything the champion does not know."""
    seen = labels_through(champion)
    if seen is None or config.min_new_label_days <= 0:
        return None  # no champion, or one that does not say: no way to tell, so retrain
    new_days = (now.astimezone(UTC).date() - timedelta(days=1) - seen).days
    if new_days >= config.min_new_label_days:
        return None
    return (
        f"too early: the serving model learnt from behaviour up to {seen.isoformat()}; a run "
        f"now would add {max(new_days, 0)} day(s) of labels (at least "
        f"{config.min_new_label_days} needed to learn something new)"
    )


def request_token(config: RetrainConfig, event_time: datetime) -> str:
    """Same pipeline and same cooldown-sized window of event time: same token."""
    window = max(config.cooldown_minutes, 1) * 60
    bucket = int(event_time.timestamp()) // window
    return hashlib.sha256(f"{config.pipeline_name}:{bucket}".encode()).hexdigest()


def _blocking_execution(
    client: Any,
    config: RetrainConfig,
    now: datetime,
    episode: Episode | None,
    champion: Mapping[str, Any] | None = None,
) -> tuple[str | None, str | None]:
    summaries = _recent_executions(client, config.pipeline_name, now)
    for summary in summaries:
        status = summary.get("PipelineExecutionStatus")
        if status in ACTIVE_STATUSES:
            return summary["PipelineExecutionArn"], f"blocked: {status} execution in progress"
    if episode is not None and not (config.retry_alarms & set(episode.alarms)):
        seen = learnt_through(champion, config)
        if seen is not None and seen >= episode.onset.astimezone(UTC).date():
            return None, (
                f"done: the serving model learnt from days up to {seen.isoformat()}, after the "
                f"onset {episode.onset.date().isoformat()} of {','.join(episode.alarms)}; "
                "another run starts only while its quality is below its threshold"
            )
    if not summaries:
        return None, None
    latest = summaries[0]
    started = _aware(latest["StartTime"])
    runs = 0
    if episode is not None:
        runs = sum(1 for s in summaries if _aware(s["StartTime"]) >= episode.onset)
        if runs >= config.max_runs_per_episode:
            return latest["PipelineExecutionArn"], (
                f"cap: {runs} runs since the onset {episode.onset.date().isoformat()} of "
                f"{','.join(episode.alarms)}; no more until a person looks (the runs' failures "
                "were notified)"
            )
    wait = config.cooldown_minutes * 2 ** max(runs - 1, 0)
    if started > now - timedelta(minutes=wait):
        kind = "backoff" if runs > 1 else "cooldown"
        return latest["PipelineExecutionArn"], (
            f"{kind}: last execution started {started.isoformat()}, within {wait} minutes"
        )
    return None, None


def _recent_executions(client: Any, pipeline_name: str, now: datetime) -> list[dict[str, Any]]:
    """Executions of the last ACTIVE_LOOKBACK, newest first (sorted here too: emulators ignore
    SortBy)."""
    pages = client.get_paginator("list_pipeline_executions").paginate(
        PipelineName=pipeline_name,
        CreatedAfter=now - ACTIVE_LOOKBACK,
        SortBy="CreationTime",
        SortOrder="Descending",
    )
    summaries = [s for page in pages for s in page.get("PipelineExecutionSummaries", [])]
    return sorted(summaries, key=lambda s: _aware(s["StartTime"]), reverse=True)


def _aware(moment: datetime) -> datetime:
    """Times without a zone are UTC (botocore parses AWS's with one)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _event_time(event: Mapping[str, Any], now: datetime) -> datetime:
    raw = event.get("time")
    if not raw:
        return now
    try:
        return _aware(datetime.fromisoformat(str(raw).replace("Z", "+00:00")))
    except (TypeError, ValueError):
        return now


def _ignored(event: Mapping[str, Any]) -> str:
    if event.get("detail-type") == ALARM_STATE_CHANGE:
        detail = event.get("detail") or {}
        if not isinstance(detail, Mapping):
            return "ignored: an alarm event without a detail object"
        state = detail.get("state")
        value = state.get("value") if isinstance(state, Mapping) else state
        return (
            f"ignored: alarm {detail.get('alarmName', '')} is {value}, not one of the model's "
            "alarms entering ALARM"
        )
    return "ignored: neither an alarm state change, a re-check nor a scheduled retrain"


def _result(started: bool, reason: str, execution_arn: str | None) -> dict[str, Any]:
    return {"started": started, "reason": reason, "execution_arn": execution_arn}
