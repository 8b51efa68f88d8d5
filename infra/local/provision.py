"""Create in the emulator, from a stack's offline plan, the resources moto models.

The plan is a preview, so values known only after an update are unknown (a new key's ARN, a
bucket's id). Each one is resolved through the resource's `propertyDependencies`: the property
names the resources it was computed from, and the input's name says which of their attributes
it is (`kmsMasterKeyId` is a key's ARN, `bucket` a bucket's name). What cannot be resolved stops
provisioning with the resource and property named: guessing would give a platform that differs
from the one the plan describes. Secrets are never sent to the emulator; they are recorded.

Types that moto does not model, or whose effect nothing local observes, are skipped with the
reason recorded in `Provisioned.skipped`, so a reader sees that nothing was dropped silently.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.local.emulator import Emulator
from infra.plan import values

COMPONENT_REASON = "component resource: a grouping in the plan, its children are provisioned"
PROVIDER_REASON = "provider resource: the emulator plays the provider's role"
UNMAPPED_REASON = "no local emulation: moto does not model this type or the kit has no mapping"
LAMBDA_REASON = (
    "not created in moto (its Lambda needs Docker to invoke); the event router calls the "
    "handler in-process, see infra.local.handlers.handlers_from_plan"
)
SKIPPED_TYPES: dict[str, str] = {
    "aws:lambda/function:Function": LAMBDA_REASON,
    "aws:lambda/permission:Permission": "no Lambda in the emulator; the event router invokes "
    "handlers in-process, so there is no invoke permission to check",
    "aws:s3/bucketPolicy:BucketPolicy": "resource policy: moto does not enforce it, and its "
    "document embeds ARNs known only after an update",
    "aws:sns/topicPolicy:TopicPolicy": "resource policy: moto does not enforce it",
    "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy": "resource policy: moto "
    "does not implement PutModelPackageGroupPolicy",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "moto never expires or "
    "transitions objects, so the rules would have no effect",
    "aws:s3/bucketLogging:BucketLogging": "moto delivers no server access logs",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "moto does not evaluate ACLs",
    "aws:sns/topicSubscription:TopicSubscription": "deliveries would leave the machine "
    "(e-mail, HTTPS); the alarm evaluator returns state-change events instead",
    "aws:cloudwatch/dashboard:Dashboard": "nothing local reads dashboards",
    "aws:scheduler/schedule:Schedule": "EventBridge Scheduler is not fired locally; the kit "
    "schedules through EventBridge rules, which EventRouter.fire_schedules fires",
}

_KEY = "aws:kms/key:Key"
_ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
_BUCKET = "aws:s3/bucket:Bucket"
_ROLE = "aws:iam/role:Role"
_RULE = "aws:cloudwatch/eventRule:EventRule"
_FUNCTION = "aws:lambda/function:Function"
_GROUP = "aws:sagemaker/modelPackageGroup:ModelPackageGroup"
_TOPIC = "aws:sns/topic:Topic"

# input name -> (attribute of the resource it depends on, types that attribute may come from)
_REFERENCES: dict[str, tuple[str, frozenset[str]]] = {
    "kmsMasterKeyId": ("arn", frozenset({_KEY})),
    "kmsKeyId": ("arn", frozenset({_KEY})),
    "kmsKeyArn": ("arn", frozenset({_KEY})),
    "targetKeyArn": ("arn", frozenset({_KEY})),
    "targetKeyId": ("id", frozenset({_KEY})),
    "keyId": ("id", frozenset({_KEY})),
    "bucket": ("name", frozenset({_BUCKET})),
    "targetBucket": ("name", frozenset({_BUCKET})),
    "role": ("name", frozenset({_ROLE})),
    "rule": ("name", frozenset({_RULE})),
    "function": ("name", frozenset({_FUNCTION})),
    "modelPackageGroupName": ("name", frozenset({_GROUP})),
    "topic": ("arn", frozenset({_TOPIC})),
}


class ProvisionError(ValueError):
    """The plan cannot be provisioned as written; the message names the resource and input."""


@dataclass(frozen=True)
class Created:
    urn: str
    type: str
    name: str | None
    arn: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class Skipped:
    """Not created in the emulator. `name`/`arn` are the identity it has in AWS, when known,
    so resources that refer to it (a rule's target naming a function) still resolve."""

    urn: str
    type: str
    reason: str
    name: str | None = None
    arn: str | None = None


@dataclass
class Provisioned:
    created: dict[str, Created] = field(default_factory=dict)
    skipped: dict[str, Skipped] = field(default_factory=dict)
    withheld_secrets: list[str] = field(default_factory=list)
    """`<urn>: <input path>` of every secret input that was not sent to the emulator."""

    def of_type(self, type_: str) -> list[Created]:
        return [c for c in self.created.values() if c.type == type_]

    def identity(self, urn: str) -> Created | Skipped | None:
        return self.created.get(urn) or self.skipped.get(urn)


class _SkipResource(Exception):
    def __init__(self, reason: str, name: str | None = None, arn: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.name = name
        self.arn = arn


@dataclass
class _Context:
    emulator: Emulator
    done: Provisioned
    withheld: set[str]
    root: Path
    """Top-level inputs of the current resource that were secrets and were withheld."""
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.emulator.client(service)
        return self._clients[service]

    def arn(self, service: str, resource: str, regional: bool = True) -> str:
        region = self.emulator.region if regional else ""
        return f"arn:aws:{service}:{region}:{self.emulator.account_id}:{resource}"


_Creator = Callable[[_Context, dict[str, Any], dict[str, Any]], Created]


def provision(
    plan: Mapping[str, Any], emulator: Emulator, project_root: Path | None = None
) -> Provisioned:
    """Create the plan's resources in `emulator`, dependencies first.

    `project_root` is where the plan ran: file assets in the plan are relative to it."""
    region = (plan.get("config") or {}).get("aws:region")
    if region and region != emulator.region:
        raise ProvisionError(
            f"plan of stack '{plan.get('stack')}' is for region {region} but the emulator serves "
            f"{emulator.region}; start it with Emulator(region={region!r})"
        )
    done = Provisioned()
    root = project_root or Path.cwd()
    for resource in _dependency_order(plan.get("resources", [])):
        _provision_one(resource, emulator, done, root)
    return done


def _provision_one(
    resource: dict[str, Any], emulator: Emulator, done: Provisioned, root: Path
) -> None:
    urn, type_ = resource["urn"], resource["type"]
    if not resource.get("custom", True):
        done.skipped[urn] = Skipped(urn, type_, COMPONENT_REASON)
        return
    if type_.startswith("pulumi:providers:"):
        done.skipped[urn] = Skipped(urn, type_, PROVIDER_REASON)
        return
    creator = _CREATORS.get(type_)
    if creator is None:
        reason = SKIPPED_TYPES.get(type_, UNMAPPED_REASON)
        name, arn = _identity_without_resource(resource, emulator)
        done.skipped[urn] = Skipped(urn, type_, reason, name, arn)
        return
    computed = _computed_document(resource)
    if computed:
        done.skipped[urn] = Skipped(urn, type_, computed)
        return
    secrets: list[str] = []
    inputs = _without_secrets(resource.get("inputs") or {}, "", secrets)
    done.withheld_secrets.extend(f"{urn}: {path}" for path in secrets)
    withheld = {path.split(".")[0].split("[")[0] for path in secrets}
    inputs = _resolve(resource, inputs, done)
    context = _Context(emulator, done, withheld, root)
    try:
        done.created[urn] = creator(context, resource, inputs)
    except _SkipResource as skip:
        done.skipped[urn] = Skipped(urn, type_, skip.reason, skip.name, skip.arn)


def _identity_without_resource(
    resource: dict[str, Any], emulator: Emulator
) -> tuple[str | None, str | None]:
    """A Lambda function keeps its AWS identity, so event targets that name it resolve."""
    if resource["type"] != _FUNCTION:
        return None, None
    name = _known(resource.get("inputs", {}).get("name")) or resource["name"]
    return name, f"arn:aws:lambda:{emulator.region}:{emulator.account_id}:function:{name}"


def _dependency_order(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Topological order by dependencies and property dependencies, ties broken by URN."""
    by_urn = {r["urn"]: r for r in resources}
    needs: dict[str, set[str]] = {}
    for r in resources:
        deps = set(r.get("dependencies") or [])
        for urns in (r.get("propertyDependencies") or {}).values():
            deps.update(urns)
        needs[r["urn"]] = {d for d in deps if d in by_urn and d != r["urn"]}
    dependents: dict[str, list[str]] = {u: [] for u in by_urn}
    for urn, deps in needs.items():
        for dep in deps:
            dependents[dep].append(urn)
    ready = [u for u, deps in needs.items() if not deps]
    heapq.heapify(ready)
    order: list[dict[str, Any]] = []
    while ready:
        urn = heapq.heappop(ready)
        order.append(by_urn[urn])
        for dependent in dependents[urn]:
            needs[dependent].discard(urn)
            if not needs[dependent]:
                heapq.heappush(ready, dependent)
    if len(order) != len(by_urn):
        cycle = sorted(u for u, deps in needs.items() if deps)
        raise ProvisionError(f"the plan's dependencies form a cycle through: {cycle}")
    return order


_is_secret = values.is_secret_marker
_is_unknown = values.is_unknown_marker


def _known(value: Any) -> Any:
    return None if _is_unknown(value) or _is_secret(value) else value


def _without_secrets(value: Any, path: str, found: list[str]) -> Any:
    if isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if _is_secret(item):
                found.append(child)
            else:
                kept[key] = _without_secrets(item, child, found)
        return kept
    if isinstance(value, list):
        kept_items = []
        for index, item in enumerate(value):
            if _is_secret(item):
                found.append(f"{path}[{index}]")
            else:
                kept_items.append(_without_secrets(item, f"{path}[{index}]", found))
        return kept_items
    return value


def _resolve(resource: dict[str, Any], inputs: dict[str, Any], done: Provisioned) -> dict[str, Any]:
    property_deps: dict[str, list[str]] = resource.get("propertyDependencies") or {}

    def walk(value: Any, prop: str, key: str, path: str) -> Any:
        if _is_unknown(value):
            return _resolve_unknown(resource, prop, key, path, property_deps.get(prop, []), done)
        if isinstance(value, dict):
            return {k: walk(v, prop, k, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, prop, key, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    return {prop: walk(value, prop, prop, prop) for prop, value in inputs.items()}


def _resolve_unknown(
    resource: dict[str, Any],
    prop: str,
    key: str,
    path: str,
    deps: list[str],
    done: Provisioned,
) -> str:
    attribute, types = _REFERENCES.get(key, (_generic_attribute(key), frozenset()))
    candidates = []
    for dep in deps:
        identity = done.identity(dep)
        if identity is None or attribute is None or getattr(identity, attribute, None) is None:
            continue
        if types and identity.type not in types:
            continue
        candidates.append(identity)
    if len(candidates) == 1 and attribute is not None:
        return str(getattr(candidates[0], attribute))
    wanted = (
        f"the {attribute} of a {'/'.join(sorted(types)) or 'resource'}"
        if attribute
        else ("a value the kit does not know how to derive")
    )
    found = "none" if not candidates else ", ".join(c.urn for c in candidates)
    raise ProvisionError(
        f"{resource['urn']}: input '{path}' is unknown in the plan and cannot be resolved: it "
        f"should be {wanted}, propertyDependencies['{prop}'] = {deps}, candidates: {found}"
    )


def _generic_attribute(key: str) -> str | None:
    if key == "arn" or key.endswith(("Arn", "Actions")):
        return "arn"
    if key == "name" or key.endswith("Name"):
        return "name"
    return None


def _require(context: _Context, resource: dict[str, Any], inputs: dict[str, Any], key: str) -> Any:
    if key in inputs and inputs[key] is not None:
        return inputs[key]
    if key in context.withheld:
        raise _SkipResource(
            f"required input '{key}' is a secret; secrets are never sent to the emulator"
        )
    raise ProvisionError(f"{resource['urn']}: required input '{key}' is missing from the plan")


def _name(inputs: dict[str, Any], resource: dict[str, Any], key: str = "name") -> str:
    """The physical name; without one Pulumi would auto-name, locally the logical name serves."""
    return str(inputs.get(key) or resource["name"])


def _tag_list(
    inputs: dict[str, Any], key: str = "Key", value: str = "Value"
) -> list[dict[str, str]]:
    return [{key: k, value: str(v)} for k, v in sorted((inputs.get("tags") or {}).items())]


def _drop_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None and v != [] and v != {}}


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _create_key(ctx: _Context, resource: dict[str, Any], inputs: dict[str, Any]) -> Created:
    kms = ctx.client("kms")
    meta = kms.create_key(
        **_drop_none(
            {
                "Description": inputs.get("description"),
                "Policy": inputs.get("policy"),
                "KeyUsage": inputs.get("keyUsage"),
                "KeySpec": inputs.get("customerMasterKeySpec"),
                "Tags": _tag_list(inputs, "TagKey", "TagValue"),
            }
        )
    )["KeyMetadata"]
    if inputs.get("enableKeyRotation"):
        kms.enable_key_rotation(KeyId=meta["KeyId"])
    return Created(resource["urn"], resource["type"], None, meta["Arn"], meta["KeyId"])


def _create_alias(ctx: _Context, resource: dict[str, Any], inputs: dict[str, Any]) -> Created:
    name = _name(inputs, resource)
    ctx.client("kms").create_alias(
        AliasName=name, TargetKeyId=_require(ctx, resource, inputs, "targetKeyId")
    )
    return Created(resource["urn"], resource["type"], name, ctx.arn("kms", name))


def _create_bucket(ctx: _Context, resource: dict[str, Any], inputs: dict[str, Any]) -> Created:
    s3 = ctx.client("s3")
    name = _name(inputs, resource, "bucket")
    args: dict[str, Any] = {"Bucket": name}
    if ctx.emulator.region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": ctx.emulator.region}
    s3.create_bucket(**args)
    if inputs.get("tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tag_list(inputs)})
    return Created(resource["urn"], resource["type"], name, f"arn:aws:s3:::{name}", name)


def _create_object(ctx: _Context, resource: dict[str, Any], inputs: dict[str, Any]) -> Created:
    """Objects the program uploads (the ML code bundle) are uploaded from the file the plan
    hashed; a changed file no longer matches the plan's digest, and is refused."""
    bucket = _require(ctx, resource, inputs, "bucket")
    key = _require(ctx, resource, inputs, "key")
    extra: dict[str, Any] = {}
    if inputs.get("kmsKeyId"):
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": inputs["kmsKeyId"]}
    ctx.client("s3").put_object(
        Bucket=bucket, Key=key, Body=_object_body(resource, inputs, ctx), **extra
    )
    return Created(resource["urn"], resource["type"], key, f"arn:aws:s3:::{bucket}/{key}", key)


def _object_body(resource: dict[str, Any], inputs: dict[str, Any], ctx: _Context) -> bytes:
    if isinstance(inputs.get("content"), str):
        return inputs["content"].encode()
    source = inputs.get("source") or {}
    asset = source.get("$asset") if isinstance(source, dict) else None
    if not asset:
        raise ProvisionError(f"{resource['urn']}: only inline content or a file asset uploads")
    path = ctx.root / asset["path"]
    if not path.is_file() or _sha256(path) != asset["digest"]:
        raise ProvisionError(
            f"{resource['urn']}: {path} is missing or changed since the plan; plan again"
        )
    return path.read_bytes()


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _bucket_setting(resource: dict[str, Any], bucket: str) -> Created:
    return Created(resource["urn"], resource["type"], bucket, None, bucket)


def _create_versioning(ctx: _Context, resource: dict[str, Any], inputs: dict[str, Any]) -> Created:
    bucket = _require(ctx, resource, inputs, "bucket")
    status = _require(ctx, resource, inputs, "versioningConfiguration").get("status", "Enabled")
    ctx.client("s3").put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": status}
    )
    return _bucket_setting(resource, bucket)


def _create_encryption(ctx: _Context, resource: dict[str, Any], inputs: dict[str, Any]) -> Created:
    bucket = _require(ctx, resource, inputs, "bucket")
    rules = []
    for rule in _require(ctx, resource, inputs, "rules"):
        default = rule.get("applyServerSideEncryptionByDefault") or {}
        rules.append(
            _drop_none(
                {
                    "ApplyServerSideEncryptionByDefault": _drop_none(
                        {
                            "SSEAlgorithm": default.get("sseAlgorithm"),
                            "KMSMasterKeyID": default.get("kmsMasterKeyId"),
                        }
                    ),
                    "BucketKeyEnabled": rule.get("bucketKeyEnabled"),
                }
            )
        )
    ctx.client("s3").put_bucket_encryption(
        Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules}
    )
    return _bucket_setting(resource, bucket)


def _create_public_access_block(
    ctx: _Context, resource: dict[str, Any], inputs: dict[str, Any]
) -> Created:
    bucket = _require(ctx, resource, inputs, "bucket")
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    ctx.client("s3").put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={f[0].upper() + f[1:]: bool(inputs.get(f)) for f in flags},
    )
    return _bucket_setting(resource, bucket)


