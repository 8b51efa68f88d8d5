"""Typed settings: every bad value stops the program with a message naming key, value and fix."""

from __future__ import annotations

from typing import Any

import pytest

from infra.settings import SettingsError, from_mapping

MODEL = {"name": "recommender", "team": "personalization"}


def _load(environment: str = "dev", region: str | None = "us-east-1", **raw: Any):
    raw.setdefault("models", [dict(MODEL)])
    return from_mapping("mlops", environment, region, {"environment": environment, **raw})


def _error(**kwargs: Any) -> str:
    with pytest.raises(SettingsError) as info:
        _load(**kwargs)
    return str(info.value)


def test_valid_settings_derive_names_tags_and_protection():
    settings = _load("prod", models=[{**MODEL, "minInstances": "2", "maxInstances": "4"}])
    assert settings.name_prefix == "mlops-prod"
    assert settings.protect is True
    assert settings.tags["Environment"] == "prod"
    assert settings.models[0].min_instances == 2


def test_a_typo_in_an_enum_value_names_the_key_the_value_and_the_allowed_values():
    message = _error(approvalMode="automatc")
    assert "mlops:approvalMode = 'automatc'" in message
    assert "'automatic' or 'manual'" in message
    assert "stacks/Pulumi.dev.yaml" in message


def test_an_unknown_environment_lists_the_three_environments():
    message = _error(environment="prd")
    assert "mlops:environment = 'prd'" in message and "'dev', 'staging' or 'prod'" in message


def test_a_non_number_for_days_is_rejected_with_the_key():
    message = _error(captureRetentionDays="thirty")
    assert "mlops:captureRetentionDays = 'thirty'" in message and "integer" in message


def test_days_out_of_range_say_the_bound():
    assert "greater than or equal to 1" in _error(reportRetentionDays="0")


def test_log_retention_must_be_a_value_cloudwatch_accepts():
    message = _error(logRetentionDays="10")
    assert "mlops:logRetentionDays = '10'" in message and "14, 30" in message


def test_a_bad_instance_type_in_a_model_names_its_path_in_the_list():
    message = _error(models=[{**MODEL, "endpointInstanceType": "m5.large"}])
    assert "mlops:models[0].endpointInstanceType = 'm5.large'" in message


def test_an_unknown_model_field_is_rejected():
    assert "mlops:models[0].instanceTyp" in _error(models=[{**MODEL, "instanceTyp": "ml.m5.large"}])


def test_max_instances_below_min_is_rejected():
    message = _error(models=[{**MODEL, "minInstances": 3, "maxInstances": 2}])
    assert "maxInstances (2) must be at least minInstances (3)" in message


def test_prod_endpoints_need_two_instances():
    message = _error(environment="prod", models=[{**MODEL, "minInstances": 1, "maxInstances": 2}])
    assert "models[0].minInstances is 1" in message and "at least 2 instances" in message


def test_two_models_with_one_name_are_rejected():
    assert "'recommender' appears twice" in _error(models=[MODEL, MODEL])


def test_a_stack_needs_at_least_one_model():
    assert "mlops:models" in _error(models=[])


def test_subnets_need_security_groups():
    assert "securityGroupIds" in _error(subnetIds=["subnet-1"])


def test_a_missing_region_is_named():
    assert "aws:region" in _error(region=None)


def test_a_schedule_that_eventbridge_cannot_parse_is_rejected():
    assert "mlops:monitoringSchedule = 'hourly'" in _error(monitoringSchedule="hourly")
