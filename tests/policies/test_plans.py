"""Real plans: the three stacks pass every mandatory rule, the insecure fixture fails with
exactly its known violations, and the pack served over gRPC agrees with the in-process run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from pulumi.runtime.proto import analyzer_pb2_grpc

from infra.plan.runner import plan_stack
from infra.policy import evaluate, load_capture
from infra.policy.evaluate import analyze_with
from tests.policies.helpers import PACK, ROOT

PYTHON = sys.executable


def plan(tmp_path: Path, stack: str, project_dir: Path = ROOT) -> Path:
    out = tmp_path / f"{project_dir.name}-{stack}.json"
    result = plan_stack(project_dir, stack, out, ["--no-policy"])
    assert result.ok, result.error
    return out


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_real_stack_passes_every_mandatory_rule(tmp_path: Path, stack: str) -> None:
    report = evaluate(load_capture(plan(tmp_path, stack)), PACK)
    assert report.mandatory_count == 0, [v.message for v in report.violations]
    assert report.environment == stack


INSECURE = ROOT / "tests" / "fixtures" / "insecure"
EXPECTED = sorted(
    [
        ("iam-no-aws-managed-admin-policies", "mandatory", "model-role-sagemaker-full-access"),
        ("s3-bucket-access-logging", "mandatory", "public-data"),
        ("s3-bucket-acls-disabled", "mandatory", "public-data"),
        ("s3-bucket-kms-encryption", "mandatory", "public-data"),
        ("s3-bucket-public-access-block", "mandatory", "public-data"),
        ("s3-bucket-tls-only", "mandatory", "public-data"),
        ("s3-bucket-versioning", "mandatory", "public-data"),
        ("sagemaker-endpoint-data-capture", "mandatory", "endpoint-config"),
        ("monitoring-endpoint-alarms", "advisory", "endpoint"),
        ("monitoring-endpoint-alarms", "advisory", "endpoint"),
        ("stack-endpoint-monitoring-schedule", "advisory", "endpoint"),
    ]
)


def test_insecure_fixture_fails_with_exactly_the_expected_violations(tmp_path: Path) -> None:
    report = evaluate(load_capture(plan(tmp_path, "dev", INSECURE)), PACK)
    got = sorted(
        (v.policy_name, v.enforcement_level, (v.urn or "").split("::")[-1])
        for v in report.violations
    )
    assert got == EXPECTED
    assert report.mandatory_count == 8


class _StubServicer:
    """A gRPC stub called with the servicer's (request, context) signature."""

    def __init__(self, stub: analyzer_pb2_grpc.AnalyzerStub) -> None:
        self.stub = stub

    def __getattr__(self, name: str):
        method = getattr(self.stub, name)
        return lambda request, _context: method(request, timeout=30)


def test_pack_served_over_grpc_gives_the_in_process_verdicts(tmp_path: Path) -> None:
    capture = load_capture(plan(tmp_path, "dev", INSECURE))
    in_process = evaluate(capture, PACK).to_json()
    # The pack runs as its own program, like the engine starts a Python policy pack: it prints
    # the port it serves on, then blocks until killed.
    server = subprocess.Popen(
        [PYTHON, "-u", str(PACK / "__main__.py")], cwd=PACK, stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(server.stdout.readline().strip())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            over_grpc = analyze_with(
                _StubServicer(analyzer_pb2_grpc.AnalyzerStub(channel)), capture, PACK
            )
    finally:
        server.kill()
        server.wait(timeout=10)
    assert over_grpc.to_json() == in_process
    assert in_process["mandatoryCount"] == 8