def _create_topic(ctx: _Context, resource: dict[str, Any], inputs: dict[str, Any]) -> Created:
    attributes = _drop_none(
        {
            "KmsMasterKeyId": inputs.get("kmsMasterKeyId"),
            "DisplayName": inputs.get("displayName"),
            "FifoTopic": str(inputs["fifoTopic"]).lower() if "fifoTopic" in inputs else None,
        }
    )
    arn = ctx.client("sns").create_topic(
        **_drop_none(
            {
                "Name": _name(inputs, resource),
                "Attributes": attributes,
                "Tags": _tag_list(inputs),
            }
        )
    )["TopicArn"]
    return Created(resource["urn"], resource["type"], _name(inputs, resource), arn)


def _create_role(ctx: _Context, resource: dict[str, Any], inputs: dict[str, Any]) -> Created:
    role = ctx.client("iam").create_role(
        **_drop_none(
            {
                "RoleName": _name(inputs, resource),
                "AssumeRolePolicyDocument": _require(ctx, resource, inputs, "assumeRolePolicy"),
                "Path": inputs.get("path"),
                "Description": inputs.get("description"),
                "MaxSessionDuration": _int(inputs.get("maxSessionDuration")),
                "Tags": _tag_list(inputs),
            }
        )
    )["Role"]
    return Created(resource["urn"], resource["type"], role["RoleName"], role["Arn"], role["RoleId"])


