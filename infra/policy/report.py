"""What a policy run found, in the order and words `pulumi preview` would show them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape

UNKNOWN_PREFIX = "can't run policy"
UNKNOWN_REMEDIATION = (
    "The policy read a value that is only known after the update, so preview could not "
    "evaluate it (the engine reports this as advisory). Make the value known at preview, e.g. "
    "build ARNs from physical names or alias ARNs; `pulumi up` evaluates it on real values."
)


@dataclass(frozen=True)
class Violation:
    policy_name: str
    enforcement_level: str
    urn: str | None
    message: str
    remediation: str

    @property
    def unknown_at_preview(self) -> bool:
        return self.message.startswith(UNKNOWN_PREFIX)


@dataclass
class PolicyReport:
    pack: str
    version: str
    stack: str
    environment: str
    violations: list[Violation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.violations.sort(
            key=lambda v: (v.urn or "", v.policy_name, v.enforcement_level, v.message)
        )

    @property
    def mandatory_count(self) -> int:
        return sum(1 for v in self.violations if v.enforcement_level == "mandatory")

    @property
    def advisory_count(self) -> int:
        return sum(1 for v in self.violations if v.enforcement_level == "advisory")

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> PolicyReport:
        """Read back what `to_json` wrote (a plan file's `policy` section)."""
        return cls(
            pack=doc["pack"],
            version=doc["version"],
            stack=doc["stack"],
            environment=doc["environment"],
            violations=[
                Violation(
                    v["policyName"], v["enforcementLevel"], v["urn"], v["message"], v["remediation"]
                )
                for v in doc["violations"]
            ],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "pack": self.pack,
            "version": self.version,
            "stack": self.stack,
            "environment": self.environment,
            "mandatoryCount": self.mandatory_count,
            "advisoryCount": self.advisory_count,
            "violations": [
                {_camel(k): v for k, v in asdict(violation).items()}
                for violation in self.violations
            ],
        }


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


LEVEL_STYLE = {"mandatory": "bold red", "remediate": "bold red", "advisory": "yellow"}


def render(report: PolicyReport, console: Console) -> None:
    """Each violation with its URN, rule, enforcement, message and remediation."""
    title = (
        f"Policy pack {report.pack}@v{report.version} on stack {report.stack} "
        f"({report.environment})"
    )
    console.print(f"[bold]{escape(title)}[/bold]")
    if not report.violations:
        console.print("  no violations")
        return
    for v in report.violations:
        style = LEVEL_STYLE.get(v.enforcement_level, "")
        console.print(f"  [{style}]\\[{v.enforcement_level}][/{style}] {escape(v.policy_name)}")
        console.print(f"    urn: {escape(v.urn or '(stack)')}")
        for line in v.message.splitlines():
            console.print(f"    {escape(line)}")
        console.print(f"    fix: {escape(v.remediation)}", style="dim")
    console.print(
        f"  {report.mandatory_count} mandatory, {report.advisory_count} advisory violation(s)"
    )
