"""Least-privilege checks on template.yaml's IAM policies, and the operator alarms it declares.

Every function and the state machine may name only the stack's own resources. SAM policy templates
must take Ref or GetAtt of a resource in the template as arguments. Inline statements must build
their resources from those resources or the stack name. `Resource: "*"` is allowed only for the
task token APIs (states:SendTaskSuccess, SendTaskFailure, SendTaskHeartbeat), which support no
resource-level permissions.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from phrase_connector_local.template import load_template

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"

TASK_TOKEN_ACTIONS = {"states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"}

# SAM policy template arguments that are not resources of the stack but still scope the policy:
# the account's default event bus is the bus the connector puts its events on.
ALLOWED_LITERAL_ARGUMENTS = {("EventBridgePutEventsPolicy", "EventBusName"): {"default"}}

SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _names_stack_resource(value: Any, resource_ids: set[str]) -> bool:
    """Tell whether an intrinsic value is built from a resource of the stack or the stack name."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    (function, argument), = value.items()
    if function == "Ref":
        return argument in resource_ids
    if function == "Fn::GetAtt":
        return argument[0] in resource_ids
    if function == "Fn::Sub":
        text = argument if isinstance(argument, str) else argument[0]
        variables = {name.split(".", 1)[0] for name in SUB_VARIABLE.findall(text)}
        return bool(variables & (resource_ids | {"AWS::StackName"}))
    return False


def policy_violations(owner: str, policies: Any, resource_ids: set[str]) -> list[str]:
    """List every way the policies of `owner` reach beyond the stack's own resources."""
    problems: list[str] = []
    if not isinstance(policies, list):
        return [f"{owner}: Policies must be a list of SAM policy templates or statements, got {policies!r}"]

    for policy in policies:
        if not isinstance(policy, dict) or len(policy) != 1:
            problems.append(f"{owner}: managed policy or unexpected entry {policy!r}")
            continue
        (name, argument), = policy.items()
        if name == "Statement":
            problems.extend(_statement_violations(owner, argument, resource_ids))
        else:
            problems.extend(_template_violations(owner, name, argument, resource_ids))
    return problems


def _template_violations(owner: str, name: str, argument: Any, resource_ids: set[str]) -> list[str]:
    if not name.endswith("Policy"):
        return [f"{owner}: {name} is not a SAM policy template"]
    if not isinstance(argument, dict) or not argument:
        return [f"{owner}: {name} has no resource argument, so it is not scoped"]
    problems = []
    for key, value in argument.items():
        if isinstance(value, str) and value in ALLOWED_LITERAL_ARGUMENTS.get((name, key), set()):
            continue
        if not _names_stack_resource(value, resource_ids):
            problems.append(f"{owner}: {name}.{key}={value!r} does not name a resource of the stack")
    return problems


def _statement_violations(owner: str, statements: Any, resource_ids: set[str]) -> list[str]:
    problems = []
    for statement in _as_list(statements):
        actions = [str(action) for action in _as_list(statement.get("Action", []))]
        if statement.get("Effect") != "Allow":
            problems.append(f"{owner}: statement with Effect {statement.get('Effect')!r}")
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{owner}: statement uses NotAction or NotResource")
        for action in actions:
            if "*" in action:
                problems.append(f"{owner}: wildcard action {action!r}")
        for resource in _as_list(statement.get("Resource", [])):
            if resource == "*":
                if not set(actions) <= TASK_TOKEN_ACTIONS:
                    problems.append(f"{owner}: Resource '*' for {sorted(set(actions) - TASK_TOKEN_ACTIONS)}")
            elif not _names_stack_resource(resource, resource_ids):
                problems.append(f"{owner}: resource {resource!r} is not built from the stack's resources")
    return problems


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