_DOCUMENT_INPUTS: dict[str, tuple[str, ...]] = {
    "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:ssm/parameter:Parameter": ("value", "insecureValue"),
}
"""Inputs that hold a whole document (JSON text), not a reference to another resource."""


def _computed_document(resource: dict[str, Any]) -> str:
    """Why a resource whose whole document is unknown in the preview is skipped, or "".

    Such a document embeds ARNs known only after an update; unlike a single reference it
    cannot be rebuilt from the resources it depends on, so the resource is skipped and the
    reason names the input and what it was computed from.
    """
    inputs = resource.get("inputs") or {}
    for key in _DOCUMENT_INPUTS.get(resource["type"], ()):
        if _is_unknown(inputs.get(key)):
            deps = (resource.get("propertyDependencies") or {}).get(key, [])
            return (
                f"input '{key}' is a document computed at update time from "
                f"{', '.join(deps) or 'outputs of other resources'}; a preview plan does "
                "not hold it"
            )
    return ""


def _create_role_policy(ctx: _Context, resource: dict[str, Any], inputs: dict[str, Any]) -> Created:
    role = _require(ctx, resource, inputs, "role")
    name = _name(inputs, resource)
    ctx.client("iam").put_role_policy(
        RoleName=role, PolicyName=name, PolicyDocument=_require(ctx, resource, inputs, "policy")
    )
    return Created(resource["urn"], resource["type"], name, None, f"{role}:{name}")


