"""ModelRegistry under mocks: who may read the registry, who may approve, and how."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.components.model_registry import ModelRegistry, ModelRegistryArgs
from infra.plan.engine import Capture
from tests.infra.platform import ACCOUNT, platform_refs
from tests.infra.resolved import resolved

GROUP = "aws:sagemaker/modelPackageGroup:ModelPackageGroup"
POLICY = "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy"
CONSUMER = "210987654321"


def _capture(environment: str = "dev", **args: Any) -> Capture:
    platform = platform_refs(environment)
    return resolved(
        lambda: ModelRegistry(
            "recsys-registry", ModelRegistryArgs(platform=platform, model_name="recsys", **args)
        ),
        environment,
    )


def _statements(capture: Capture) -> dict[str, dict[str, Any]]:
    (policy,) = capture.by_type(POLICY)
    return {s["Sid"]: s for s in json.loads(policy.inputs["resourcePolicy"])["Statement"]}


def test_group_is_named_after_the_environment_and_model():
    (group,) = _capture().by_type(GROUP)
    assert group.inputs["modelPackageGroupName"] == "mlops-dev-recsys"


def test_registry_policy_grants_nothing_to_other_accounts_by_default():
    statements = _statements(_capture())
    allows = [s for s in statements.values() if s["Effect"] == "Allow"]
    assert [s["Principal"] for s in allows] == [{"AWS": [f"arn:aws:iam::{ACCOUNT}:root"]}]
    (read,) = allows
    assert read["Resource"] == [
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package-group/mlops-dev-recsys",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/mlops-dev-recsys/*",
    ]
    assert not any(a.startswith("sagemaker:Update") for a in read["Action"])


def test_consumer_accounts_may_read_packages_but_never_change_their_approval():
    statements = _statements(_capture(consumer_account_ids=[CONSUMER]))
    read = statements["ReadersDescribeAndListPackages"]
    assert read["Principal"]["AWS"] == [
        f"arn:aws:iam::{ACCOUNT}:root",
        f"arn:aws:iam::{CONSUMER}:root",
    ]
    assert set(read["Action"]) == {
        "sagemaker:DescribeModelPackageGroup",
        "sagemaker:DescribeModelPackage",
        "sagemaker:ListModelPackages",
    }
    deny = statements["DenyApprovalChangesFromOtherAccounts"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert "sagemaker:UpdateModelPackage" in deny["Action"]
    assert deny["Condition"] == {"StringNotEquals": {"aws:PrincipalAccount": ACCOUNT}}


@pytest.mark.parametrize(
    ("environment", "mode"), [("dev", "automatic"), ("staging", "automatic"), ("prod", "manual")]
)
def test_approval_mode_follows_the_environment_and_is_recorded_as_a_tag(environment, mode):
    modes: list[str] = []

    def program() -> None:
        registry = ModelRegistry(
            "recsys-registry",
            ModelRegistryArgs(platform=platform_refs(environment), model_name="recsys"),
        )
        modes.append(registry.approval_mode)

    capture = resolved(program, environment)
    (group,) = capture.by_type(GROUP)
    assert modes == [mode]
    assert group.inputs["tags"]["ApprovalMode"] == mode
    assert group.inputs["tags"]["Name"] == "recsys-registry-group"
    assert group.inputs["tags"]["Environment"] == environment


def test_automatic_approval_in_prod_needs_the_explicit_opt_out():
    with pytest.raises(ValueError, match="allow_automatic_approval_in_prod=True"):
        _capture("prod", approval_mode="automatic")
    (group,) = _capture(
        "prod", approval_mode="automatic", allow_automatic_approval_in_prod=True
    ).by_type(GROUP)
    assert group.inputs["tags"]["ApprovalMode"] == "automatic"


def test_a_consumer_account_id_that_is_not_twelve_digits_is_rejected():
    with pytest.raises(ValueError, match="'12345' is not a 12-digit AWS account id"):
        _capture(consumer_account_ids=["12345"])


def test_a_protected_group_survives_stack_deletion_with_its_approval_history():
    (group,) = _capture("prod", protect=True).by_type(GROUP)
    assert group.options["protect"] and group.options["retainOnDelete"]
    (dev_group,) = _capture().by_type(GROUP)
    assert not dev_group.options["protect"], "dev stays easy to tear down"
