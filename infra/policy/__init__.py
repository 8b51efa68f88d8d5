"""Policy evaluation of `policies/` against an offline plan, with `pulumi preview` semantics."""

from infra.policy.capture_file import load_capture
from infra.policy.config import PolicyConfigError, load_policy_config
from infra.policy.evaluate import evaluate
from infra.policy.report import PolicyReport, Violation, render

__all__ = [
    "PolicyConfigError",
    "PolicyReport",
    "Violation",
    "evaluate",
    "load_capture",
    "load_policy_config",
    "render",
]
