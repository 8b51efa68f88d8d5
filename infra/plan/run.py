"""One stack's plan in its own process: `python -m infra.plan.run --stack dev --out plan.json`.

Exit codes: 0 planned, 2 the program or its config failed (message on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

import pulumi

from infra.plan import document, values
from infra.plan.config import ConfigFileError, load_project, load_stack_config
from infra.plan.engine import Capture, UnmockedInvokeError, capture_program
from infra.policy import PolicyConfigError, evaluate, load_policy_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.plan.run")
    parser.add_argument("--project-dir", type=Path, default=Path.cwd())
    parser.add_argument("--stack", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--policy-pack",
        type=Path,
        default=None,
        help="CrossGuard pack to evaluate (default: <project>/policies)",
    )
    parser.add_argument(
        "--policy-config",
        type=Path,
        default=None,
        help="the file `pulumi preview --policy-pack-config` takes",
    )
    parser.add_argument("--no-policy", action="store_true", help="skip policy evaluation")
    parser.add_argument(
        "--resolved",
        action="store_true",
        help="plan as after an update: ids and ARNs get placeholder values instead of unknowns",
    )
    parser.add_argument(
        "--stack-reference",
        action="append",
        default=[],
        metavar="NAME=PLAN.json",
        help="answer StackReference(NAME) with the outputs of that stack's plan file",
    )
    args = parser.parse_args(argv)
    try:
        project = load_project(args.project_dir.resolve())
        config = load_stack_config(project, args.stack)
        references = dict(_reference(item) for item in args.stack_reference)
        capture = capture_program(
            project, args.stack, config, preview=not args.resolved, stack_outputs=references
        )
        policy = None if args.no_policy else _evaluate(project.root, capture, args)
    except (ConfigFileError, UnmockedInvokeError, pulumi.RunError, PolicyConfigError) as exc:
        print(f"error: stack '{args.stack}': {exc}", file=sys.stderr)
        return 2
    except Exception:  # noqa: BLE001 - a program bug: show the traceback like the language host does
        traceback.print_exc()
        print(f"error: stack '{args.stack}': the program raised an exception", file=sys.stderr)
        return 2
    document.write(document.to_document(capture, policy), args.out)
    return 0


def _reference(item: str) -> tuple[str, dict]:
    name, sep, path = item.partition("=")
    if not sep:
        raise ConfigFileError(f"--stack-reference takes NAME=PLAN.json, got '{item}'")
    return name, values.from_json(document.read(Path(path))["outputs"])


def _evaluate(root: Path, capture: Capture, args: argparse.Namespace) -> dict | None:
    """The pack's verdicts, computed here while secrets are still in memory (the plan file
    only ever holds their hashes)."""
    pack = args.policy_pack or root / "policies"
    if not (pack / "PulumiPolicy.yaml").exists():
        if args.policy_pack is not None:
            raise ConfigFileError(f"{pack} is not a policy pack (no PulumiPolicy.yaml)")
        return None
    config = load_policy_config(args.policy_config) if args.policy_config else None
    return evaluate(capture, pack, config).to_json()


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The SDK's mock monitor leaves per-thread event loops behind whose finalizers fail noisily
    # at interpreter teardown; this process exists for one plan, so it skips the teardown.
    os._exit(code)
