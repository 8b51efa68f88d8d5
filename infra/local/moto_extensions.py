"""SageMaker APIs the loop calls that moto 5.2.5 does not implement, completed as AWS does.

Only what the loop needs: `UpdateEndpoint`, which in AWS ends with the endpoint serving the new
configuration (the blue/green traffic shift itself is the endpoint host's job), and the
`FailureReason` of `DescribePipelineExecution`, which moto always returns empty (the retrain
handler reads a rejected candidate's figures there).
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

_describe_pipeline_execution = SageMakerModelBackend.describe_pipeline_execution


def _update_endpoint(self: SageMakerResponse) -> ActionResult:
    backend = self.sagemaker_backend
    config = backend.describe_endpoint_config(self._get_param("EndpointConfigName"))
    backend.describe_endpoint(self._get_param("EndpointName"))
    endpoint = backend.endpoints[self._get_param("EndpointName")]
    endpoint.endpoint_config_name = config["EndpointConfigName"]
    endpoint.production_variants = endpoint._process_production_variants(
        config["ProductionVariants"]
    )
    return ActionResult({"EndpointArn": endpoint.arn})


def _describe_with_failure_reason(
    self: SageMakerModelBackend, pipeline_execution_arn: str
) -> dict[str, Any]:
    described = _describe_pipeline_execution(self, pipeline_execution_arn)
    for pipeline in self.pipelines.values():
        execution = pipeline.pipeline_executions.get(pipeline_execution_arn)
        if execution is not None:
            described["FailureReason"] = execution.pipeline_execution_failure_reason or ""
    return described


def install() -> None:
    """Idempotent: moto keeps one response and one backend class per process."""
    if not hasattr(SageMakerResponse, "update_endpoint"):
        SageMakerResponse.update_endpoint = _update_endpoint  # type: ignore[attr-defined]
    SageMakerModelBackend.describe_pipeline_execution = _describe_with_failure_reason  # type: ignore[method-assign]