def _create_model_package_group(
    ctx: _Context, resource: dict[str, Any], inputs: dict[str, Any]
) -> Created:
    name = _require(ctx, resource, inputs, "modelPackageGroupName")
    arn = ctx.client("sagemaker").create_model_package_group(
        **_drop_none(
            {
                "ModelPackageGroupName": name,
                "ModelPackageGroupDescription": inputs.get("modelPackageGroupDescription"),
                "Tags": _tag_list(inputs),
            }
        )
    )["ModelPackageGroupArn"]
    return Created(resource["urn"], resource["type"], name, arn)


def _create_pipeline(ctx: _Context, resource: dict[str, Any], inputs: dict[str, Any]) -> Created:
    name = _require(ctx, resource, inputs, "pipelineName")
    arn = ctx.client("sagemaker").create_pipeline(
        **_drop_none(
            {
                "PipelineName": name,
                "PipelineDisplayName": inputs.get("pipelineDisplayName") or name,
                "PipelineDefinition": _require(ctx, resource, inputs, "pipelineDefinition"),
                "PipelineDescription": inputs.get("pipelineDescription"),
                "RoleArn": _require(ctx, resource, inputs, "roleArn"),
                "Tags": _tag_list(inputs),
            }
        )
    )["PipelineArn"]
    return Created(resource["urn"], resource["type"], name, arn)


