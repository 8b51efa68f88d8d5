"""Data table: which input changes make AWS replace a resource, and which deserve a word.

The diff only sees inputs, not the provider's schema, so it cannot know on its own that
renaming an IAM role deletes the role and creates a new one. This module is the knowledge it
lacks, kept as data so adding a type is one line: `REPLACE_ON_CHANGE` maps a Pulumi type token
to the top-level inputs whose change forces a replacement (the provider's `ForceNew` fields),
and `CALLOUTS` maps a type token to input path patterns (`[*]` for any list index) whose change
updates in place but has an effect a reviewer must weigh. A resource's own `replaceOnChanges`
option is honoured on top of this table.
"""

from __future__ import annotations

_S3_SUBRESOURCES = (
    "bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "bucketLogging:BucketLogging",
    "bucketOwnershipControls:BucketOwnershipControls",
    "bucketPolicy:BucketPolicy",
    "bucketPublicAccessBlock:BucketPublicAccessBlock",
    "bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "bucketVersioning:BucketVersioning",
    "bucketNotification:BucketNotification",
)

REPLACE_ON_CHANGE: dict[str, frozenset[str]] = {
    "aws:s3/bucket:Bucket": frozenset({"bucket", "bucketPrefix", "objectLockEnabled"}),
    **{f"aws:s3/{t}": frozenset({"bucket", "expectedBucketOwner"}) for t in _S3_SUBRESOURCES},
    "aws:kms/key:Key": frozenset(
        {"customerMasterKeySpec", "keyUsage", "multiRegion", "customKeyStoreId", "xksKeyId"}
    ),
    "aws:kms/alias:Alias": frozenset({"name", "namePrefix"}),
    "aws:sagemaker/featureGroup:FeatureGroup": frozenset(
        {
            "featureGroupName",
            "featureDefinitions",
            "recordIdentifierFeatureName",
            "eventTimeFeatureName",
            "onlineStoreConfig",
            "offlineStoreConfig",
            "roleArn",
            "description",
        }
    ),
    "aws:sagemaker/pipeline:Pipeline": frozenset({"pipelineName"}),
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": frozenset(
        {"modelPackageGroupName", "modelPackageGroupDescription"}
    ),
    "aws:sagemaker/model:Model": frozenset(
        {
            "name",
            "executionRoleArn",
            "primaryContainer",
            "containers",
            "vpcConfig",
            "enableNetworkIsolation",
            "inferenceExecutionConfig",
        }
    ),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": frozenset(
        {
            "name",
            "namePrefix",
            "productionVariants",
            "shadowProductionVariants",
            "dataCaptureConfig",
            "kmsKeyArn",
            "asyncInferenceConfig",
        }
    ),
    "aws:sagemaker/endpoint:Endpoint": frozenset({"name"}),
    "aws:iam/role:Role": frozenset({"name", "namePrefix", "path"}),
    "aws:iam/policy:Policy": frozenset({"name", "namePrefix", "path", "description"}),
    "aws:iam/rolePolicy:RolePolicy": frozenset({"name", "namePrefix", "role"}),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": frozenset({"role", "policyArn"}),
    "aws:lambda/function:Function": frozenset({"name", "packageType"}),
    "aws:lambda/permission:Permission": frozenset(
        {
            "action",
            "functionName",
            "principal",
            "sourceArn",
            "sourceAccount",
            "statementId",
            "qualifier",
            "eventSourceToken",
        }
    ),
    "aws:sns/topic:Topic": frozenset({"name", "namePrefix", "fifoTopic"}),
    "aws:sns/topicPolicy:TopicPolicy": frozenset({"arn"}),
    "aws:sns/topicSubscription:TopicSubscription": frozenset({"topicArn", "protocol", "endpoint"}),
    "aws:cloudwatch/metricAlarm:MetricAlarm": frozenset({"name"}),
    "aws:cloudwatch/eventRule:EventRule": frozenset({"name", "namePrefix", "eventBusName"}),
    "aws:cloudwatch/eventTarget:EventTarget": frozenset({"rule", "targetId", "eventBusName"}),
    "aws:cloudwatch/logGroup:LogGroup": frozenset({"name", "namePrefix", "logGroupClass"}),
    "aws:sqs/queue:Queue": frozenset({"name", "namePrefix", "fifoQueue"}),
}

_SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"

CALLOUTS: dict[str, dict[str, str]] = {
    _SSE: {
        "rules[*].applyServerSideEncryptionByDefault.kmsMasterKeyId": (
            "re-encrypts new objects only: existing objects keep their old key until rewritten"
        ),
        "rules[*].applyServerSideEncryptionByDefault.sseAlgorithm": (
            "re-encrypts new objects only: existing objects keep their old encryption"
        ),
    },
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": {
        "rules": "lifecycle rules apply to objects already stored: a shorter expiry deletes data",
    },
    "aws:s3/bucketVersioning:BucketVersioning": {
        "versioningConfiguration.status": "suspending versioning stops keeping overwritten objects",
    },
    "aws:kms/key:Key": {
        "policy": "the key policy decides who can decrypt every object encrypted with this key",
        "deletionWindowInDays": "applies only when the key is scheduled for deletion",
    },
    "aws:sagemaker/endpoint:Endpoint": {
        "endpointConfigName": "rolls the endpoint onto a new configuration (blue/green deployment)",
    },
}


def replace_reasons(type_: str, paths: list[str], replace_on_changes: list[str]) -> list[str]:
    """The changed paths that force a replacement, from the table and the resource's own option."""
    forced = REPLACE_ON_CHANGE.get(type_, frozenset())
    own = set(replace_on_changes)
    reasons = []
    for path in paths:
        top = path.split(".", 1)[0].split("[", 1)[0]
        if "*" in own or top in forced or top in own or path in own:
            reasons.append(path)
    return reasons


def callouts(type_: str, pattern: str) -> list[str]:
    """Notes for a changed path given as a pattern (`rules[*].x`); prefixes match deeper paths."""
    notes = []
    for prefix, note in CALLOUTS.get(type_, {}).items():
        if pattern == prefix or pattern.startswith((prefix + ".", prefix + "[")):
            notes.append(note)
    return notes
