"""Start the model's training pipeline when its drift or quality alarm fires, or on schedule.

Alarm storms must start one run, not many (EventBridge delivers at least once, alarms flap,
the drift and quality alarms often fire together). So a run is started only when no execution
of the pipeline is Executing or Stopping and none started within the cooldown; and concurrent
duplicates that both pass that check collapse on a `ClientRequestToken` derived from the
pipeline and the event-time bucket (one bucket per cooldown window).

A retrain learns only from labelled behaviour the champion has not seen: the champion's
package records the last day its labels covered (`labels_through`), and a retrain started on
day E has labels up to the day before. With fewer than `MIN_NEW_LABEL_DAYS` such days, no run
is started: it would train on nearly the champion's own data and could not beat it. Alarms
raised early in a change (drift shows in features days before purchases are labelled) then
leave the champion serving until there is something new to learn; the alarm stays in ALARM and
the next alarm or schedule starts the run.

The new run receives why it was started (`TriggerReason`) and the model it must beat
(`ChampionModelUri`: the latest Approved package's model artifact). The pipeline scores that
champion on the same held-out rows as the new model; with no approved model yet the parameter
is left out and the pipeline's default (no champion) applies.

Configuration comes from the environment: `PIPELINE_NAME`, `MODEL_PACKAGE_GROUP`,
`COOLDOWN_MINUTES` (default 360), `MIN_NEW_LABEL_DAYS` (default 0: no such check).
`AWS_ENDPOINT_URL` points the client at an emulator.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import ClientError

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
SCHEDULE_SOURCE = "schedule"
ACTIVE_STATUSES = frozenset({"Executing", "Stopping"})
TRIGGER_REASON_PARAMETER = "TriggerReason"
CHAMPION_MODEL_PARAMETER = "ChampionModelUri"
DEFAULT_COOLDOWN_MINUTES = 360
ACTIVE_LOOKBACK = timedelta(days=30)
"""Executions older than this are not listed; SageMaker stops pipeline executions long before."""
MAX_PARAMETER_LENGTH = 1024
LABELS_THROUGH_KEY = "labels_through"


@dataclass(frozen=True)
class RetrainConfig:
    pipeline_name: str
    model_package_group: str
    cooldown_minutes: int = DEFAULT_COOLDOWN_MINUTES
    min_new_label_days: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RetrainConfig:
        env = os.environ if env is None else env
        missing = [k for k in ("PIPELINE_NAME", "MODEL_PACKAGE_GROUP") if not env.get(k)]
        if missing:
            raise ValueError(
                f"retrain handler: environment variables {missing} are not set; the "
                "RetrainingTrigger component sets them on the function."
            )
        raw = env.get("COOLDOWN_MINUTES", str(DEFAULT_COOLDOWN_MINUTES))
        try:
            cooldown = int(raw)
        except ValueError:
            raise ValueError(
                f"retrain handler: COOLDOWN_MINUTES='{raw}' is not a whole number of minutes"
            ) from None
        if cooldown < 0:
            raise ValueError(f"retrain handler: COOLDOWN_MINUTES={cooldown} must be 0 or more")
        raw_days = env.get("MIN_NEW_LABEL_DAYS", "0")
        if not raw_days.isdigit():
            raise ValueError(
                f"retrain handler: MIN_NEW_LABEL_DAYS='{raw_days}' is not a whole number of days"
            )
        return cls(env["PIPELINE_NAME"], env["MODEL_PACKAGE_GROUP"], cooldown, int(raw_days))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point."""
    client = boto3.client("sagemaker", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
    return retrain(event, client=client, config=RetrainConfig.from_env())


def retrain(
    event: Mapping[str, Any],
    *,
    client: Any,
    config: RetrainConfig,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Start at most one execution for this event; say why one was or was not started.

    "Now" is the event's time (when the alarm changed state), falling back to the clock: the
    cooldown is about how far apart alarms are, not about delivery delays or replays."""
    now = now or _event_time(event, datetime.now(UTC))
    reason = trigger_reason(event)
    if reason is None:
        return _result(False, _ignored(event), None)

    latest_arn, blocked_because = _blocking_execution(client, config, now)
    if blocked_because is not None:
        return _result(False, blocked_because, latest_arn)

    parameters = [{"Name": TRIGGER_REASON_PARAMETER, "Value": reason[:MAX_PARAMETER_LENGTH]}]
    champion = champion_package(client, config.model_package_group)
    nothing_new = _nothing_new(champion, config, now)
    if nothing_new is not None:
        return _result(False, nothing_new, None)
    model = model_data_url(champion)
    if model is not None:
        parameters.append({"Name": CHAMPION_MODEL_PARAMETER, "Value": model})
    try:
        response = client.start_pipeline_execution(
            PipelineName=config.pipeline_name,
            PipelineExecutionDescription=reason[:MAX_PARAMETER_LENGTH],
            PipelineParameters=parameters,
            ClientRequestToken=request_token(config, _event_time(event, now)),
        )
    except ClientError as error:
        # A concurrent invocation used the same token with different parameters (another
        # alarm's reason, say): that invocation's run is the one this event asked for.
        if error.response.get("Error", {}).get("Code") == "ConflictException":
            message = error.response["Error"].get("Message", "")
            return _result(False, f"duplicate: {message}", None)
        raise
    return _result(True, reason, response["PipelineExecutionArn"])


def trigger_reason(event: Mapping[str, Any]) -> str | None:
    """`alarm:<name>:<reason>` for an alarm entering ALARM, `schedule`, or None to ignore."""
    if event.get("source") == SCHEDULE_SOURCE:
        return SCHEDULE_SOURCE
    if event.get("detail-type") != ALARM_STATE_CHANGE:
        return None
    detail = event.get("detail") or {}
    state = detail.get("state") or {}
    if state.get("value") != "ALARM":
        return None
    return f"alarm:{detail.get('alarmName', '')}:{state.get('reason', '')}"


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


def _nothing_new(
    champion: Mapping[str, Any] | None, config: RetrainConfig, now: datetime
) -> str | None:
    """Why a retrain now could not learn anything the champion does not know, or None."""
    if champion is None or config.min_new_label_days <= 0:
        return None
    raw = (champion.get("CustomerMetadataProperties") or {}).get(LABELS_THROUGH_KEY)
    try:
        seen = date.fromisoformat(str(raw))
    except ValueError:
        return None  # a package from before the key existed: no way to tell, so retrain
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
    client: Any, config: RetrainConfig, now: datetime
) -> tuple[str | None, str | None]:
    summaries = _recent_executions(client, config.pipeline_name, now)
    for summary in summaries:
        status = summary.get("PipelineExecutionStatus")
        if status in ACTIVE_STATUSES:
            return summary["PipelineExecutionArn"], f"blocked: {status} execution in progress"
    if summaries:
        latest = summaries[0]
        started = latest["StartTime"]
        if started > now - timedelta(minutes=config.cooldown_minutes):
            return latest["PipelineExecutionArn"], (
                f"cooldown: last execution started {started.isoformat()}, within "
                f"{config.cooldown_minutes} minutes"
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
    return sorted(summaries, key=lambda s: s["StartTime"], reverse=True)


def _event_time(event: Mapping[str, Any], now: datetime) -> datetime:
    raw = event.get("time")
    if not raw:
        return now
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return now


def _ignored(event: Mapping[str, Any]) -> str:
    if event.get("detail-type") == ALARM_STATE_CHANGE:
        detail = event.get("detail") or {}
        state = (detail.get("state") or {}).get("value")
        return f"ignored: alarm {detail.get('alarmName', '')} is {state}, not ALARM"
    return "ignored: neither an alarm state change nor a scheduled retrain"


def _result(started: bool, reason: str, execution_arn: str | None) -> dict[str, Any]:
    return {"started": started, "reason": reason, "execution_arn": execution_arn}