def _pascal(value: Any) -> Any:
    """camelCase plan inputs to the PascalCase of the SageMaker API (`s3Uri` -> `S3Uri`)."""
    if isinstance(value, dict):
        return {k[0].upper() + k[1:]: _pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pascal(v) for v in value]
    return value


def _create_feature_group(
    ctx: _Context, resource: dict[str, Any], inputs: dict[str, Any]
) -> Created:
    name = _require(ctx, resource, inputs, "featureGroupName")
    arn = ctx.client("sagemaker").create_feature_group(
        **_drop_none(
            {
                "FeatureGroupName": name,
                "RecordIdentifierFeatureName": _require(
                    ctx, resource, inputs, "recordIdentifierFeatureName"
                ),
                "EventTimeFeatureName": _require(ctx, resource, inputs, "eventTimeFeatureName"),
                "FeatureDefinitions": _pascal(
                    _require(ctx, resource, inputs, "featureDefinitions")
                ),
                "OnlineStoreConfig": _pascal(inputs.get("onlineStoreConfig")),
                "OfflineStoreConfig": _pascal(inputs.get("offlineStoreConfig")),
                "RoleArn": inputs.get("roleArn"),
                "Description": inputs.get("description"),
                "Tags": _tag_list(inputs),
            }
        )
    )["FeatureGroupArn"]
    return Created(resource["urn"], resource["type"], name, arn)


