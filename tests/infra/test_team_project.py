"""A team's own project reuses the components and reads the platform through a StackReference."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEAM = ROOT / "examples" / "team-project"
REFERENCE = "organization/mlops/dev"


def _plan(project: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "infra.cli",
            "plan",
            "--stack",
            "dev",
            "--project-dir",
            str(project),
            "--json",
            str(out),
            "-q",
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def plans(tmp_path_factory) -> tuple[dict, dict]:
    import json

    folder = tmp_path_factory.mktemp("plans")
    platform, team = folder / "platform.json", folder / "team.json"
    assert _plan(ROOT, platform, "--resolved").returncode == 0
    proc = _plan(
        TEAM,
        team,
        "--stack-reference",
        f"{REFERENCE}={platform}",
        "--policy-pack",
        str(ROOT / "policies"),
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(platform.read_text()), json.loads(team.read_text())


def test_the_team_project_adds_its_whole_loop_on_the_platforms_buckets_and_topic(plans):
    platform, team = plans
    types = {r["type"] for r in team["resources"]}
    assert "mlops:workload:ModelWorkload" in types
    assert "aws:s3/bucket:Bucket" not in types, "the data lake stays the platform's"
    assert team["outputs"]["endpointName"] == "mlops-dev-churn"
    alarms = [r for r in team["resources"] if r["type"] == "aws:cloudwatch/metricAlarm:MetricAlarm"]
    topic = platform["outputs"]["platform"]["alarmTopicArn"]
    assert alarms and all(a["inputs"]["alarmActions"] == [topic] for a in alarms)
    assert team["policy"]["mandatoryCount"] == 0


def test_the_team_project_and_the_platform_share_no_physical_name(plans):
    platform, team = plans

    def names(doc: dict) -> set[str]:
        return {
            r["inputs"]["name"]
            for r in doc["resources"]
            if r["custom"] and isinstance(r["inputs"].get("name"), str)
        }

    assert names(platform).isdisjoint(names(team))


def test_a_stack_reference_the_plan_cannot_read_is_named_with_the_fix(tmp_path):
    proc = _plan(TEAM, tmp_path / "team.json")
    assert proc.returncode == 1
    assert f"StackReference '{REFERENCE}' cannot be read offline" in proc.stderr
    assert "--stack-reference" in proc.stderr
