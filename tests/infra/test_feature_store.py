"""FeatureStore under mocks: one test per guarantee the feature groups and their role give."""

from __future__ import annotations

import json

import pulumi
import pytest

from infra.components.feature_store import FeatureStore, FeatureStoreArgs
from infra.plan.engine import Capture, Resource
from ml_code.features.definitions import feature_group_schema
from tests.infra.platform import ACCOUNT, CURATED_KEY, PLATFORM_KEY, platform_refs
from tests.infra.resolved import resolved

GROUP = "aws:sagemaker/featureGroup:FeatureGroup"
CURATED = f"mlops-dev-curated-{ACCOUNT}"
OUTPUTS = (
    "customer_group_name",
    "item_group_name",
    "customer_group_arn",
    "item_group_arn",
    "role_arn",
    "offline_store_uri",
    "glue_database_name",
)


@pytest.fixture(scope="module")
def capture() -> Capture:
    return resolved(lambda: FeatureStore("features", FeatureStoreArgs(platform_refs())))


def _group(capture: Capture, group: str) -> Resource:
    (found,) = [r for r in capture.by_type(GROUP) if r.name == f"features-{group}-features"]
    return found


def _role_policy(capture: Capture) -> dict:
    (policy,) = capture.by_type("aws:iam/rolePolicy:RolePolicy")
    return json.loads(policy.inputs["policy"])


@pytest.mark.parametrize("group", ["customer", "item"])
def test_online_store_is_enabled_and_encrypted_with_the_platform_key(capture, group):
    online = _group(capture, group).inputs["onlineStoreConfig"]
    assert online["enableOnlineStore"] is True
    assert online["securityConfig"] == {"kmsKeyId": PLATFORM_KEY}


@pytest.mark.parametrize("group", ["customer", "item"])
def test_offline_store_lives_in_the_curated_bucket_with_its_key_and_a_glue_table(capture, group):
    offline = _group(capture, group).inputs["offlineStoreConfig"]
    assert offline["s3StorageConfig"] == {
        "s3Uri": f"s3://{CURATED}/feature-store/",
        "kmsKeyId": CURATED_KEY,
    }
    assert offline["disableGlueTableCreation"] is False
    (database,) = capture.by_type("aws:glue/catalogDatabase:CatalogDatabase")
    assert offline["dataCatalogConfig"] == {
        "catalog": "AwsDataCatalog",
        "database": database.inputs["name"],
        "tableName": f"{group}_features",
    }
    assert database.inputs["name"] == "mlops_dev_feature_store"


@pytest.mark.parametrize("group", ["customer", "item"])
def test_feature_definitions_are_exactly_the_shared_schema_in_its_order(capture, group):
    inputs = _group(capture, group).inputs
    declared = [
        {"FeatureName": f["featureName"], "FeatureType": f["featureType"]}
        for f in inputs["featureDefinitions"]
    ]
    assert declared == feature_group_schema(group)
    assert inputs["recordIdentifierFeatureName"] == f"{group}_id"
    assert inputs["eventTimeFeatureName"] == "event_time"


def test_feature_group_names_carry_the_stack_prefix(capture):
    names = {r.inputs["featureGroupName"] for r in capture.by_type(GROUP)}
    assert names == {"mlops-dev-customer-features", "mlops-dev-item-features"}


def test_role_is_assumable_only_by_sagemaker_in_this_account(capture):
    (role,) = capture.by_type("aws:iam/role:Role")
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Service": ["sagemaker.amazonaws.com"]}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    for group in capture.by_type(GROUP):
        assert group.inputs["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{role.inputs['name']}"


def test_role_policy_names_only_the_offline_prefix_the_two_keys_and_these_glue_tables(capture):
    statements = _role_policy(capture)["Statement"]
    resources = {r for s in statements for r in s["Resource"]}
    glue = f"arn:aws:glue:us-east-1:{ACCOUNT}"
    assert resources == {
        f"arn:aws:s3:::{CURATED}/feature-store/*",
        f"arn:aws:s3:::{CURATED}",
        CURATED_KEY,
        PLATFORM_KEY,
        f"{glue}:catalog",
        f"{glue}:database/mlops_dev_feature_store",
        f"{glue}:table/mlops_dev_feature_store/customer_features",
        f"{glue}:table/mlops_dev_feature_store/item_features",
    }
    (bucket_level,) = [s for s in statements if f"arn:aws:s3:::{CURATED}" in s["Resource"]]
    assert bucket_level["Action"] == ["s3:GetBucketAcl"]


def test_role_policy_grants_no_wildcard_action_and_no_wildcard_resource(capture):
    for statement in _role_policy(capture)["Statement"]:
        assert statement["Effect"] == "Allow"
        assert all(not a.endswith("*") for a in statement["Action"]), statement
        assert "*" not in statement["Resource"], statement


def test_outputs_name_the_groups_role_offline_store_and_database():
    def program() -> None:
        store = FeatureStore("features", FeatureStoreArgs(platform_refs()))
        for output in OUTPUTS:
            pulumi.export(output, getattr(store, output))

    outputs = resolved(program).outputs
    sagemaker = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}"
    assert outputs == {
        "customer_group_name": "mlops-dev-customer-features",
        "item_group_name": "mlops-dev-item-features",
        "customer_group_arn": f"{sagemaker}:feature-group/mlops-dev-customer-features",
        "item_group_arn": f"{sagemaker}:feature-group/mlops-dev-item-features",
        "role_arn": f"arn:aws:iam::{ACCOUNT}:role/mlops-dev-feature-store",
        "offline_store_uri": f"s3://{CURATED}/feature-store/",
        "glue_database_name": "mlops_dev_feature_store",
    }


def test_bringing_your_own_role_creates_no_role_and_uses_it_for_both_groups():
    byo = f"arn:aws:iam::{ACCOUNT}:role/team-feature-store"
    capture = resolved(
        lambda: FeatureStore("features", FeatureStoreArgs(platform_refs(), role_arn=byo))
    )
    assert not capture.by_type("aws:iam/role:Role")
    assert not capture.by_type("aws:iam/rolePolicy:RolePolicy")
    assert {g.inputs["roleArn"] for g in capture.by_type(GROUP)} == {byo}


def test_a_prefix_too_long_for_a_feature_group_name_is_rejected_with_the_name():
    long_prefix = "a" * 50 + "-dev"
    with pytest.raises(ValueError, match=f"'{long_prefix}-customer-features'.*Shorten"):
        resolved(
            lambda: FeatureStore(
                "features", FeatureStoreArgs(platform_refs(name_prefix=long_prefix))
            )
        )


def test_every_taggable_resource_carries_name_and_platform_tags(capture):
    taggable = [r for r in capture.resources if "tags" in r.inputs]
    assert len(taggable) == 4  # two groups, the Glue database, the role
    for res in taggable:
        assert res.inputs["tags"]["Name"] == res.name
        assert res.inputs["tags"]["Environment"] == "dev"
