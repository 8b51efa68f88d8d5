"""The mlops-kit guardrails, one module per domain; `POLICIES` is what the pack serves."""

from mlops_guardrails import cost, iam, monitoring, sagemaker, stack_rules, storage, tagging

PACK_NAME = "mlops-guardrails"

POLICIES = [
    *storage.POLICIES,
    *iam.POLICIES,
    *sagemaker.POLICIES,
    *monitoring.POLICIES,
    *tagging.POLICIES,
    *cost.POLICIES,
    *stack_rules.POLICIES,
]
