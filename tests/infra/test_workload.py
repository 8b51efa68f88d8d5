"""The whole program per stack: every model gets its loop, and nothing collides."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from infra.plan.engine import Capture
from tests.infra.resolved import resolved_stack

SECOND_MODEL = {"name": "churn", "team": "retention", "minInstances": 2, "maxInstances": 3}
RECOMMENDER = {
    "name": "recommender",
    "team": "personalization",
    "minInstances": 2,
    "maxInstances": 4,
}
PHYSICAL_NAME_INPUTS = ("name", "pipelineName", "modelPackageGroupName", "featureGroupName")


@pytest.fixture(scope="module")
def two_models() -> Capture:
    return resolved_stack("staging", {"mlops:models": [RECOMMENDER, SECOND_MODEL]})


def _physical_names(capture: Capture) -> list[tuple[str, str]]:
    objects = [
        (r.type, f"{r.inputs['bucket']}/{r.inputs.get('key', '')}")
        for r in capture.resources
        if r.custom and r.type.startswith("aws:s3/bucket") and "key" in r.inputs
    ]
    buckets = [(r.type, r.inputs["bucket"]) for r in capture.by_type("aws:s3/bucket:Bucket")]
    return (
        objects
        + buckets
        + [
            (r.type, r.inputs[key])
            for r in capture.resources
            for key in PHYSICAL_NAME_INPUTS
            if r.custom and isinstance(r.inputs.get(key), str)
        ]
    )


def test_a_second_model_adds_its_own_workload_without_any_name_collision(two_models):
    urns = [r.urn for r in two_models.resources]
    assert len(urns) == len(set(urns))
    names = _physical_names(two_models)
    duplicates = [name for name, count in Counter(names).items() if count > 1]
    assert duplicates == []
    workloads = two_models.by_type("mlops:workload:ModelWorkload")
    assert sorted(w.name for w in workloads) == ["mlops-staging-churn", "mlops-staging-recommender"]
    groups = two_models.by_type("aws:sagemaker/modelPackageGroup:ModelPackageGroup")
    assert sorted(g.inputs["modelPackageGroupName"] for g in groups) == [
        "mlops-staging-churn",
        "mlops-staging-recommender",
    ]


def test_each_models_retraining_rule_matches_only_its_own_alarms(two_models):
    rules = {
        r.inputs["name"]: json.loads(r.inputs["eventPattern"])
        for r in two_models.by_type("aws:cloudwatch/eventRule:EventRule")
        if r.inputs["name"].endswith("retrain-alarm")
    }
    assert set(rules) == {
        "mlops-staging-churn-retrain-alarm",
        "mlops-staging-recommender-retrain-alarm",
    }
    for rule_name, pattern in rules.items():
        model = rule_name.removeprefix("mlops-staging-").removesuffix("-retrain-alarm")
        assert all(f"-{model}-" in name for name in pattern["detail"]["alarmName"])


def test_every_stack_plans_the_whole_loop_for_its_model(stack_plans):
    for stack, doc in stack_plans.items():
        types = Counter(r["type"] for r in doc["resources"])
        assert types["aws:sagemaker/featureGroup:FeatureGroup"] == 2
        assert types["aws:sagemaker/modelPackageGroup:ModelPackageGroup"] == 1
        assert types["aws:ssm/parameter:Parameter"] == 1, "the endpoint configuration template"
        assert types["aws:cloudwatch/metricAlarm:MetricAlarm"] == 5
        assert types["aws:lambda/function:Function"] == 3, "deploy, retrain, publish metrics"
        assert types["aws:sagemaker/pipeline:Pipeline"] == 2, "training and monitoring"
        assert types["aws:scheduler/schedule:Schedule"] == 1, "the monitoring run"
        assert types["aws:cloudwatch/eventRule:EventRule"] >= 3
        models = doc["outputs"]["models"]
        assert models["recommender"]["endpointName"] == f"mlops-{stack}-recommender"


def test_no_role_anywhere_attaches_an_aws_managed_policy(stack_plans):
    for doc in stack_plans.values():
        attachments = [
            r
            for r in doc["resources"]
            if r["type"] == "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
        ]
        assert attachments == []
        for role in (r for r in doc["resources"] if r["type"] == "aws:iam/role:Role"):
            assert not role["inputs"].get("managedPolicyArns")


def _template(doc: dict) -> dict:
    (parameter,) = [r for r in doc["resources"] if r["type"] == "aws:ssm/parameter:Parameter"]
    return json.loads(parameter["inputs"]["insecureValue"])


def test_prod_and_dev_differ_where_their_config_says(stack_plans):
    dev, prod = _template(stack_plans["dev"]), _template(stack_plans["prod"])
    assert dev["ProductionVariant"]["InitialInstanceCount"] == 1
    assert prod["ProductionVariant"]["InitialInstanceCount"] == 2
    assert dev["ProductionVariant"]["InstanceType"] == "ml.m5.large"
    assert prod["ProductionVariant"]["InstanceType"] == "ml.c5.xlarge"
    assert dev["DataCaptureConfig"]["InitialSamplingPercentage"] == 100
    assert prod["DataCaptureConfig"]["InitialSamplingPercentage"] == 20
    groups = {
        stack: next(
            r
            for r in doc["resources"]
            if r["type"] == "aws:sagemaker/modelPackageGroup:ModelPackageGroup"
        )
        for stack, doc in stack_plans.items()
    }
    assert groups["prod"]["inputs"]["tags"]["ApprovalMode"] == "manual"
    assert groups["dev"]["inputs"]["tags"]["ApprovalMode"] == "automatic"
    assert groups["prod"]["options"]["protect"] and not groups["dev"]["options"]["protect"]
