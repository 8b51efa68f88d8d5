"""The platform as a workload component sees it: `PlatformRefs` with fixed, readable values.

It is what a team's own project builds from the platform stack's outputs, so component tests
run each component alone, exactly as a consumer would.
"""

from __future__ import annotations

from typing import Any

from infra.components.platform_refs import PlatformRefs

ACCOUNT = "123456789012"
REGION = "us-east-1"
PLATFORM_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/platform"
CAPTURE_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/capture"
ARTIFACTS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/artifacts"
CURATED_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/curated"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:mlops-dev-alarms"
DATA_CLASSES = ("raw", "curated", "artifacts", "capture", "reports")
BUCKET_KEYS = {
    **dict.fromkeys(DATA_CLASSES, PLATFORM_KEY),
    "capture": CAPTURE_KEY,
    "artifacts": ARTIFACTS_KEY,
    "curated": CURATED_KEY,
}


def alias_of(key_arn: str) -> str:
    return key_arn.replace(":key/", ":alias/")


def platform_refs(environment: str = "dev", **overrides: Any) -> PlatformRefs:
    prefix = overrides.pop("name_prefix", f"mlops-{environment}")
    names = {c: f"{prefix}-{c}-{ACCOUNT}" for c in DATA_CLASSES}
    fields: dict[str, Any] = {
        "name_prefix": prefix,
        "environment": environment,
        "account_id": ACCOUNT,
        "region": REGION,
        "partition": "aws",
        "kms_key_arn": PLATFORM_KEY,
        "kms_key_alias_arn": alias_of(PLATFORM_KEY),
        "bucket_names": names,
        "bucket_arns": {c: f"arn:aws:s3:::{n}" for c, n in names.items()},
        "bucket_key_arns": BUCKET_KEYS,
        "bucket_key_alias_arns": {c: alias_of(k) for c, k in BUCKET_KEYS.items()},
        "alarm_topic_arn": TOPIC.replace("mlops-dev", prefix),
        "tags": {"Project": "mlops", "Environment": environment, "Owner": "ml-platform"},
    }
    fields.update(overrides)
    return PlatformRefs(**fields)
