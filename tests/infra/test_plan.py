"""The offline plan: real stacks plan, URNs follow the engine, output is stable and secret-safe."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.plan.engine import urn_for

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "infra.cli"]


def _copy_project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    return tmp_path


def _edit_stack(project: Path, stack: str, **values) -> None:
    path = project / "stacks" / f"Pulumi.{stack}.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"].update(values)
    path.write_text(yaml.safe_dump(doc))


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, check=False)


def test_all_three_stacks_plan(stack_plans):
    assert set(stack_plans) == {"dev", "staging", "prod"}
    for stack, doc in stack_plans.items():
        assert doc["stack"] == stack and doc["project"] == "mlops"
        assert doc["outputs"]["environment"] == stack


def test_nested_urns_carry_the_full_parent_type_chain_without_the_root_stack(stack_plans):
    urns = {r["urn"] for r in stack_plans["dev"]["resources"]}
    assert (
        "urn:pulumi:dev::mlops::mlops:platform:MlPlatform$mlops:data:DataLake"
        "$mlops:storage:SecureBucket$aws:s3/bucket:Bucket::mlops-dev-lake-raw" in urns
    )
    assert (
        "urn:pulumi:dev::mlops::mlops:platform:MlPlatform$mlops:data:DataLake::mlops-dev-lake"
        in urns
    )


def test_urn_rule_matches_the_engine_for_root_children_and_grandchildren():
    stack_urn = "urn:pulumi:dev::p::pulumi:pulumi:Stack::p-dev"
    parent = urn_for("dev", "p", stack_urn, "a:b:C", "c")
    assert parent == "urn:pulumi:dev::p::a:b:C::c"
    child = urn_for("dev", "p", parent, "d:e:F", "f")
    assert urn_for("dev", "p", child, "g:h:I", "i") == "urn:pulumi:dev::p::a:b:C$d:e:F$g:h:I::i"


def test_each_input_records_the_resources_it_came_from(stack_plans):
    resources = {r["name"]: r for r in stack_plans["dev"]["resources"] if r["custom"]}
    policy = resources["mlops-dev-lake-raw-policy"]
    assert policy["propertyDependencies"]["bucket"] == [resources["mlops-dev-lake-raw"]["urn"]]
    assert policy["inputs"]["bucket"] == {"$unknown": True}, "a new bucket's id is unknown"


def test_prod_plan_twice_gives_byte_identical_files(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert _cli("plan", "--stack", "prod", "--json", str(a), "-q").returncode == 0
    assert _cli("plan", "--stack", "prod", "--json", str(b), "-q").returncode == 0
    assert a.read_bytes() == b.read_bytes()


def test_plan_all_prints_every_stack_tree_and_counts():
    proc = _cli("plan", "--all")
    assert proc.returncode == 0, proc.stderr
    for stack in ("dev", "staging", "prod"):
        assert f"✓ {stack}:" in proc.stdout
        assert f"mlops-{stack} (pulumi:pulumi:Stack)" in proc.stdout
    assert "aws:s3/bucket:Bucket" in proc.stdout


def test_a_typo_in_a_stack_value_fails_with_its_message_and_a_non_zero_exit(tmp_path):
    project = _copy_project(tmp_path)
    _edit_stack(project, "staging", **{"mlops:deploymentStrategy": "canery"})
    proc = _cli("plan", "--stack", "staging", "--project-dir", str(project))
    assert proc.returncode == 1
    assert "mlops:deploymentStrategy = 'canery'" in proc.stderr
    assert "'canary', 'linear' or 'all-at-once'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_misspelt_key_is_rejected_with_a_suggestion(tmp_path):
    project = _copy_project(tmp_path)
    _edit_stack(project, "dev", **{"mlops:captureRetentionDay": 3})
    proc = _cli("plan", "--stack", "dev", "--project-dir", str(project))
    assert proc.returncode == 1
    assert "Did you mean 'mlops:captureRetentionDays'?" in proc.stderr


def test_an_unknown_stack_names_the_stacks_found():
    proc = _cli("plan", "--stack", "qa")
    assert proc.returncode == 1 and "stacks found: dev, prod, staging" in proc.stderr


SECRET = "v1:c3VwZXItc2VjcmV0LWNpcGhlcnRleHQ="


def test_secure_values_are_kept_secret_in_output_and_plan_file(tmp_path):
    project = _copy_project(tmp_path)
    _edit_stack(project, "dev", **{"mlops:alertWebhookUrl": {"secure": SECRET}})
    program = project / "stacks" / "__main__.py"
    program.write_text(
        program.read_text()
        + "\npulumi.export('webhook', pulumi.Config().get_secret('alertWebhookUrl'))\n"
    )
    out = tmp_path / "dev.json"
    proc = _cli("plan", "--stack", "dev", "--project-dir", str(project), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert SECRET not in text and SECRET not in proc.stdout and SECRET not in proc.stderr
    assert '"webhook": {\n      "$secret": "sha256:' in text
    assert "[secret]" in proc.stdout


def test_an_invoke_the_plan_cannot_answer_fails_naming_it(tmp_path):
    project = _copy_project(tmp_path)
    (project / "stacks" / "__main__.py").write_text(
        "import pulumi_aws as aws\naws.ec2.get_vpc_output(default=True)\n"
    )
    proc = _cli("plan", "--stack", "dev", "--project-dir", str(project))
    assert proc.returncode == 1
    assert "invoke 'aws:ec2/getVpc:getVpc' cannot be answered offline" in proc.stderr


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_config_reaches_the_program_as_engine_strings(stack_plans, stack):
    config = stack_plans[stack]["config"]
    assert config["mlops:environment"] == stack
    assert config["mlops:models"].startswith("[{")
    assert config["mlops:kmsKeyPerBucket"] in ("true", "false")


def test_plan_evaluates_the_policy_pack_and_prod_has_no_mandatory_violation(stack_plans):
    policy = stack_plans["prod"]["policy"]
    assert policy["pack"] == "mlops-guardrails" and policy["environment"] == "prod"
    assert policy["mandatoryCount"] == 0
    proc = _cli("plan", "--stack", "prod", "-q")
    assert proc.returncode == 0 and "0 mandatory" in proc.stdout


def test_an_insecure_program_fails_the_plan_with_its_violations_and_exit_code():
    fixture = ROOT / "tests" / "fixtures" / "insecure"
    proc = _cli(
        "plan",
        "--stack",
        "dev",
        "--project-dir",
        str(fixture),
        "--policy-pack",
        str(ROOT / "policies"),
        "-q",
    )
    assert proc.returncode == 1
    assert "[mandatory] iam-no-aws-managed-admin-policies" in proc.stdout
    assert "AmazonSageMakerFullAccess" in proc.stdout
    assert "8 mandatory" in proc.stderr