def _create_glue_database(
    ctx: _Context, resource: dict[str, Any], inputs: dict[str, Any]
) -> Created:
    name = _name(inputs, resource)
    ctx.client("glue").create_database(
        DatabaseInput=_drop_none({"Name": name, "Description": inputs.get("description")})
    )
    return Created(resource["urn"], resource["type"], name, ctx.arn("glue", f"database/{name}"))


def _dimensions(value: Mapping[str, Any] | None) -> list[dict[str, str]]:
    return [{"Name": k, "Value": str(v)} for k, v in sorted((value or {}).items())]


def _metric_queries(queries: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if not queries:
        return None
    converted = []
    for query in queries:
        stat = query.get("metric")
        converted.append(
            _drop_none(
                {
                    "Id": query.get("id"),
                    "Expression": query.get("expression"),
                    "Label": query.get("label"),
                    "ReturnData": query.get("returnData"),
                    "Period": _int(query.get("period")),
                    "MetricStat": _drop_none(
                        {
                            "Metric": _drop_none(
                                {
                                    "Namespace": stat.get("namespace"),
                                    "MetricName": stat.get("metricName"),
                                    "Dimensions": _dimensions(stat.get("dimensions")),
                                }
                            ),
                            "Period": _int(stat.get("period")),
                            "Stat": stat.get("stat"),
                            "Unit": stat.get("unit"),
                        }
                    )
                    if stat
                    else None,
                }
            )
        )
    return converted


def _create_alarm(ctx: _Context, resource: dict[str, Any], inputs: dict[str, Any]) -> Created:
    """moto creates alarms in OK; CloudWatch in INSUFFICIENT_DATA, which the evaluator relies on
    (a first breach is an INSUFFICIENT_DATA -> ALARM change), so the state is set as AWS has it."""
    name = _name(inputs, resource)
    ctx.client("cloudwatch").put_metric_alarm(
        **_drop_none(
            {
                "AlarmName": name,
                "AlarmDescription": inputs.get("alarmDescription"),
                "ActionsEnabled": inputs.get("actionsEnabled"),
                "AlarmActions": inputs.get("alarmActions"),
                "OKActions": inputs.get("okActions"),
                "InsufficientDataActions": inputs.get("insufficientDataActions"),
                "Namespace": inputs.get("namespace"),
                "MetricName": inputs.get("metricName"),
                "Dimensions": _dimensions(inputs.get("dimensions")),
                "Statistic": inputs.get("statistic"),
                "ExtendedStatistic": inputs.get("extendedStatistic"),
                "Period": _int(inputs.get("period")),
                "Unit": inputs.get("unit"),
                "EvaluationPeriods": _int(_require(ctx, resource, inputs, "evaluationPeriods")),
                "DatapointsToAlarm": _int(inputs.get("datapointsToAlarm")),
                "Threshold": inputs.get("threshold"),
                "ComparisonOperator": _require(ctx, resource, inputs, "comparisonOperator"),
                "TreatMissingData": inputs.get("treatMissingData"),
                "EvaluateLowSampleCountPercentile": inputs.get("evaluateLowSampleCountPercentiles"),
                "Metrics": _metric_queries(inputs.get("metricQueries")),
                "ThresholdMetricId": inputs.get("thresholdMetricId"),
                "Tags": _tag_list(inputs),
            }
        )
    )
    ctx.client("cloudwatch").set_alarm_state(
        AlarmName=name,
        StateValue="INSUFFICIENT_DATA",
        StateReason="Unchecked: Initial alarm creation",
    )
    return Created(resource["urn"], resource["type"], name, ctx.arn("cloudwatch", f"alarm:{name}"))


def _create_rule(ctx: _Context, resource: dict[str, Any], inputs: dict[str, Any]) -> Created:
    name = _name(inputs, resource)
    state = inputs.get("state")
    if state is None and "isEnabled" in inputs:
        state = "ENABLED" if inputs["isEnabled"] else "DISABLED"
    arn = ctx.client("events").put_rule(
        **_drop_none(
            {
                "Name": name,
                "EventPattern": inputs.get("eventPattern"),
                "ScheduleExpression": inputs.get("scheduleExpression"),
                "State": state,
                "Description": inputs.get("description"),
                "EventBusName": inputs.get("eventBusName"),
                "RoleArn": inputs.get("roleArn"),
                "Tags": _tag_list(inputs),
            }
        )
    )["RuleArn"]
    return Created(resource["urn"], resource["type"], name, arn)


def _create_target(ctx: _Context, resource: dict[str, Any], inputs: dict[str, Any]) -> Created:
    rule = _require(ctx, resource, inputs, "rule")
    target_id = str(inputs.get("targetId") or resource["name"])[:64]
    retry = inputs.get("retryPolicy") or {}
    dead_letter = inputs.get("deadLetterConfig") or {}
    transformer = inputs.get("inputTransformer") or {}
    target = _drop_none(
        {
            "Id": target_id,
            "Arn": _require(ctx, resource, inputs, "arn"),
            "Input": inputs.get("input"),
            "InputPath": inputs.get("inputPath"),
            "InputTransformer": _drop_none(
                {
                    "InputPathsMap": transformer.get("inputPaths"),
                    "InputTemplate": transformer.get("inputTemplate"),
                }
            ),
            "RoleArn": inputs.get("roleArn"),
            "RetryPolicy": _drop_none(
                {
                    "MaximumRetryAttempts": _int(retry.get("maximumRetryAttempts")),
                    "MaximumEventAgeInSeconds": _int(retry.get("maximumEventAgeInSeconds")),
                }
            ),
            "DeadLetterConfig": _drop_none({"Arn": dead_letter.get("arn")}),
        }
    )
    response = ctx.client("events").put_targets(
        **_drop_none(
            {
                "Rule": rule,
                "EventBusName": inputs.get("eventBusName"),
                "Targets": [target],
            }
        )
    )
    if response.get("FailedEntryCount"):
        raise ProvisionError(
            f"{resource['urn']}: the emulator refused the target: {response.get('FailedEntries')}"
        )
    return Created(
        resource["urn"], resource["type"], target_id, target["Arn"], f"{rule}/{target_id}"
    )


def _create_parameter(ctx: _Context, resource: dict[str, Any], inputs: dict[str, Any]) -> Created:
    name = _name(inputs, resource)
    value = inputs.get("value")
    if value is None:
        value = inputs.get("insecureValue")
    if value is None:
        _require(ctx, resource, inputs, "value")
    ctx.client("ssm").put_parameter(
        **_drop_none(
            {
                "Name": name,
                "Value": value,
                "Type": inputs.get("type") or "String",
                "Description": inputs.get("description"),
                "Tier": inputs.get("tier"),
                "DataType": inputs.get("dataType"),
                "Tags": _tag_list(inputs),
            }
        )
    )
    return Created(
        resource["urn"], resource["type"], name, ctx.arn("ssm", f"parameter/{name.lstrip('/')}")
    )


def _create_log_group(ctx: _Context, resource: dict[str, Any], inputs: dict[str, Any]) -> Created:
    logs = ctx.client("logs")
    name = _name(inputs, resource)
    logs.create_log_group(
        **_drop_none(
            {
                "logGroupName": name,
                "kmsKeyId": inputs.get("kmsKeyId"),
                "tags": dict(inputs.get("tags") or {}),
            }
        )
    )
    if inputs.get("retentionInDays"):
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(inputs["retentionInDays"]))
    return Created(resource["urn"], resource["type"], name, ctx.arn("logs", f"log-group:{name}"))


