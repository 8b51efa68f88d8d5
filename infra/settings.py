"""Typed, validated stack settings.

The program reads `pulumi.Config` once, here. A wrong or missing value stops it before any
resource is registered, with one message naming the key, the value received and what is allowed.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, Literal

import pulumi
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

Environment = Literal["dev", "staging", "prod"]
INSTANCE_TYPE_PATTERN = r"^ml\.[a-z][a-z0-9]*\.(medium|large|[0-9]*xlarge)$"
CLOUDWATCH_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
SCHEDULE_PATTERN = r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))$"


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
DAY_SECONDS = 86400


def rate_parts(expression: str) -> tuple[int, str, int] | None:
    """(count, unit as written, seconds between runs) of a `rate(N unit)` expression; None
    for any other (cron)."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    count, unit = int(match[1]), match[2]
    return count, unit, count * _UNIT_SECONDS[unit.rstrip("s")]


def schedule_period_seconds(expression: str) -> int:
    """Seconds between runs of a `rate(...)` schedule; a `cron(...)` one is taken as daily.

    Alarms on what a schedule publishes evaluate one datapoint per run, so their period is the
    schedule's."""
    parts = rate_parts(expression)
    return DAY_SECONDS if parts is None else parts[2]


class SettingsError(pulumi.RunError):
    """Bad stack configuration; raised before any resource exists."""


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class ModelSettings(_Model):
    """One team's model: what it trains on, how it serves, when it alarms."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,23}$")
    team: str = Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")
    training_instance_type: str = Field(default="ml.m5.large", pattern=INSTANCE_TYPE_PATTERN)
    training_instance_count: int = Field(default=1, ge=1, le=20)
    processing_instance_type: str = Field(default="ml.m5.large", pattern=INSTANCE_TYPE_PATTERN)
    training_max_runtime_seconds: int = Field(default=3600, ge=300, le=432000)
    endpoint_instance_type: str = Field(default="ml.m5.large", pattern=INSTANCE_TYPE_PATTERN)
    min_instances: int = Field(default=1, ge=1, le=100)
    max_instances: int = Field(default=2, ge=1, le=100)
    target_invocations_per_instance: int = Field(default=200, ge=1, le=100000)
    drift_threshold: float = Field(default=0.2, gt=0, le=10)
    quality_floor: float = Field(default=0.2, ge=0, le=1)
    quality_metric: Literal["ndcg_at_10", "auc", "precision_at_10"] = "ndcg_at_10"
    latency_p99_ms: int = Field(default=500, ge=1, le=60000)
    error_5xx_threshold: int = Field(default=5, ge=1)
    missing_invocations_minutes: int = Field(default=60, ge=5, le=1440)
    quality_alarm_threshold: float = Field(default=2.0, gt=0, le=10)
    """Standard errors by which live NDCG@10 may fall short of the serving model's held-out
    NDCG@10 (less 5%) before a monitoring period breaches (`quality_shortfall_z`): the alarm
    follows whichever model serves, while `quality_floor` gates approval."""
    quality_alarm_periods: int = Field(default=3, ge=1, le=30)
    """Monitoring periods in a row above the threshold before the quality alarm fires: one bad
    period of a small labelled sample is noise, several are a trend."""

    @model_validator(mode="after")
    def _instances_ordered(self) -> ModelSettings:
        if self.max_instances < self.min_instances:
            raise ValueError(
                f"maxInstances ({self.max_instances}) must be at least minInstances "
                f"({self.min_instances})"
            )
        return self


class PlatformSettings(_Model):
    """Everything the program needs to know about one stack."""

    project: str
    stack: str
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    environment: Environment = "dev"
    kms_key_per_bucket: bool = False
    protect_resources: bool = False
    raw_data_cold_storage_days: int = Field(default=30, ge=1, le=3650)
    capture_retention_days: int = Field(default=30, ge=1, le=3650)
    report_retention_days: int = Field(default=90, ge=1, le=3650)
    noncurrent_version_retention_days: int = Field(default=90, ge=1, le=3650)
    abort_incomplete_upload_days: int = Field(default=7, ge=1, le=365)
    access_log_retention_days: int = Field(default=365, ge=1, le=3650)
    log_retention_days: int = 30
    approval_mode: Literal["automatic", "manual"] = "automatic"
    capture_sampling_percent: int = Field(default=100, ge=1, le=100)
    deployment_strategy: Literal["canary", "linear", "all-at-once"] = "canary"
    monitoring_schedule: str = Field(default="rate(1 day)", pattern=SCHEDULE_PATTERN)
    retrain_schedule: str = Field(default="rate(7 days)", pattern=r"^$|" + SCHEDULE_PATTERN[1:])
    retrain_cooldown_minutes: int = Field(default=360, ge=0, le=10080)
    retrain_min_new_label_days: int = Field(default=1, ge=0, le=365)
    notification_emails: tuple[str, ...] = ()
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    owner: str = Field(default="ml-platform", min_length=1)
    cost_center: str = Field(default="ml", min_length=1)
    models: tuple[ModelSettings, ...] = Field(min_length=1)

    @field_validator("log_retention_days")
    @classmethod
    def _log_retention(cls, days: int) -> int:
        if days not in CLOUDWATCH_RETENTION_DAYS:
            allowed = ", ".join(map(str, CLOUDWATCH_RETENTION_DAYS))
            raise ValueError(f"CloudWatch Logs keeps logs for one of {allowed} days")
        return days

    @field_validator("notification_emails")
    @classmethod
    def _emails(cls, emails: tuple[str, ...]) -> tuple[str, ...]:
        for email in emails:
            if "@" not in email:
                raise ValueError(f"'{email}' is not an email address")
        return emails

    @model_validator(mode="after")
    def _environment_rules(self) -> PlatformSettings:
        names = [m.name for m in self.models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"models: names must be unique, '{duplicates[0]}' appears twice")
        if self.subnet_ids and not self.security_group_ids:
            raise ValueError("subnetIds is set, so securityGroupIds must name at least one group")
        if self.environment == "prod":
            for i, model in enumerate(self.models):
                if model.min_instances < 2:
                    raise ValueError(
                        f"models[{i}].minInstances is {model.min_instances}: prod endpoints keep "
                        "at least 2 instances across availability zones; set it to 2 or more"
                    )
        return self

    @property
    def name_prefix(self) -> str:
        """Physical-name prefix: project and environment, so stacks never collide in one account."""
        return f"{self.project}-{self.environment}"

    @property
    def protect(self) -> bool:
        return self.protect_resources or self.environment == "prod"

    @property
    def tags(self) -> dict[str, str]:
        return {
            "Project": self.project,
            "Environment": self.environment,
            "Owner": self.owner,
            "CostCenter": self.cost_center,
            "ManagedBy": "pulumi",
        }


_KEYS = {name: field.alias or name for name, field in PlatformSettings.model_fields.items()}
_PROGRAM_FIELDS = {"project", "stack", "region"}


def _describe(error: dict[str, Any], namespace: str) -> str:
    loc = [str(p) for p in error["loc"]]
    if error["type"] == "value_error" and not loc:
        return str(error["msg"]).removeprefix("Value error, ")
    top = loc[0] if loc else ""
    path = top + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc[1:])
    key = f"{namespace}:{path}" if top not in ("region",) else "aws:region"
    received = error.get("input", "<missing>")
    if isinstance(received, (dict, list)):
        received = json.dumps(received)
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{key} = '{received}' is not allowed: {message}"


def from_mapping(
    project: str, stack: str, region: str | None, raw: dict[str, Any]
) -> PlatformSettings:
    """Validate raw config values (engine strings or already-parsed objects)."""
    data: dict[str, Any] = {"project": project, "stack": stack, "region": region or "", **raw}
    try:
        return PlatformSettings.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(e, project) for e in exc.errors(include_url=False)]
        hint = (
            f"Fix it in stacks/Pulumi.{stack}.yaml (or `pulumi config set --path "
            f"{project}:<key> <value> --stack {stack}`); every key is described in Pulumi.yaml."
        )
        raise SettingsError(
            "invalid stack configuration:\n  " + "\n  ".join(lines) + "\n" + hint
        ) from None


def load() -> PlatformSettings:
    """Read the current stack's config through `pulumi.Config`."""
    project, stack = pulumi.get_project(), pulumi.get_stack()
    config = pulumi.Config()
    raw: dict[str, Any] = {}
    for field_name, key in _KEYS.items():
        if field_name in _PROGRAM_FIELDS:
            continue
        value = config.get(key)
        if value is None:
            continue
        raw[key] = _parse(value)
    _reject_unknown_keys(project, stack)
    region = pulumi.Config("aws").get("region")
    if not region:
        raise SettingsError(
            f"aws:region is not set for stack '{stack}': add `aws:region: us-east-1` (or your "
            f"region) to stacks/Pulumi.{stack}.yaml"
        )
    return from_mapping(project, stack, region, raw)


def _parse(value: str) -> Any:
    """Engine strings: JSON for objects and lists, text otherwise (pydantic coerces numbers)."""
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _reject_unknown_keys(project: str, stack: str) -> None:
    from pulumi.runtime.config import CONFIG

    known = set(_KEYS.values()) | {"alertWebhookUrl"}
    for full_key in sorted(CONFIG.get()):
        namespace, _, key = full_key.partition(":")
        if namespace != project or key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f" Did you mean '{project}:{close[0]}'?" if close else ""
        raise SettingsError(
            f"{full_key} is not a setting of this project (stack '{stack}').{hint} "
            "Every key is declared in Pulumi.yaml."
        )
