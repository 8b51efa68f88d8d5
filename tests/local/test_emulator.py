"""The emulator is a real HTTP endpoint that every boto3 client in the process reaches."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import boto3
import pytest

from infra.local.emulator import Emulator, EmulatorError


@pytest.fixture
def cloud() -> Iterator[Emulator]:
    """Its own emulator per test: these tests start and stop emulators themselves."""
    with Emulator() as emulator:
        yield emulator


SIGNED_AS_S3 = (
    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


def test_a_raw_http_request_reaches_the_state_boto3_wrote(cloud: Emulator) -> None:
    cloud.client("s3").create_bucket(Bucket="written-by-boto3")
    assert cloud.endpoint_url.startswith("http://127.0.0.1:")

    request = urllib.request.Request(
        cloud.endpoint_url + "/", headers={"Authorization": SIGNED_AS_S3}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        body = response.read().decode()

    assert "<Name>written-by-boto3</Name>" in body


def test_clients_built_from_the_environment_reach_it_in_process_and_in_subprocesses(
    cloud: Emulator,
) -> None:
    boto3.client("s3").create_bucket(Bucket="from-environment")
    script = "import boto3; print(boto3.client('s3').list_buckets()['Buckets'])"

    out = subprocess.run(
        [sys.executable, "-c", script],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout

    assert "from-environment" in out
    assert os.environ["AWS_REGION"] == cloud.region == os.environ["AWS_DEFAULT_REGION"]


def test_the_environment_is_restored_on_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_PROFILE", "someones-real-profile")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)

    with Emulator() as cloud:
        assert os.environ["AWS_ENDPOINT_URL"] == cloud.endpoint_url
        assert "AWS_PROFILE" not in os.environ
        assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"

    assert os.environ["AWS_REGION"] == "eu-west-1"
    assert os.environ["AWS_PROFILE"] == "someones-real-profile"
    assert "AWS_ENDPOINT_URL" not in os.environ


def test_each_emulator_starts_from_an_empty_account() -> None:
    with Emulator() as first:
        first.client("s3").create_bucket(Bucket="left-behind")
    with Emulator() as second:
        assert second.client("s3").list_buckets()["Buckets"] == []


def test_a_second_active_emulator_is_refused(cloud: Emulator) -> None:
    with pytest.raises(EmulatorError, match="already active"):
        with Emulator():
            pass
    assert os.environ["AWS_ENDPOINT_URL"] == cloud.endpoint_url
