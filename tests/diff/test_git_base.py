"""`diff --base REF` in a throwaway clone: the base is planned with its own code, in a worktree
that is removed afterwards, and a one-value change is reported in exactly one place."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE = "diff-base"
GIT_ID = ["-c", "user.name=diff-test", "-c", "user.email=diff-test@example.com"]


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *GIT_ID, *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _diff(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as CI runs it, importing the clone's code rather than this checkout's."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    return subprocess.run(
        [sys.executable, "-m", "infra.diff.command", "diff", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A clone of this checkout's HEAD with that commit as branch `base` (CI checks out a
    detached merge commit, so there may be no local `main` to start from)."""
    repo = tmp_path_factory.mktemp("repo") / "clone"
    subprocess.run(["git", "clone", "--quiet", "--local", str(ROOT), str(repo)], check=True)
    _git(repo, "checkout", "--quiet", "-b", BASE)
    return repo


def _branch(repo: Path, name: str) -> None:
    _git(repo, "checkout", "--quiet", BASE)
    _git(repo, "checkout", "--quiet", "-b", name)


def test_prod_instance_count_change_is_reported_only_in_prod_config(clone):
    _branch(clone, "more-prod-instances")
    stack_file = clone / "stacks" / "Pulumi.prod.yaml"
    text = stack_file.read_text()
    assert text.count("minInstances: 2") == 1
    stack_file.write_text(text.replace("minInstances: 2", "minInstances: 3"))
    _git(clone, "commit", "--quiet", "-am", "prod: three endpoint instances")

    proc = _diff(clone, "--base", BASE, "--all", "--format", "json")

    assert proc.returncode == 0, proc.stderr + proc.stdout
    report = json.loads(proc.stdout)
    stacks = {s["stack"]: s for s in report["stacks"]}
    assert list(stacks) == ["dev", "staging", "prod"]
    assert not stacks["dev"]["hasChanges"] and not stacks["staging"]["hasChanges"]
    prod = stacks["prod"]
    assert [(c["path"], c["old"], c["new"]) for c in prod["config"]] == [
        ("mlops:models[0].minInstances", 2, 3)
    ]
    assert {r["kind"] for r in prod["resources"]} <= {"changed"}
    assert not prod["policy"]["appeared"] and prod["error"] is None
    assert report["summary"].startswith("dev: no changes · staging: no changes · prod: ")
    assert _git(clone, "worktree", "list").count("\n") == 1


def test_the_base_is_planned_with_its_own_code_not_the_working_trees(clone):
    _branch(clone, "probe-tag")
    tagging = clone / "infra" / "components" / "tagging.py"
    tagging.write_text(
        tagging.read_text()
        + "\n\n_tags_for = tags_for\n\n\ndef tags_for(name, *tag_sets):\n"
        + '    return {**_tags_for(name, *tag_sets), "DiffProbe": "head"}\n'
    )
    _git(clone, "commit", "--quiet", "-am", "probe: a tag only the branch's code adds")

    proc = _diff(clone, "--base", BASE, "--stack", "dev", "--format", "json")

    assert proc.returncode == 0, proc.stderr + proc.stdout
    dev = json.loads(proc.stdout)["stacks"][0]
    probes = [c for r in dev["resources"] for c in r["inputs"] if c["path"] == "tags.DiffProbe"]
    assert probes and all(c["old"] is None and c["new"] == "head" for c in probes)
    assert not dev["config"]


def test_an_unknown_base_ref_exits_2_and_leaves_no_worktree(clone):
    proc = _diff(clone, "--base", "no-such-branch", "--stack", "dev")
    assert proc.returncode == 2
    assert "unknown git ref 'no-such-branch'" in proc.stderr
    assert _git(clone, "worktree", "list").count("\n") == 1