_CREATORS: dict[str, _Creator] = {
    _KEY: _create_key,
    "aws:kms/alias:Alias": _create_alias,
    _BUCKET: _create_bucket,
    "aws:s3/bucketVersioning:BucketVersioning": _create_versioning,
    _ENCRYPTION: _create_encryption,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _create_public_access_block,
    "aws:s3/bucketObjectv2:BucketObjectv2": _create_object,
    _TOPIC: _create_topic,
    _ROLE: _create_role,
    "aws:iam/rolePolicy:RolePolicy": _create_role_policy,
    _GROUP: _create_model_package_group,
    "aws:sagemaker/pipeline:Pipeline": _create_pipeline,
    "aws:sagemaker/featureGroup:FeatureGroup": _create_feature_group,
    "aws:glue/catalogDatabase:CatalogDatabase": _create_glue_database,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _create_alarm,
    _RULE: _create_rule,
    "aws:cloudwatch/eventTarget:EventTarget": _create_target,
    "aws:ssm/parameter:Parameter": _create_parameter,
    "aws:cloudwatch/logGroup:LogGroup": _create_log_group,
}
CREATED_TYPES: frozenset[str] = frozenset(_CREATORS)
"""The resource types provisioning creates in the emulator; every other type is skipped."""


def describe(provisioned: Provisioned) -> str:
    """A short account of a provisioning run, for the demo's console."""
    lines = [f"created {len(provisioned.created)} resources, skipped {len(provisioned.skipped)}"]
    reasons: dict[str, list[str]] = {}
    for skipped in provisioned.skipped.values():
        if skipped.reason != COMPONENT_REASON:
            reasons.setdefault(f"{skipped.type}: {skipped.reason}", []).append(skipped.urn)
    lines += [f"  skipped {len(urns)} x {reason}" for reason, urns in sorted(reasons.items())]
    lines += [f"  secret withheld: {entry}" for entry in provisioned.withheld_secrets]
    return "\n".join(lines)
