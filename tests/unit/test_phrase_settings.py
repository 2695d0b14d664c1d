"""PhraseSettings defaults, environment overrides and validation."""

from __future__ import annotations

import pytest

from phrase_connector.phrase.settings import PhraseSettings


def test_defaults_point_at_the_eu_data_center() -> None:
    settings = PhraseSettings.from_env({})

    assert settings.tms_base_url == "https://cloud.memsource.com/web"
    assert settings.platform_base_url == "https://eu.phrase.com/idm"
    assert settings.client_type == "phrase-connector"
    assert settings.timeout == (5.0, 60.0)
    assert settings.max_attempts == 5
    assert settings.backoff_base == 0.5
    assert settings.backoff_cap == 20.0
    assert settings.deadline_margin_seconds == 5.0
    assert settings.concurrency_backoff_seconds == 60.0


def test_environment_overrides() -> None:
    settings = PhraseSettings.from_env(
        {
            "PHRASE_TMS_BASE_URL": "https://us.cloud.memsource.com/web/",
            "PHRASE_PLATFORM_BASE_URL": "https://us.phrase.com/idm",
            "PHRASE_USER_AGENT_CONTACT": "l10n-ops@example.com",
            "PHRASE_READ_TIMEOUT": "30",
            "PHRASE_MAX_ATTEMPTS": "3",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        }
    )

    assert settings.tms_base_url == "https://us.cloud.memsource.com/web"
    assert settings.platform_base_url == "https://us.phrase.com/idm"
    assert settings.read_timeout == 30.0
    assert settings.max_attempts == 3
    assert settings.host_version == "AWS_Lambda_python3.13"
    assert settings.user_agent == "phrase-connector/0.1.0 (+l10n-ops@example.com)"


def test_user_agent_without_contact() -> None:
    assert PhraseSettings().user_agent == "phrase-connector/0.1.0"


@pytest.mark.parametrize(
    ("variable", "value", "expected_form"),
    [
        ("PHRASE_TMS_BASE_URL", "cloud.memsource.com/web", "http(s) URL"),
        ("PHRASE_PLATFORM_BASE_URL", "ftp://eu.phrase.com/idm", "http(s) URL"),
        ("PHRASE_READ_TIMEOUT", "soon", "number of seconds"),
        ("PHRASE_CONNECT_TIMEOUT", "0", "greater than 0"),
        ("PHRASE_BACKOFF_CAP", "inf", "finite"),
        ("PHRASE_MAX_ATTEMPTS", "2.5", "integer"),
        ("PHRASE_MAX_ATTEMPTS", "0", "1 or more"),
        ("PHRASE_DEADLINE_MARGIN_SECONDS", "-1", "0 or more"),
    ],
)
def test_invalid_values_name_the_variable(variable: str, value: str, expected_form: str) -> None:
    with pytest.raises(ValueError) as caught:
        PhraseSettings.from_env({variable: value})

    assert variable in str(caught.value)
    assert expected_form in str(caught.value)


def test_source_data_for_the_memsource_header() -> None:
    settings = PhraseSettings(client_version="1.2.3", host_version="AWS_Lambda_python3.13")

    assert settings.source_data == {
        "clientType": "phrase-connector",
        "clientVersion": "1.2.3",
        "hostVersion": "AWS_Lambda_python3.13",
    }
