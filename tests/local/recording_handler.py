"""A Lambda-style handler that reports what it saw, for the local handler tests."""

from __future__ import annotations

import os
from typing import Any


def handler(event: Any, context: Any) -> dict[str, Any]:
    return {
        "event": event,
        "pipeline": os.environ.get("PIPELINE_NAME"),
        "shadowed": os.environ.get("MLOPS_LOCAL_SHADOWED"),
        "function_name": context.function_name,
        "arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
