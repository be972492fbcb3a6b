"""The Lambda handlers' redaction policy: the file from S3, the key from Secrets Manager, once per execution
environment, and a one-line error when either cannot be read."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from archiver.aws.activity import activity_config_from_env
from archiver.aws.deployment import deployment_from_env
from archiver.aws.policy import KEY_SECRET_VARIABLE, forget_policies
from archiver.errors import ConfigError
from archiver.formats.policy import read_policy
from archiver.local.moto_server import MOTO_CREDENTIALS, create_bucket

POLICY = '[columns.jobs]\nuser_email = "hash"\n'
KEY = "a policy key kept in secrets manager"


@pytest.fixture(autouse=True)
def cold_start() -> Iterator[None]:
    """Every test is a new execution environment: nothing read yet."""
    parameters.clear_caches()
    forget_policies()
    yield
    parameters.clear_caches()
    forget_policies()


@pytest.fixture
def configured(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A policy object in S3, the key in a secret, and a deployment's environment naming both."""
    bucket = f"cfg-{uuid.uuid4().hex[:12]}"
    create_bucket(aws_env, bucket)
    session = boto3.session.Session(**MOTO_CREDENTIALS)
    s3 = session.client("s3", endpoint_url=aws_env)
    s3.put_object(Bucket=bucket, Key="archiver/policy.toml", Body=POLICY.encode())
    secrets = session.client("secretsmanager", endpoint_url=aws_env)
    arn = secrets.create_secret(Name=f"archiver/policy-key-{uuid.uuid4().hex[:8]}", SecretString=KEY)["ARN"]
    monkeypatch.setenv("ARCHIVER_SOURCE", "s3://workato-logs/")
    monkeypatch.setenv("ARCHIVER_DEST", f"s3://{bucket}/archive/")
    monkeypatch.setenv("ARCHIVER_POLICY", f"s3://{bucket}/archiver/policy.toml")
    monkeypatch.setenv(KEY_SECRET_VARIABLE, arn)
    monkeypatch.delenv("ARCHIVER_POLICY_KEY", raising=False)
    return {"s3": s3, "bucket": bucket, "secrets": secrets, "arn": arn}


def test_the_policy_comes_from_s3_and_its_key_from_the_secret_once_per_environment(
    configured: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a deployment naming a policy object and the key's secret
    want = read_policy(POLICY, key=KEY.encode())
    # WHEN the archiving and the activity handlers read their configuration
    first = deployment_from_env().settings.policy
    monkeypatch.setenv("WORKATO_API_TOKEN_SECRET", configured["arn"])
    monkeypatch.setenv("WORKATO_BASE_URL", "https://www.workato.com")
    activity = activity_config_from_env().settings.policy
    # THEN both run under that policy, keyed by the secret's value
    assert first is not None and activity is not None
    assert first.digest == activity.digest == want.digest and first.key == KEY.encode()
    # WHEN the object and the secret are gone, and a later invocation reads its configuration again
    configured["s3"].delete_object(Bucket=configured["bucket"], Key="archiver/policy.toml")
    configured["secrets"].delete_secret(SecretId=configured["arn"], ForceDeleteWithoutRecovery=True)
    later = deployment_from_env().settings.policy
    # THEN it still has them: they were read once, at the cold start
    assert later is not None and later.digest == want.digest


def test_a_key_secret_that_cannot_be_read_is_one_line_naming_the_variable(
    configured: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a deployment naming a secret that does not exist
    monkeypatch.setenv(KEY_SECRET_VARIABLE, configured["arn"] + "-gone")
    # WHEN a handler reads its configuration; THEN one line naming the variable, and never a value
    with pytest.raises(ConfigError) as caught:
        deployment_from_env()
    message = str(caught.value)
    assert KEY_SECRET_VARIABLE in message and "\n" not in message and KEY not in message


def test_without_a_secret_the_key_comes_from_the_environment_and_the_default_policy_carries_it(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no policy file and no secret, but ARCHIVER_POLICY_KEY (as on the command line)
    monkeypatch.setenv("ARCHIVER_SOURCE", "s3://workato-logs/")
    monkeypatch.setenv("ARCHIVER_DEST", "s3://the-archive/")
    for variable in ("ARCHIVER_POLICY", KEY_SECRET_VARIABLE):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("ARCHIVER_POLICY_KEY", KEY)
    # WHEN a handler reads its configuration; THEN the default policy, with the key (erasures need it)
    policy = deployment_from_env().settings.policy
    assert policy is not None and policy.key == KEY.encode() and policy.digest == read_policy("").digest
