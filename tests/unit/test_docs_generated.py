"""The generated pages of docs/ match template.yaml and the state machine definitions."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gen_docs.py"


@pytest.fixture(scope="module")
def gen_docs():
    spec = importlib.util.spec_from_file_location("gen_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_docs_up_to_date(gen_docs):
    for path, expected in gen_docs.generated_pages().items():
        assert path.exists(), f"{path.name} is missing: run python scripts/gen_docs.py"
        assert path.read_text(encoding="utf-8") == expected, (
            f"{path.name} is out of date: run python scripts/gen_docs.py")


def test_configuration_lists_every_parameter(gen_docs):
    template = gen_docs.load_template()
    page = gen_docs.render_configuration(template)
    for name in template["Parameters"]:
        assert f"| `{name}` |" in page


def test_configuration_marks_required_parameter(gen_docs):
    template = {"Parameters": {"Needed": {"Type": "String", "Description": "a | b"},
                               "Level": {"Type": "String", "Default": "INFO", "AllowedValues": ["INFO", "DEBUG"]}}}
    page = gen_docs.render_configuration(template)
    assert "| `Needed` | String | **required** |  | a \\| b |" in page
    assert "`INFO`, `DEBUG`" in page


def test_diagram_has_every_transition(gen_docs):
    definition = {
        "StartAt": "First",
        "States": {
            "First": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                      "Parameters": {"FunctionName": "${OneFunctionArn}"}, "Next": "Pick",
                      "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Broken"}]},
            "Pick": {"Type": "Choice",
                     "Choices": [{"Variable": "$.result.kind", "StringEquals": "done", "Next": "Done"},
                                 {"And": [{"Variable": "$.n", "NumericGreaterThan": 2},
                                          {"Variable": "$.flag", "IsPresent": True}], "Next": "Broken"}],
                     "Default": "First"},
            "Done": {"Type": "Succeed"},
            "Broken": {"Type": "Fail", "Error": "Broken", "Cause": "it broke"},
        },
    }
    lines = gen_docs.render_state_machine(definition, "probe.asl.json")
    page = "\n".join(lines)
    assert "    [*] --> First" in page
    assert "    First --> Pick" in page
    assert "    First --> Broken: catch States.ALL" in page
    assert "    state Pick <<choice>>" in page
    assert "    Pick --> Done: kind = done" in page
    assert "    Pick --> Broken: (n > 2 and flag is present)" in page
    assert "    Pick --> First: otherwise" in page
    assert "    Done --> [*]: succeed" in page
    assert "| `First` | Task | Lambda `OneFunction` |" in page


def test_diagram_quotes_unusual_state_names(gen_docs):
    definition = {"StartAt": "Wait a bit", "States": {"Wait a bit": {"Type": "Wait", "Seconds": 1, "End": True}}}
    page = "\n".join(gen_docs.render_state_machine(definition, "probe.asl.json"))
    assert '    state "Wait a bit" as s0' in page
    assert "    [*] --> s0" in page
    assert "    s0 --> [*]" in page


def test_check_reports_stale_page(gen_docs, tmp_path, monkeypatch, capsys):
    stale_page = tmp_path / "configuration.md"
    stale_page.write_text("old\n", encoding="utf-8")
    monkeypatch.setattr(gen_docs, "generated_pages", lambda: {stale_page: "new\n"})
    monkeypatch.setattr(gen_docs, "REPO_ROOT", tmp_path)

    assert gen_docs.main(["--check"]) == 1
    assert "configuration.md" in capsys.readouterr().err
    assert stale_page.read_text(encoding="utf-8") == "old\n"

    assert gen_docs.main([]) == 0
    assert stale_page.read_text(encoding="utf-8") == "new\n"
