"""The diff of hand-made plan pairs: one kind of change per test, read as a reviewer would."""

from __future__ import annotations

import copy

from infra.diff.compare import compare
from infra.diff.paths import describe
from tests.diff.plans import (
    OTHER_SECRET_HASH,
    SECRET_HASH,
    bucket,
    plan,
    platform,
    resource,
    sse,
    violation,
)

ROLE = "aws:iam/role:Role"
FEATURE_GROUP = "aws:sagemaker/featureGroup:FeatureGroup"


def _only(diff, kind=None):
    assert len(diff.resources) == 1, [(r.kind, r.urn) for r in diff.resources]
    change = diff.resources[0]
    if kind:
        assert change.kind == kind, (change.kind, change.notes)
    return change


def _paths(change):
    return {c.path: describe(c) for c in change.inputs}


def test_identical_plans_have_no_changes():
    root = platform()
    doc = plan(root, bucket(root))
    diff = compare(doc, copy.deepcopy(doc))
    assert not diff.has_changes
    assert diff.summary() == "no changes"


def test_added_resource_is_listed_with_its_inputs():
    root = platform()
    diff = compare(plan(root), plan(root, bucket(root)))
    change = _only(diff, "added")
    assert change.name == "mlops-prod-raw"
    assert _paths(change)["bucket"] == '(none) → "mlops-prod-raw-123456789012"'
    assert diff.summary() == "1 added"


def test_removed_protected_resource_warns_that_the_update_will_fail():
    root = platform()
    diff = compare(plan(root, bucket(root, protect=True, retainOnDelete=True)), plan(root))
    change = _only(diff, "removed")
    assert any("protected" in n for n in change.notes)
    assert any("kept in AWS" in n for n in change.notes)


def test_sse_key_change_names_the_nested_path_and_says_only_new_objects_are_re_encrypted():
    root = platform()
    diff = compare(plan(root, sse(root, "alias/old")), plan(root, sse(root, "alias/new")))
    change = _only(diff, "changed")
    path = "rules[0].applyServerSideEncryptionByDefault.kmsMasterKeyId"
    assert _paths(change) == {path: '"alias/old" → "alias/new"'}
    assert not change.replace_reasons
    assert any("re-encrypts new objects only" in n for n in change.notes)


def test_secret_input_change_is_reported_without_value_or_hash():
    root = platform()
    before = resource(
        "aws:lambda/function:Function", "hook", {"env": {"$secret": SECRET_HASH}}, parent=root
    )
    after = resource(
        "aws:lambda/function:Function", "hook", {"env": {"$secret": OTHER_SECRET_HASH}}, parent=root
    )
    change = _only(compare(plan(root, before), plan(root, after)), "changed")
    assert _paths(change) == {"env": "[secret changed]"}
    assert not compare(plan(root, before), plan(root, copy.deepcopy(before))).has_changes


def test_value_becoming_unknown_is_shown_as_computed():
    root = platform()
    diff = compare(plan(root, sse(root, "alias/k")), plan(root, sse(root, {"$unknown": True})))
    change = _only(diff, "changed")
    assert list(_paths(change).values()) == ['"alias/k" → <computed>']


def test_option_changes_are_listed_and_unprotecting_is_called_out():
    root = platform()
    dep = "urn:pulumi:prod::mlops::aws:kms/key:Key::k"
    before = bucket(root, protect=True, retainOnDelete=True)
    after = bucket(
        root, protect=False, retainOnDelete=False, dependsOn=[dep], ignoreChanges=["tags"]
    )
    change = _only(compare(plan(root, before), plan(root, after)), "changed")
    assert {c.path for c in change.options} == {
        "protect",
        "retainOnDelete",
        "dependsOn",
        "ignoreChanges",
    }
    assert {describe(c) for c in change.options if c.path == "protect"} == {"true → false"}
    assert any("protect removed" in n for n in change.notes)
    assert not change.inputs


def test_reparented_resource_is_a_move_that_needs_aliases():
    old_parent = resource("mlops:data:DataLake", "mlops-prod-data", custom=False)
    new_parent = resource("mlops:data:Lake", "mlops-prod-data", custom=False)
    diff = compare(plan(old_parent, bucket(old_parent)), plan(new_parent, bucket(new_parent)))
    moved = {r.name: r for r in diff.resources if r.kind == "moved"}
    assert set(moved) == {"mlops-prod-raw"}
    change = moved["mlops-prod-raw"]
    assert change.needs_aliases and change.old_urn == bucket(old_parent)["urn"]
    assert any("aliases" in n and change.old_urn in n for n in change.notes)


def test_move_covered_by_an_alias_needs_nothing():
    old_parent = resource("mlops:data:DataLake", "mlops-prod-data", custom=False)
    new_parent = resource("mlops:data:Lake", "mlops-prod-data", custom=False)
    old = bucket(old_parent)
    new = bucket(new_parent, aliases=[old["urn"]])
    diff = compare(plan(old), plan(new))
    change = _only(diff, "moved")
    assert not change.needs_aliases
    assert "need aliases" not in diff.summary()


