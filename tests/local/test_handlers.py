"""Plan functions run in-process with their environment, which is restored afterwards."""

from __future__ import annotations

import os

import pytest

from infra.local.handlers import HandlerError, handlers_from_plan
from tests.local import plans


def _function_plan(variables: dict[str, object]) -> dict[str, object]:
    return plans.plan(
        plans.resource(
            "aws:lambda/function:Function",
            "fn",
            {
                "name": "mlops-local-fn",
                "handler": "tests.local.recording_handler.handler",
                "timeout": 30.0,
                "environment": {"variables": variables},
            },
        )
    )


def test_handler_sees_its_variables_and_the_environment_is_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLOPS_LOCAL_SHADOWED", "outer")
    monkeypatch.delenv("PIPELINE_NAME", raising=False)
    handlers = handlers_from_plan(
        _function_plan({"PIPELINE_NAME": "training", "MLOPS_LOCAL_SHADOWED": "inner"})
    )

    arn = "arn:aws:lambda:us-east-1:123456789012:function:mlops-local-fn"
    result = handlers[arn]({"source": "test"})

    assert result == {
        "event": {"source": "test"},
        "pipeline": "training",
        "shadowed": "inner",
        "function_name": "mlops-local-fn",
        "arn": arn,
        "remaining_ms": 30000,
    }
    assert "PIPELINE_NAME" not in os.environ
    assert os.environ["MLOPS_LOCAL_SHADOWED"] == "outer"


def test_environment_is_restored_when_the_handler_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPELINE_NAME", raising=False)
    plan = _function_plan({"PIPELINE_NAME": "training"})
    plan["resources"][0]["inputs"]["handler"] = "tests.local.recording_handler.missing"
    (handler,) = handlers_from_plan(plan).values()

    with pytest.raises(AttributeError):
        handler({})
    assert "PIPELINE_NAME" not in os.environ


def test_a_variable_unknown_in_the_plan_is_refused_with_its_name() -> None:
    with pytest.raises(HandlerError, match="environment.variables.PIPELINE_NAME"):
        handlers_from_plan(_function_plan({"PIPELINE_NAME": {"$unknown": True}}))
