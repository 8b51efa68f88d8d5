"""The three report forms: the PR comment's layout, JSON for tools, and no secret in any of them."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from infra.diff import markdown, report_json, terminal
from infra.diff.compare import StackDiff, compare
from tests.diff.plans import OTHER_SECRET_HASH, SECRET_HASH, bucket, plan, platform, resource

CLEAR_SECRET = "hunter2-webhook-token"


def _stacks() -> list[StackDiff]:
    root = platform()
    dev = compare(plan(root, stack="dev"), plan(root, stack="dev"))
    staging_before = plan(root, bucket(root), stack="staging")
    staging_after = plan(root, bucket(root, protect=True), stack="staging")
    prod_before = plan(
        root, bucket(root), resource("aws:iam/role:Role", "r", {"name": "a"}, parent=root)
    )
    prod_after = plan(
        root,
        bucket(root, protect=True),
        resource("aws:iam/role:Role", "r", {"name": "b"}, parent=root),
    )
    return [dev, compare(staging_before, staging_after), compare(prod_before, prod_after)]


def _secret_stack() -> StackDiff:
    root = platform()
    before = plan(
        root,
        resource(
            "aws:lambda/function:Function",
            "hook",
            {"environment": {"variables": {"URL": {"$secret": SECRET_HASH}}}},
            parent=root,
        ),
        config={"mlops:alertWebhookUrl": {"$secret": SECRET_HASH}},
    )
    after = plan(
        root,
        resource(
            "aws:lambda/function:Function",
            "hook",
            {"environment": {"variables": {"URL": {"$secret": OTHER_SECRET_HASH}}}},
            parent=root,
        ),
        resource(
            "aws:lambda/function:Function",
            "hook2",
            {"environment": {"variables": {"URL": {"$secret": SECRET_HASH}}}},
            parent=root,
        ),
        config={"mlops:alertWebhookUrl": {"$secret": OTHER_SECRET_HASH}},
        outputs={"token": {"$secret": SECRET_HASH}},
    )
    return compare(before, after)


def _terminal(diffs: list[StackDiff]) -> str:
    buffer = io.StringIO()
    terminal.render(diffs, Console(file=buffer, width=200, color_system=None))
    return buffer.getvalue()


def test_markdown_starts_with_the_one_line_summary_then_a_section_per_stack():
    text = markdown.render(_stacks())
    first = text.splitlines()[0]
    assert first == "dev: no changes · staging: 1 changed · prod: 1 changed, 1 replaced"
    assert text.count("<details") == 3 and text.count("</details>") == 3
    assert "<summary><b>prod</b>: 1 changed, 1 replaced</summary>" in text
    assert "<details open><summary><b>prod</b>" in text
    assert "<details><summary><b>dev</b>" in text


def test_markdown_puts_values_in_code_spans_so_markers_are_not_html():
    text = markdown.render(
        [compare(plan(platform()), plan(platform(), outputs={"arn": {"$unknown": True}}))]
    )
    assert "`arn`: `(none) → <computed>`" in text


def test_markdown_stays_under_the_github_comment_limit():
    root = platform()
    many = [bucket(root, f"mlops-prod-b{i:04d}") for i in range(1500)]
    text = markdown.render([compare(plan(root), plan(root, *many))])
    assert len(text) <= markdown.GITHUB_COMMENT_LIMIT
    assert text.startswith("prod: 1500 added")


def test_json_report_is_parseable_and_names_each_change():
    report = json.loads(report_json.render(_stacks()))
    prod = report["stacks"][2]
    assert prod["summary"] == "1 changed, 1 replaced"
    replaced = next(r for r in prod["resources"] if r["kind"] == "replaced")
    assert replaced["replaceReasons"] == ["name"]
    assert replaced["inputs"] == [{"path": "name", "old": "a", "new": "b", "summary": '"a" → "b"'}]
    assert report["stacks"][0]["hasChanges"] is False


def test_terminal_shows_the_summary_and_escapes_markers():
    text = _terminal([_secret_stack()])
    assert "[secret changed]" in text
    assert "hook2" in text


@pytest.mark.parametrize("form", ["markdown", "json", "terminal"])
def test_secrets_never_appear_in_any_form(form):
    diffs = [_secret_stack()]
    text = {
        "markdown": lambda: markdown.render(diffs),
        "json": lambda: report_json.render(diffs),
        "terminal": lambda: _terminal(diffs),
    }[form]()
    assert SECRET_HASH not in text and OTHER_SECRET_HASH not in text
    assert "sha256:" not in text and CLEAR_SECRET not in text
    assert "secret" in text
