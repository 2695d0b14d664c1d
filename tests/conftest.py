"""Shared fixtures: fake AWS credentials so nothing can reach a real account."""

from __future__ import annotations

import os

import pytest

# Set before any boto3 client exists, so a missed mock fails instead of calling AWS.
for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}.items():
    os.environ[_name] = _value
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")


@pytest.fixture
def aws():
    """A fresh moto backend with the connector's cached clients reset around it."""
    from moto import mock_aws

    from phrase_connector import aws as connector_aws

    with mock_aws():
        connector_aws.reset_clients()
        yield
    connector_aws.reset_clients()
