"""The mlops platform program: one stack per environment (`stacks/Pulumi.<env>.yaml`)."""

import pulumi
import pulumi_aws as aws

from infra import settings as platform_settings
from infra.components.data_lake import DataLake, DataLakeArgs

settings = platform_settings.load()
identity = aws.get_caller_identity_output()
partition = aws.get_partition_output()

data_lake = DataLake(
    f"{settings.name_prefix}-lake",
    DataLakeArgs(
        name_prefix=settings.name_prefix,
        account_id=identity.account_id,
        region=settings.region,
        partition=partition.partition,
        key_per_bucket=settings.kms_key_per_bucket,
        raw_cold_storage_days=settings.raw_data_cold_storage_days,
        capture_retention_days=settings.capture_retention_days,
        report_retention_days=settings.report_retention_days,
        noncurrent_version_retention_days=settings.noncurrent_version_retention_days,
        abort_incomplete_upload_days=settings.abort_incomplete_upload_days,
        access_log_retention_days=settings.access_log_retention_days,
        protect=settings.protect,
        tags=settings.tags,
    ),
)

pulumi.export("environment", settings.environment)
pulumi.export("bucketNames", data_lake.bucket_names)
pulumi.export("kmsKeyArns", data_lake.key_arns)