def test_renamed_child_is_a_replacement_with_the_aliases_hint():
    root = platform()
    diff = compare(
        plan(root, bucket(root, "mlops-prod-raw")), plan(root, bucket(root, "mlops-prod-landing"))
    )
    change = _only(diff, "replaced")
    assert change.name == "mlops-prod-landing" and change.needs_aliases
    assert "bucket" in change.replace_reasons
    assert any("renamed from 'mlops-prod-raw'" in n and "aliases" in n for n in change.notes)
    assert diff.summary() == "1 replaced, 1 needs aliases"


def test_unrelated_resources_of_one_type_are_not_taken_for_a_rename():
    root = platform()
    old = resource(
        ROLE,
        "trainer",
        {"name": "trainer", "assumeRolePolicy": "{}", "maxSessionDuration": 3600},
        parent=root,
    )
    new = resource(
        ROLE,
        "scorer",
        {"name": "scorer-role", "assumeRolePolicy": '{"a": 1}', "maxSessionDuration": 7200},
        parent=root,
    )
    kinds = sorted(r.kind for r in compare(plan(root, old), plan(root, new)).resources)
    assert kinds == ["added", "removed"]


def test_replace_forcing_inputs_are_called_out():
    root = platform()
    before = resource(
        FEATURE_GROUP,
        "fg",
        {"featureDefinitions": [{"featureName": "a"}], "description": "x", "tags": {"A": "1"}},
        parent=root,
    )
    after = resource(
        FEATURE_GROUP,
        "fg",
        {"featureDefinitions": [{"featureName": "b"}], "description": "x", "tags": {"A": "2"}},
        parent=root,
    )
    change = _only(compare(plan(root, before), plan(root, after)), "replaced")
    assert change.replace_reasons == ["featureDefinitions[0].featureName"]
    role_before = resource(ROLE, "r", {"name": "a"}, parent=root)
    role_after = resource(ROLE, "r", {"name": "b"}, parent=root)
    assert _only(compare(plan(root, role_before), plan(root, role_after))).kind == "replaced"


def test_a_resources_own_replace_on_changes_option_is_honoured():
    root = platform()
    before = resource("mlops:x:Custom", "c", {"size": 1}, parent=root, replaceOnChanges=["size"])
    after = resource("mlops:x:Custom", "c", {"size": 2}, parent=root, replaceOnChanges=["size"])
    assert _only(compare(plan(root, before), plan(root, after))).replace_reasons == ["size"]


def test_policy_verdicts_that_appear_and_disappear():
    root = platform()
    raw = bucket(root)
    old = {"violations": [violation("s3-versioning", raw, "Buckets must be versioned")]}
    new = {"violations": [violation("s3-encryption-cmk", raw, "Use the platform key")]}
    diff = compare(plan(root, raw, policy=old), plan(root, raw, policy=new))
    assert [v["policyName"] for v in diff.policy_appeared] == ["s3-encryption-cmk"]
    assert [v["policyName"] for v in diff.policy_resolved] == ["s3-versioning"]
    assert (
        diff.summary() == "1 new policy violation, 1 of them mandatory, 1 policy violation resolved"
    )


def test_plans_without_policy_verdicts_compare_cleanly():
    root = platform()
    assert not compare(plan(root), plan(root)).policy_appeared


def test_export_and_config_changes_show_paths_inside_json_strings():
    before = plan(
        config={"mlops:models": '[{"name":"rec","minInstances":2}]'},
        outputs={"bucketNames": {"raw": "a"}, "kmsKeyArn": {"$unknown": True}},
    )
    after = plan(
        config={"mlops:models": '[{"name":"rec","minInstances":3}]'},
        outputs={"bucketNames": {"raw": "b"}, "kmsKeyArn": {"$unknown": True}},
    )
    diff = compare(before, after)
    assert [(c.path, describe(c)) for c in diff.config] == [
        ("mlops:models[0].minInstances", "2 → 3")
    ]
    assert [(c.path, describe(c)) for c in diff.outputs] == [("bucketNames.raw", '"a" → "b"')]
    assert diff.summary() == "1 output changed, 1 config value changed"


def test_iam_policy_document_change_points_at_the_statement():
    root = platform()
    before = resource(
        "aws:iam/rolePolicy:RolePolicy",
        "p",
        {"policy": '{"Statement": [{"Effect": "Allow", "Action": "s3:GetObject"}]}'},
        parent=root,
    )
    after = resource(
        "aws:iam/rolePolicy:RolePolicy",
        "p",
        {"policy": '{"Statement": [{"Effect": "Allow", "Action": "s3:*"}]}'},
        parent=root,
    )
    change = _only(compare(plan(root, before), plan(root, after)), "changed")
    assert _paths(change) == {"policy.Statement[0].Action": '"s3:GetObject" → "s3:*"'}