def _principals(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    principal_types = {"AWS::Serverless::Function", "AWS::Serverless::StateMachine"}
    return {name: resource for name, resource in template["Resources"].items()
            if resource["Type"] in principal_types}


def test_template_has_functions_and_state_machine(template):
    types = [resource["Type"] for resource in _principals(template).values()]
    assert types.count("AWS::Serverless::Function") >= 8
    assert types.count("AWS::Serverless::StateMachine") == 1


def test_every_principal_has_scoped_policies(template):
    resource_ids = set(template["Resources"])
    for name, resource in _principals(template).items():
        policies = resource["Properties"].get("Policies")
        assert policies, f"{name} has no Policies: it would run with SAM's default role"
        assert policy_violations(name, policies, resource_ids) == []


def test_wildcard_resource_only_for_task_tokens(template):
    wildcard_actions: set[str] = set()
    for resource in _principals(template).values():
        for policy in resource["Properties"].get("Policies", []):
            for statement in _as_list(policy.get("Statement", [])) if isinstance(policy, dict) else []:
                if "*" in _as_list(statement.get("Resource", [])):
                    wildcard_actions.update(_as_list(statement["Action"]))
    assert wildcard_actions, "expected the task token statements to use Resource '*'"
    assert wildcard_actions <= TASK_TOKEN_ACTIONS


def test_no_globals_policies_or_roles(template):
    function_globals = template.get("Globals", {}).get("Function", {})
    assert "Policies" not in function_globals
    assert "Role" not in function_globals
    for name, resource in _principals(template).items():
        assert "Role" not in resource["Properties"], f"{name} brings its own role, which this test cannot check"


@pytest.mark.parametrize("policies, expected", [
    (["AmazonS3FullAccess"], "managed policy"),
    ([{"S3ReadPolicy": {"BucketName": "someone-elses-bucket"}}], "does not name a resource"),
    ([{"DynamoDBCrudPolicy": {"TableName": {"Ref": "UnknownTable"}}}], "does not name a resource"),
    ([{"Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": {"Fn::Sub": "${SourceBucket.Arn}/*"}}]}],
     "wildcard action"),
    ([{"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}]}], "Resource '*'"),
    ([{"Statement": [{"Effect": "Allow", "Action": ["states:SendTaskSuccess", "sqs:SendMessage"],
                      "Resource": "*"}]}], "Resource '*'"),
    ([{"Statement": [{"Effect": "Allow", "Action": ["sqs:SendMessage"],
                      "Resource": "arn:aws:sqs:us-east-1:123456789012:other"}]}], "not built from"),
    ("AWSLambdaBasicExecutionRole", "must be a list"),
])
def test_checker_rejects_broad_policy(policies, expected):
    problems = policy_violations("Probe", policies, {"SourceBucket", "FlowTable"})
    assert problems, f"no violation found for {policies!r}"
    assert any(expected in problem for problem in problems), problems


def test_checker_accepts_scoped_policy():
    policies = [
        {"DynamoDBCrudPolicy": {"TableName": {"Ref": "FlowTable"}}},
        {"EventBridgePutEventsPolicy": {"EventBusName": "default"}},
        {"Statement": [{"Effect": "Allow", "Action": ["states:SendTaskSuccess"], "Resource": "*"}]},
        {"Statement": [{"Effect": "Allow", "Action": ["states:StartExecution"],
                        "Resource": {"Fn::Sub": "arn:aws:states:::stateMachine:${AWS::StackName}-flow"}}]},
    ]
    assert policy_violations("Probe", policies, {"FlowTable"}) == []


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: resource["Properties"] for name, resource in template["Resources"].items()
            if resource["Type"] == "AWS::CloudWatch::Alarm"}


def test_every_function_has_error_and_throttle_alarms(template):
    watched = {(props.get("MetricName"), props["Dimensions"][0]["Value"].get("Ref"))
               for props in _alarms(template).values()
               if props.get("Namespace") == "AWS/Lambda" and props.get("AlarmActions")}
    functions = [name for name, resource in template["Resources"].items()
                 if resource["Type"] == "AWS::Serverless::Function"]
    for function in functions:
        assert ("Errors", function) in watched, f"{function} has no Errors alarm"
        assert ("Throttles", function) in watched, f"{function} has no Throttles alarm"


def test_operator_alarms_notify_the_topic(template):
    resources = template["Resources"]
    notifying = [name for name, resource in resources.items()
                 if resource["Type"] in {"AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"}
                 and resource["Properties"].get("AlarmActions")]
    for name in notifying:
        assert resources[name]["Properties"]["AlarmActions"] == [{"Ref": "OperatorTopic"}], name

    metrics = {props.get("MetricName") for name, props in _alarms(template).items() if name in notifying}
    assert {"WebhookRejected", "ApproximateNumberOfMessagesVisible", "PhraseRateLimited"} <= metrics
    assert "WebhooksMissingAlarm" in notifying
    assert "FlowFailuresAlarm" in notifying


def test_webhook_silence_treats_missing_data_as_breaching(template):
    silence = template["Resources"]["WebhookSilenceAlarm"]["Properties"]
    assert silence["MetricName"] == "WebhookAccepted"
    assert silence["TreatMissingData"] == "breaching"
    assert silence["EvaluationPeriods"] == {"Ref": "WebhookSilenceHours"}

    rule = template["Resources"]["WebhooksMissingAlarm"]["Properties"]["AlarmRule"]["Fn::Sub"]
    assert "WebhookSilenceAlarm.Arn" in rule
    assert "FlowsWaitingAlarm.Arn" in rule


def test_operator_events_reach_the_topic(template):
    rule = template["Resources"]["OperatorEventsRule"]["Properties"]
    assert rule["EventPattern"] == {"source": ["phrase-connector"], "detail-type": ["Operator Action Needed"]}
    assert rule["Targets"][0]["Arn"] == {"Ref": "OperatorTopic"}

    statements = template["Resources"]["OperatorTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    events_statement = next(s for s in statements if s["Principal"] == {"Service": "events.amazonaws.com"})
    assert events_statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": ["OperatorEventsRule", "Arn"]}
