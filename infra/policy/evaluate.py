"""`evaluate`: the verdicts `pulumi preview --policy-pack <dir>` would give on a captured plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pulumi.runtime.proto import analyzer_pb2

from infra.plan import values
from infra.plan.engine import Capture
from infra.policy import analyzer
from infra.policy.config import PolicyConfigError, load_policy_config, normalize_entry, reconcile
from infra.policy.report import UNKNOWN_PREFIX, UNKNOWN_REMEDIATION, PolicyReport, Violation
from infra.policy.resources import engine_resources, stack_urn

ENVIRONMENT_KEY = "mlops:environment"


def stack_environment(capture: Capture) -> str:
    return str(values.unwrap(capture.config.get(ENVIRONMENT_KEY, "dev")))


def default_policy_config(pack_dir: Path, environment: str) -> dict[str, Any]:
    """`<pack>/config.<env>.json`, the file a user passes as `--policy-pack-config`."""
    path = pack_dir / f"config.{environment}.json"
    return load_policy_config(path) if path.exists() else {}


def with_environment(
    user: dict[str, Any], environment: str, policies: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The stack's environment set on every policy that takes one; a config naming another
    environment is refused rather than silently judging prod by dev's rules."""
    result = {name: normalize_entry(name, entry) for name, entry in user.items()}
    for policy in policies:
        if "environment" not in (policy["schema"] or {}):
            continue
        entry = result.setdefault(policy["name"], {})
        given = entry.get("environment", environment)
        if given != environment:
            raise PolicyConfigError(
                f"{policy['name']}: policy config sets environment '{given}' but the stack's "
                f"{ENVIRONMENT_KEY} is '{environment}'; use policies/config.{environment}.json"
            )
        entry["environment"] = environment
    return result


def _stack_config(capture: Capture) -> tuple[dict[str, str], list[str]]:
    config, secret = {}, []
    for key, value in capture.config.items():
        if isinstance(value, values.Secret):
            secret.append(key)
            value = value.value
        config[key] = value if isinstance(value, str) else str(value)
    return config, sorted(secret)


def evaluate(capture: Capture, pack_dir: Path, policy_config: dict | None = None) -> PolicyReport:
    """Run the pack on `capture` with the engine's call sequence and preview semantics.

    `policy_config` is what `--policy-pack-config` would hold; None means the pack's own
    `config.<env>.json` for the stack's environment.
    """
    pack_dir = Path(pack_dir).resolve()
    return analyze_with(analyzer.load_servicer(pack_dir), capture, pack_dir, policy_config)


def analyze_with(
    servicer: Any, capture: Capture, pack_dir: Path, policy_config: dict | None = None
) -> PolicyReport:
    """The engine's call sequence against any analyzer with the servicer's methods (the
    in-process servicer, or a gRPC stub adapted to it)."""
    environment = stack_environment(capture)
    info = servicer.GetAnalyzerInfo(analyzer.EMPTY, None)
    policies = analyzer.policy_infos(info)
    remediation = {p["name"]: p["remediation"] for p in policies}
    user = (
        policy_config if policy_config is not None else default_policy_config(pack_dir, environment)
    )
    config = reconcile(
        policies, analyzer.initial_config(info), with_environment(user, environment, policies)
    )
    servicer.Configure(analyzer.configure_request(config), None)
    stack_config, secret_keys = _stack_config(capture)
    servicer.ConfigureStack(
        analyzer_pb2.AnalyzerStackConfigureRequest(
            stack=capture.stack,
            project=capture.project,
            organization="organization",
            dry_run=True,
            config=stack_config,
            config_secret_keys=secret_keys,
            tags={"pulumi:project": capture.project, "pulumi:runtime": "python"},
        ),
        None,
    )

    def violation(diag: Any, urn: str) -> Violation:
        fix = (
            UNKNOWN_REMEDIATION
            if diag.message.startswith(UNKNOWN_PREFIX)
            else remediation.get(diag.policyName, "")
        )
        return Violation(
            policy_name=diag.policyName,
            enforcement_level=analyzer.LEVEL_NAMES[diag.enforcementLevel],
            urn=urn,
            message=diag.message,
            remediation=fix,
        )

    resources = engine_resources(capture)
    requests = analyzer.Requests(resources)
    found: list[Violation] = []
    for resource in resources:
        response = servicer.Analyze(requests.analyze(resource), None)
        # The engine attributes resource diagnostics to the analyzed resource, whatever URN
        # the policy passed.
        found += [violation(d, resource.urn) for d in response.diagnostics]
    response = servicer.AnalyzeStack(requests.analyze_stack(), None)
    root = stack_urn(capture)
    # Stack diagnostics keep their URN when it names a resource of the stack, else the stack's.
    found += [
        violation(d, d.urn if d.urn in requests.by_urn else root) for d in response.diagnostics
    ]
    return PolicyReport(
        pack=info.name,
        version=info.version,
        stack=capture.stack,
        environment=environment,
        violations=found,
    )
