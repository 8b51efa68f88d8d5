"""SageMaker APIs the loop calls that moto 5.2.5 does not implement, completed as AWS does.

Only what the deploy path needs: `UpdateEndpoint`, which in AWS ends with the endpoint serving
the new configuration (the blue/green traffic shift itself is the endpoint host's job).
"""

from __future__ import annotations

from moto.core.responses import ActionResult
from moto.sagemaker.responses import SageMakerResponse


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


def install() -> None:
    """Idempotent: moto keeps one response class per process."""
    if not hasattr(SageMakerResponse, "update_endpoint"):
        SageMakerResponse.update_endpoint = _update_endpoint  # type: ignore[attr-defined]
