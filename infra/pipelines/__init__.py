"""SageMaker pipelines as data: the source bundle and the pipeline definitions the platform runs.

Definitions are built with the SageMaker SDK at plan time, offline, from plain strings; the
components in `infra/components/` turn them into `aws.sagemaker.Pipeline` resources.
"""
