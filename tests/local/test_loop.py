"""The drift half of the loop on the emulator: metric -> alarm -> rule -> real retrain handler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from infra.local.alarms import AlarmEvaluator
from infra.local.emulator import Emulator
from infra.local.events import EventRouter
from infra.local.handlers import handlers_from_plan
from infra.local.provision import provision
from tests.local import plans

PIPELINE = "mlops-local-recommender-training"


def test_drift_above_threshold_starts_one_training_pipeline_execution(cloud: Emulator) -> None:
    plan = plans.platform_plan()
    function = next(r for r in plan["resources"] if r["urn"] == plans.FUNCTION)
    function["inputs"]["handler"] = "ml_code.handlers.retrain.handler"
    function["inputs"]["environment"]["variables"] = {
        "PIPELINE_NAME": PIPELINE,
        "MODEL_PACKAGE_GROUP": "mlops-local-recommender",
    }
    provision(plan, cloud)
    day = datetime(2026, 3, 1, tzinfo=UTC)
    cloud.client("cloudwatch").put_metric_data(
        Namespace="MLOps/Model",
        MetricData=[
            {
                "MetricName": "FeatureDriftMaxPsi",
                "Dimensions": [{"Name": "Model", "Value": "recommender"}],
                "Value": 0.5,
                "Timestamp": day + timedelta(hours=3),
            }
        ],
    )
    router = EventRouter(cloud.client("events"), handlers_from_plan(plan))

    (event,) = AlarmEvaluator(cloud.client("cloudwatch")).evaluate(day + timedelta(days=1))
    (delivery,) = router.publish(event)

    assert delivery.ok, delivery.error
    assert delivery.result["started"] is True
    executions = cloud.client("sagemaker").list_pipeline_executions(PipelineName=PIPELINE)
    assert [e["PipelineExecutionArn"] for e in executions["PipelineExecutionSummaries"]] == [
        delivery.result["execution_arn"]
    ]
