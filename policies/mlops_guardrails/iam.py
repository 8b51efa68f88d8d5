"""IAM guardrails. They read IAM policy documents only: KMS key policies legitimately grant
`kms:*` on `*` to the account root and are not IAM identity policies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs

from mlops_guardrails.framework import (
    MANDATORY,
    as_list,
    dig,
    has,
    parse_json,
    resource_policy,
)

ROLE = "aws:iam/role:Role"
POLICY_DOCUMENT_TYPES = {
    "aws:iam/policy:Policy": "policy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}
ATTACHMENT_TYPES = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
)
DEFAULT_FORBIDDEN_MANAGED = r"^arn:aws[a-z-]*:iam::aws:policy/(?:.*FullAccess|AdministratorAccess)$"
DEFAULT_SERVICES = [
    "sagemaker.amazonaws.com",
    "lambda.amazonaws.com",
    "events.amazonaws.com",
    "scheduler.amazonaws.com",
    "states.amazonaws.com",
]


def policy_documents(args: ResourceValidationArgs) -> Iterator[tuple[str, Any]]:
    """(label, parsed document) of every IAM identity policy the resource declares."""
    prop = POLICY_DOCUMENT_TYPES.get(args.resource_type)
    if prop is not None:
        yield prop, parse_json(args.props[prop])
    if args.resource_type == ROLE:
        for index, inline in enumerate(as_list(dig(args.props, "inlinePolicies"))):
            label = f"inlinePolicies[{index}] ({dig(inline, 'name') or 'unnamed'})"
            yield label, parse_json(inline["policy"])


def allow_statements(document: Any) -> Iterator[dict[str, Any]]:
    for statement in as_list(dig(document, "Statement")):
        if isinstance(statement, dict) and statement.get("Effect") == "Allow":
            yield statement


def _check_admin(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for label, document in policy_documents(args):
        for statement in allow_statements(document):
            actions = as_list(statement.get("Action"))
            resources = as_list(statement.get("Resource"))
            if any(a in ("*", "*:*") for a in actions) and "*" in resources:
                sid = statement.get("Sid", "(no Sid)")
                report(f"{label}: statement {sid} allows '*' on '*'.")


def _matches_pass_role(action: str) -> bool:
    pattern = re.escape(action.lower()).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(pattern, "iam:passrole") is not None


def _check_pass_role(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for label, document in policy_documents(args):
        for statement in allow_statements(document):
            actions = [a for a in as_list(statement.get("Action")) if isinstance(a, str)]
            if any(_matches_pass_role(a) for a in actions) and "*" in as_list(
                statement.get("Resource")
            ):
                sid = statement.get("Sid", "(no Sid)")
                report(f"{label}: statement {sid} allows iam:PassRole on every role ('*').")


def _check_managed(args: ResourceValidationArgs, report: ReportViolation) -> None:
    pattern = re.compile(
        str(args.get_config().get("forbiddenPolicyArnPattern", DEFAULT_FORBIDDEN_MANAGED))
    )
    if args.resource_type == ROLE:
        arns = as_list(dig(args.props, "managedPolicyArns"))
    else:
        arns = [args.props["policyArn"]] if has(args.props, "policyArn") else []
    for arn in arns:
        if isinstance(arn, str) and pattern.match(arn):
            report(f"Attaches AWS-managed policy '{arn}'.")


def _check_trust(args: ResourceValidationArgs, report: ReportViolation) -> None:
    allowed = set(args.get_config().get("allowedServicePrincipals", DEFAULT_SERVICES))
    document = parse_json(args.props["assumeRolePolicy"])
    if document is None:
        report("assumeRolePolicy is not a JSON policy document.")
        return
    for statement in allow_statements(document):
        principal = statement.get("Principal")
        if not isinstance(principal, dict) or set(principal) != {"Service"}:
            report(f"Trusts principal {principal!r}; only AWS service principals may assume it.")
            continue
        unexpected = sorted(set(as_list(principal["Service"])) - allowed)
        if unexpected:
            report(f"Trusts unexpected service principals: {', '.join(unexpected)}.")


POLICIES = [
    resource_policy(
        "iam-no-wildcard-admin",
        "IAM policies must not allow '*' actions on '*' resources.",
        [*POLICY_DOCUMENT_TYPES, ROLE],
        _check_admin,
        level=MANDATORY,
        remediation="List the actions the role needs on the ARNs it needs them on "
        "(iam_documents.allow with exact actions and resources).",
    ),
    resource_policy(
        "iam-no-aws-managed-admin-policies",
        "Roles must not attach AWS-managed FullAccess or AdministratorAccess policies.",
        [*ATTACHMENT_TYPES, ROLE],
        _check_managed,
        level=MANDATORY,
        remediation="Replace the managed policy (e.g. AmazonSageMakerFullAccess) with a "
        "RolePolicy granting only the actions and resources the role uses.",
        config={
            "forbiddenPolicyArnPattern": {"type": "string", "default": DEFAULT_FORBIDDEN_MANAGED}
        },
    ),
    resource_policy(
        "iam-trust-expected-services",
        "Role trust policies must name only the platform's expected AWS service principals.",
        [ROLE],
        _check_trust,
        level=MANDATORY,
        remediation="Build assumeRolePolicy with iam_documents.service_trust(...) naming only "
        "the service that runs as the role (sagemaker, lambda, events, scheduler, states).",
        config={
            "allowedServicePrincipals": {
                "type": "array",
                "items": {"type": "string"},
                "default": DEFAULT_SERVICES,
            }
        },
    ),
    resource_policy(
        "iam-no-wildcard-pass-role",
        "IAM policies must not allow iam:PassRole on '*'.",
        [*POLICY_DOCUMENT_TYPES, ROLE],
        _check_pass_role,
        level=MANDATORY,
        remediation="Allow iam:PassRole only on the execution role ARNs the caller hands to "
        "SageMaker, with Condition iam:PassedToService.",
    ),
]
