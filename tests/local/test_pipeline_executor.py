"""The local pipeline executor runs a stored definition as SageMaker wires it."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from infra.local.pipeline_executor import PipelineExecutor

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/pipeline"
SCRIPT = """
import argparse, json, pathlib, sys
p = argparse.ArgumentParser()
p.add_argument("--input"); p.add_argument("--output"); p.add_argument("--fail", default="no")
a = p.parse_args()
if a.fail == "yes":
    sys.exit("bad batch: 3 rows failed validation")
rows = json.loads(pathlib.Path(a.input, "data.json").read_text())
rows = [round(r, 2) for r in rows]
score = round(sum(rows) / len(rows), 2)
out = pathlib.Path(a.output); out.mkdir(parents=True, exist_ok=True)
(out / "report.json").write_text(json.dumps({"metrics": {"score": {"value": score}}}))
"""


def _definition(fail: str = "no") -> dict:
    report_uri = {"Get": "Steps.Score.ProcessingOutputConfig.Outputs['report'].S3Output.S3Uri"}
    score = {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Score.PropertyFiles.Report"},
            "Path": "metrics.score.value",
        }
    }
    return {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5}],
        "Steps": [
            {
                "Name": "Gate",
                "Type": "Condition",
                "Arguments": {
                    "Conditions": [
                        {
                            "Type": "GreaterThanOrEqualTo",
                            "LeftValue": score,
                            "RightValue": {"Get": "Parameters.Threshold"},
                        }
                    ],
                    "IfSteps": [
                        {
                            "Name": "Register",
                            "Type": "RegisterModel",
                            "Arguments": {
                                "ModelPackageGroupName": "group",
                                "ModelApprovalStatus": "Approved",
                                "InferenceSpecification": {
                                    "Containers": [
                                        {
                                            "Image": "img",
                                            "ModelDataUrl": {
                                                "Std:Join": {
                                                    "On": "/",
                                                    "Values": [report_uri, "model.tar.gz"],
                                                }
                                            },
                                        }
                                    ],
                                    "SupportedContentTypes": ["application/json"],
                                    "SupportedResponseMIMETypes": ["application/json"],
                                },
                            },
                        }
                    ],
                    "ElseSteps": [
                        {
                            "Name": "TooLow",
                            "Type": "Fail",
                            "Arguments": {
                                "ErrorMessage": {
                                    "Std:Join": {
                                        "On": " ",
                                        "Values": [
                                            "score",
                                            score,
                                            "is below",
                                            {"Get": "Parameters.Threshold"},
                                        ],
                                    }
                                }
                            },
                        }
                    ],
                },
            },
            {
                "Name": "Score",
                "Type": "Processing",
                "Arguments": {
                    "ProcessingResources": {
                        "ClusterConfig": {
                            "InstanceCount": 1,
                            "InstanceType": "ml.m5.large",
                            "VolumeSizeInGB": 30,
                        }
                    },
                    "AppSpecification": {
                        "ImageUri": "img",
                        "ContainerEntrypoint": [
                            "python3",
                            "/opt/ml/processing/input/code/score.py",
                        ],
                        "ContainerArguments": [
                            "--input",
                            "/opt/ml/processing/input/data",
                            "--output",
                            "/opt/ml/processing/output/report",
                            "--fail",
                            fail,
                        ],
                    },
                    "RoleArn": ROLE,
                    "ProcessingInputs": [
                        {
                            "InputName": "data",
                            "S3Input": {
                                "S3Uri": "s3://work/in",
                                "LocalPath": "/opt/ml/processing/input/data",
                                "S3DataType": "S3Prefix",
                                "S3InputMode": "File",
                            },
                        },
                        {
                            "InputName": "code",
                            "S3Input": {
                                "S3Uri": "s3://work/code/score.py",
                                "LocalPath": "/opt/ml/processing/input/code",
                                "S3DataType": "S3Prefix",
                                "S3InputMode": "File",
                            },
                        },
                    ],
                    "ProcessingOutputConfig": {
                        "Outputs": [
                            {
                                "OutputName": "report",
                                "S3Output": {
                                    "S3Uri": "s3://work/out/report",
                                    "LocalPath": "/opt/ml/processing/output/report",
                                    "S3UploadMode": "EndOfJob",
                                },
                            }
                        ]
                    },
                },
                "PropertyFiles": [
                    {
                        "PropertyFileName": "Report",
                        "OutputName": "report",
                        "FilePath": "report.json",
                    }
                ],
            },
        ],
    }


@pytest.fixture
def aws(tmp_path: Path):
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        s3.create_bucket(Bucket="work")
        s3.put_object(Bucket="work", Key="in/data.json", Body=json.dumps([0.6, 0.8, 1.0]))
        s3.put_object(Bucket="work", Key="code/score.py", Body=SCRIPT)
        sagemaker.create_model_package_group(ModelPackageGroupName="group")
        executor = PipelineExecutor(
            s3, sagemaker, tmp_path, region=REGION, account_id="123456789012"
        )
        yield s3, sagemaker, executor


def _start(sagemaker, definition: dict, **parameters) -> str:
    name = f"p{abs(hash(json.dumps(definition, sort_keys=True))) % 10**8}"
    sagemaker.create_pipeline(
        PipelineName=name, PipelineDefinition=json.dumps(definition), RoleArn=ROLE
    )
    response = sagemaker.start_pipeline_execution(
        PipelineName=name,
        PipelineParameters=[{"Name": k, "Value": str(v)} for k, v in parameters.items()],
    )
    return response["PipelineExecutionArn"]


def test_a_condition_reads_the_property_file_an_earlier_step_wrote_and_registers(aws):
    s3, sagemaker, executor = aws
    arn = _start(sagemaker, _definition(), Threshold=0.7)
    result = executor.run(arn)
    assert result.status == "Succeeded", result.failure_reason
    assert [s.name for s in result.steps] == ["Score", "Gate", "Register"]
    assert result.step("Gate").properties == {"Outcome": True}
    report = json.loads(s3.get_object(Bucket="work", Key="out/report/report.json")["Body"].read())
    assert report["metrics"]["score"]["value"] == pytest.approx(0.8)
    (package,) = sagemaker.list_model_packages(ModelPackageGroupName="group")[
        "ModelPackageSummaryList"
    ]
    assert package["ModelApprovalStatus"] == "Approved"
    described = sagemaker.describe_model_package(ModelPackageName=package["ModelPackageArn"])
    url = described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert url == "s3://work/out/report/model.tar.gz"
    status = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
    assert status["PipelineExecutionStatus"] == "Succeeded"


def test_the_else_branch_fails_the_execution_with_the_figures_in_the_reason(aws):
    _, sagemaker, executor = aws
    arn = _start(sagemaker, _definition(), Threshold=0.9)
    result = executor.run(arn)
    assert result.status == "Failed"
    assert "score 0.8" in result.failure_reason and "is below 0.9" in result.failure_reason
    assert (
        sagemaker.list_model_packages(ModelPackageGroupName="group")["ModelPackageSummaryList"]
        == []
    )
    described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
    assert described["PipelineExecutionStatus"] == "Failed"


def test_a_script_that_exits_non_zero_stops_the_execution_before_later_steps(aws):
    _, sagemaker, executor = aws
    result = executor.run(_start(sagemaker, _definition(fail="yes")))
    assert result.status == "Failed"
    assert "bad batch: 3 rows failed validation" in result.failure_reason
    assert [s.name for s in result.steps] == ["Score"]


def test_parameter_defaults_apply_when_the_execution_gives_none(aws):
    _, sagemaker, executor = aws
    result = executor.run(_start(sagemaker, _definition()))
    assert result.parameters == {"Threshold": 0.5}
    assert result.status == "Succeeded"


def test_a_reference_to_a_step_that_does_not_exist_is_reported(aws):
    _, sagemaker, executor = aws
    definition = _definition()
    gate = definition["Steps"][0]["Arguments"]["Conditions"][0]
    gate["RightValue"] = {"Get": "Steps.Missing.Properties.Value"}
    with pytest.raises(Exception, match="step 'Missing' has not run"):
        executor.run(_start(sagemaker, definition))
