"""Plugin variants refuse to deploy or start when a setting they require is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from phrase_connector.config import ConfigurationError, ConnectorSettings
from phrase_connector_local.cli import main
from phrase_connector_local.localize import RunOptions, variant_environment
from phrase_connector_local.runtime import LocalRuntimeError
from phrase_connector_local.template import load_template

from workflow_helpers import local_stack

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
BASE_ENV = {
    "FLOW_TABLE": "flows", "EVENT_TABLE": "events", "SOURCE_BUCKET": "source", "TARGET_BUCKET": "target",
    "EVENT_QUEUE_URL": "https://queue.invalid/q", "PHRASE_API_TOKEN_SECRET": "api", "WEBHOOK_TOKEN_SECRET": "hook",
    "CALLBACK_SECRET": "callback", "PHRASE_TEMPLATE_UID": "template",
}


@pytest.mark.parametrize("environment, message", [
    ({"PLUGIN_VARIANT": "live-content", "CONTINUOUS_UPDATES": "true"},
     "PLUGIN_VARIANT=live-content requires PREVIEW_MODE to be generate or supplied"),
    ({"PLUGIN_VARIANT": "live-content", "PREVIEW_MODE": "generate"},
     "PLUGIN_VARIANT=live-content requires CONTINUOUS_UPDATES to be true"),
    ({"PLUGIN_VARIANT": "continuous"}, "PLUGIN_VARIANT=continuous requires CONTINUOUS_UPDATES to be true"),
    ({"NOTIFY_ASSIGNED": "true"}, "NOTIFY_EMAIL_TEMPLATE_ID is missing"),
    ({"PLUGIN_VARIANT": "basic"}, "PLUGIN_VARIANT='basic' is invalid"),
    ({"PREVIEW_MODE": "always"}, "PREVIEW_MODE='always' is invalid"),
    ({"CONTENT_API_PREFIX": "../secrets/"}, "CONTENT_API_PREFIX='../secrets/' is invalid"),
])
def test_settings_reject_incomplete_variant(environment, message):
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ConnectorSettings.from_env({**BASE_ENV, **environment})


@pytest.mark.parametrize("environment", [
    {},
    {"PLUGIN_VARIANT": "canonical"},
    {"PLUGIN_VARIANT": "continuous", "CONTINUOUS_UPDATES": "true"},
    {"PLUGIN_VARIANT": "live-content", "CONTINUOUS_UPDATES": "true", "PREVIEW_MODE": "supplied"},
])
def test_settings_accept_complete_variant(environment):
    settings = ConnectorSettings.from_env({**BASE_ENV, **environment})
    assert settings.plugin_variant == environment.get("PLUGIN_VARIANT", "canonical")


@pytest.mark.workflow
def test_handler_refuses_incomplete_variant():
    with local_stack(environment={"PLUGIN_VARIANT": "live-content", "CONTINUOUS_UPDATES": "true"},
                     webhooks=False) as (runtime, simulator):
        uploaded = runtime.upload_sources({"notes.txt": b"Hello.\n"})
        with pytest.raises(LocalRuntimeError, match="ConfigurationError: PLUGIN_VARIANT=live-content requires "
                                                    "PREVIEW_MODE"):
            runtime.send_event(runtime.s3_event(uploaded))
        assert simulator.calls == []


def test_run_variant_defaults_turn_musts_on():
    options = RunOptions(source_dir=Path("."), output_dir=Path("out"), locales=["de"], variant="live-content")
    assert variant_environment(options) == {"PLUGIN_VARIANT": "live-content", "PREVIEW_MODE": "generate",
                                            "CONTINUOUS_UPDATES": "true"}
    options.variant = "continuous"
    assert variant_environment(options)["CONTINUOUS_UPDATES"] == "true"
    options.variant = "canonical"
    assert variant_environment(options) == {"PLUGIN_VARIANT": "canonical", "PREVIEW_MODE": "none",
                                            "CONTINUOUS_UPDATES": "false"}


@pytest.mark.parametrize("arguments, message", [
    (["--variant", "live-content", "--preview-mode", "none"], "requires PREVIEW_MODE"),
    (["--variant", "continuous", "--continuous-updates", "off"], "requires CONTINUOUS_UPDATES"),
])
def test_cli_refuses_incomplete_variant(arguments, message, tmp_path, capsys):
    code = main(["run", "--source", str(tmp_path), "--out", str(tmp_path / "out"), *arguments])
    assert code == 2
    assert message in capsys.readouterr().err


# ---- template Rules -------------------------------------------------------------------------------

def _evaluate(expression: Any, parameters: dict[str, str]) -> Any:
    """Evaluate the intrinsic functions that template Rules use (Ref, Equals, Not, And, Or)."""
    if not isinstance(expression, dict):
        return expression
    (function, argument), = expression.items()
    if function == "Ref":
        return parameters[argument]
    values = [_evaluate(item, parameters) for item in argument]
    if function in ("Fn::Equals", "Equals"):
        return values[0] == values[1]
    if function in ("Fn::Not", "Not"):
        return not values[0]
    if function in ("Fn::And", "And"):
        return all(values)
    if function in ("Fn::Or", "Or"):
        return any(values)
    raise AssertionError(f"unsupported rule function {function}")


def _failed_assertions(overrides: dict[str, str]) -> list[str]:
    template = load_template(TEMPLATE_PATH)
    parameters = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    parameters.update(overrides)
    failed = []
    for rule in template["Rules"].values():
        if "RuleCondition" in rule and not _evaluate(rule["RuleCondition"], parameters):
            continue
        failed.extend(a["AssertDescription"] for a in rule["Assertions"] if not _evaluate(a["Assert"], parameters))
    return failed


def test_template_rules_refuse_incomplete_variants():
    assert _failed_assertions({}) == []
    live = _failed_assertions({"PluginVariant": "live-content"})
    assert any("PreviewMode" in text for text in live)
    assert any("ContinuousUpdates" in text for text in live)
    assert _failed_assertions({"PluginVariant": "live-content", "PreviewMode": "generate",
                               "ContinuousUpdates": "true"}) == []
    continuous = _failed_assertions({"PluginVariant": "continuous"})
    assert len(continuous) == 1
    assert "ContinuousUpdates" in continuous[0]
    assert _failed_assertions({"PluginVariant": "continuous", "ContinuousUpdates": "true"}) == []
    assert _failed_assertions({"NotifyAssigned": "true"}) == [
        "NotifyAssigned true requires NotifyEmailTemplateId, the e-mail template to notify with."
    ]


def test_template_passes_variant_settings_to_functions():
    template = load_template(TEMPLATE_PATH)
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["PLUGIN_VARIANT"] == {"Ref": "PluginVariant"}
    assert variables["PREVIEW_MODE"] == {"Ref": "PreviewMode"}
    assert variables["CONTINUOUS_UPDATES"] == {"Ref": "ContinuousUpdates"}
    assert template["Parameters"]["PluginVariant"]["AllowedValues"] == ["canonical", "live-content", "continuous"]
