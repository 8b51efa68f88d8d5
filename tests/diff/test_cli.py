"""`mlops-kit diff A.json B.json` on real plans of the prod stack, and the command's contract."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from infra.diff.command import ordered, register
from infra.diff.compare import compare
from infra.plan.runner import plan_stack

ROOT = Path(__file__).resolve().parents[2]
CIPHERTEXT = "v1:https://hooks.example.com/T0KEN-THAT-MUST-NOT-LEAK"


def _project(where: Path) -> Path:
    where.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", where / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", where / "stacks")
    return where


@pytest.fixture(scope="module")
def prod_plans(tmp_path_factory) -> tuple[Path, Path]:
    """The prod plan as committed, and with a secret webhook and a third endpoint instance."""
    tmp = tmp_path_factory.mktemp("prod-plans")
    before, after = _project(tmp / "before"), _project(tmp / "after")
    stack_file = after / "stacks" / "Pulumi.prod.yaml"
    doc = yaml.safe_load(stack_file.read_text())
    doc["config"]["mlops:alertWebhookUrl"] = {"secure": CIPHERTEXT}
    doc["config"]["mlops:models"][0]["minInstances"] = 3
    stack_file.write_text(yaml.safe_dump(doc))
    files = (tmp / "before.json", tmp / "after.json")
    for project, out in zip((before, after), files, strict=True):
        result = plan_stack(project, "prod", out)
        assert result.ok, result.error
    return files


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test root."""

    register(app)
    return app


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.diff.command", "diff", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("fmt", ["markdown", "json", "terminal"])
def test_secret_config_change_on_a_real_plan_never_prints_the_secret(prod_plans, fmt):
    proc = _run(str(prod_plans[0]), str(prod_plans[1]), "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    assert "T0KEN" not in proc.stdout and "sha256:" not in proc.stdout
    assert "mlops:alertWebhookUrl" in proc.stdout and "[secret changed]" in proc.stdout
    assert "mlops:models[0].minInstances" in proc.stdout


def test_a_new_webhook_subscription_is_added_with_its_endpoint_hidden(prod_plans):
    before, after = (json.loads(p.read_text()) for p in prod_plans)
    diff = compare(before, after)
    added = [r for r in diff.resources if r.kind == "added"]
    assert [r.type for r in added] == ["aws:sns/topicSubscription:TopicSubscription"]
    endpoint = next(c for c in added[0].inputs if c.path == "endpoint")
    assert endpoint.new.keys() == {"$secret"}


def test_renaming_a_components_child_in_a_real_plan_is_a_replacement_needing_aliases(prod_plans):
    before = json.loads(prod_plans[0].read_text())
    child = copy.deepcopy(
        next(
            r
            for r in before["resources"]
            if r["type"] == "aws:s3/bucket:Bucket" and r["name"].endswith("-lake-raw")
        )
    )
    old_name, old_urn = child["name"], child["urn"]
    new_name = old_name.replace("-raw", "-landing")
    new_urn = old_urn.rsplit("::", 1)[0] + "::" + new_name
    renamed = prod_plans[0].read_text().replace(f'"{old_urn}"', f'"{new_urn}"')
    after = json.loads(renamed.replace(f'"{old_name}"', f'"{new_name}"'))
    diff = compare(before, after)
    assert [(r.kind, r.name, r.needs_aliases) for r in diff.resources] == [
        ("replaced", new_name, True)
    ]
    assert any(f'pulumi.Alias(name="{old_name}")' in n for n in diff.resources[0].notes)


def test_renaming_a_whole_component_pairs_every_child_and_adds_nothing(prod_plans):
    before = json.loads(prod_plans[0].read_text())
    after = json.loads(prod_plans[0].read_text().replace("-lake-raw", "-lake-landing"))
    diff = compare(before, after)
    assert {r.kind for r in diff.resources} <= {"replaced", "changed"}
    renamed = [r for r in diff.resources if r.kind == "replaced"]
    assert renamed and all(r.needs_aliases and "-lake-landing" in r.urn for r in renamed)
    assert any(r.type == "mlops:storage:SecureBucket" for r in renamed)
    # Others change only where they name a renamed resource (the key alias in an ARN).
    for changed in (r for r in diff.resources if r.kind == "changed"):
        assert "-lake-raw" not in changed.urn
        assert all("lake-landing" in str(c.new) for c in changed.inputs), changed.urn


def test_exit_code_flag_turns_changes_into_exit_1(prod_plans):
    runner = CliRunner()
    same = runner.invoke(_app(), ["diff", str(prod_plans[0]), str(prod_plans[0]), "--exit-code"])
    changed = runner.invoke(_app(), ["diff", str(prod_plans[0]), str(prod_plans[1])])
    flagged = runner.invoke(
        _app(), ["diff", str(prod_plans[0]), str(prod_plans[1]), "--exit-code", "--format", "json"]
    )
    assert (same.exit_code, changed.exit_code, flagged.exit_code) == (0, 0, 1)
    assert json.loads(flagged.stdout)["stacks"][0]["hasChanges"] is True


def test_out_writes_the_report_to_a_file(prod_plans, tmp_path):
    target = tmp_path / "diff.md"
    result = CliRunner().invoke(
        _app(),
        [
            "diff",
            str(prod_plans[0]),
            str(prod_plans[1]),
            "--format",
            "markdown",
            "--out",
            str(target),
        ],
    )
    assert result.exit_code == 0 and result.stdout == ""
    assert target.read_text().startswith("prod: ") and "config values changed" in target.read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "--base REF"),
        (["only-one.json"], "two plan files"),
        (["a.json", "b.json", "--base", "main"], "not both"),
        (["a.json", "b.json", "--format", "html"], "--format must be one of"),
        (["missing-a.json", "missing-b.json"], "cannot read plan file"),
    ],
)
def test_wrong_arguments_exit_2_with_a_message(args, message):
    result = CliRunner().invoke(_app(), ["diff", *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_stacks_are_reported_in_promotion_order():
    assert ordered({"prod", "qa", "dev", "staging", "alpha"}) == [
        "dev",
        "staging",
        "prod",
        "alpha",
        "qa",
    ]
