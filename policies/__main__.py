"""The mlops-kit policy pack, as `pulumi preview --policy-pack policies` loads it.

Constructing `PolicyPack` serves the analyzer over gRPC, so this module must do nothing else:
the in-process evaluator (`infra.policy`) imports it with serving replaced by a capture.
"""

from mlops_guardrails import PACK_NAME, POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=EnforcementLevel.ADVISORY)
