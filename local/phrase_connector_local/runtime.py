"""Local runtime: the stack of template.yaml in moto, the real state machine, handlers in-process.

What runs where:
- moto (in this process) contains the tables, buckets, queues, secrets, Lambda functions and the
  state machine created from `statemachine/*.asl.json` with the template's substitutions;
- every Lambda invocation that moto makes (state machine tasks included) runs the function's real
  `app.lambda_handler` in this process, through moto's single invoke path;
- an HTTP server on 127.0.0.1 plays API Gateway for the webhook and callback routes;
- a poller thread plays the SQS event source mapping of the event processor.
Time is compressed only where the cloud would wait long: Retry intervals and the polling bounds.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from phrase_connector_local.template import Resolver, load_template

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
STACK = "phrase-connector-local"


MOTO_DYNAMODB_ITEM_OPERATIONS = ("get_item", "put_item", "update_item", "delete_item", "query", "scan",
                                 "batch_get_item", "batch_write_item", "transact_get_items",
                                 "transact_write_items")


class LocalRuntimeError(RuntimeError):
    """The local stack could not be created or driven."""


@dataclass
class LocalSettings:
    """Knobs of a local run; the defaults keep a demo under a minute on two cores."""

    phrase_tms_base_url: str
    phrase_platform_base_url: str
    phrase_api_token: str
    template_uid: str
    target_locales: tuple[str, ...] = ()
    source_locale: str = "en"
    webhook_token: str = field(default_factory=lambda: uuid.uuid4().hex)
    callback_secret: str = field(default_factory=lambda: uuid.uuid4().hex)
    content_api_token: str = field(default_factory=lambda: uuid.uuid4().hex)
    push_token: str = field(default_factory=lambda: uuid.uuid4().hex)
    webhook_port: int = 0
    poll_min_seconds: int = 2
    poll_max_seconds: int = 8
    export_poll_seconds: int = 3
    retry_time_scale: float = 0.02
    queue_visibility_seconds: int = 2
    environment: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeLambdaContext:
    """The attributes of the Lambda context object that the handlers and Powertools read."""

    function_name: str
    timeout_seconds: int
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


@dataclass
class LocalFunction:
    """One AWS::Serverless::Function of the template, loaded from its code folder."""

    logical_id: str
    name: str
    code_dir: Path
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]
    module: ModuleType | None = None

    def load(self) -> Callable[[Any, Any], Any]:
        if self.module is None:
            module_file, function_name = self.handler.rsplit(".", 1)
            path = self.code_dir / f"{module_file}.py"
            # Every function has an app.py: a unique module name keeps them apart in sys.modules.
            unique = f"phrase_connector_functions.{self.logical_id}"
            spec = importlib.util.spec_from_file_location(unique, path)
            if spec is None or spec.loader is None:
                raise LocalRuntimeError(f"Cannot load handler {path} of {self.logical_id}.")
            module = importlib.util.module_from_spec(spec)
            sys.modules[unique] = module
            spec.loader.exec_module(module)
            self.module = module
        return getattr(self.module, self.handler.rsplit(".", 1)[1])


class InjectedFault(Exception):
    """A handler was ended on purpose by a fault hook; `error_type` is what Lambda would report."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


FAULT_ERROR_TYPES = {
    "crash": "Runtime.ExitError",  # the process died, as after an out-of-memory kill
    "timeout": "Sandbox.Timedout",  # the function ran past its timeout
}


class FaultHooks:
    """Test hooks that end a handler right after a chosen call, before it records the result.

    Each hook fires on the first `times` matching calls only, so the state machine's retry runs
    the handler again against what the crashed attempt left behind.
    """

    def __init__(self, runtime: LocalRuntime) -> None:
        self._runtime = runtime
        self._lock = threading.Lock()
        self.fired: list[str] = []

    def _arm(self, label: str, mode: str, times: int) -> Callable[[], None]:
        if mode not in FAULT_ERROR_TYPES:
            raise ValueError(f"Unknown fault mode {mode!r}: use one of {sorted(FAULT_ERROR_TYPES)}.")
        remaining = [times]

        def maybe_fire() -> None:
            with self._lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
                self.fired.append(label)
            raise InjectedFault(FAULT_ERROR_TYPES[mode], f"injected {mode} after {label}")

        return maybe_fire

    def after_phrase_call(self, method: str, *, mode: str = "crash", times: int = 1) -> None:
        """End the handler after PhraseClient.<method> returned, before its result is stored."""
        from phrase_connector.phrase.client import PhraseClient

        original = getattr(PhraseClient, method)
        fire = self._arm(f"Phrase {method}", mode, times)

        def wrapper(client_self: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(client_self, *args, **kwargs)
            fire()
            return result

        self._runtime._patch(PhraseClient, method, wrapper)

    def after_aws_call(self, service: str, operation: str, *, mode: str = "crash", times: int = 1) -> None:
        """End the handler after the connector's boto3 client completed `operation` (e.g. s3 PutObject)."""
        from phrase_connector import aws as connector_aws

        fire = self._arm(f"{service} {operation}", mode, times)

        def after_call(**_: Any) -> None:
            fire()

        connector_aws.client(service).meta.events.register(f"after-call.{service}.{operation}", after_call)


class LocalRuntime:
    """Creates the template's stack in moto and drives it; use as a context manager."""

    def __init__(self, settings: LocalSettings, *, template_path: Path | None = None) -> None:
        self.settings = settings
        self.template_path = template_path or REPO_ROOT / "template.yaml"
        self.functions: dict[str, LocalFunction] = {}
        self.by_name: dict[str, LocalFunction] = {}
        self.physical: dict[str, str] = {}
        self.faults = FaultHooks(self)
        self.invocations: list[tuple[str, float, bool]] = []
        self.metric_records: list[dict[str, Any]] = []
        self._invocations_lock = threading.Lock()
        self._mock: Any = None
        self._patches: list[tuple[Any, str, Any]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._webhook_server: Any = None
        self._saved_environ: dict[str, str | None] = {}
        self.state_machine_arn = ""

    # ---- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> LocalRuntime:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def start(self) -> None:
        self._set_environ({
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": None, "AWS_PROFILE": None,
            "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        })
        from moto import mock_aws

        # Lambda keeps its default (Docker) mode: the in-process patch replaces the Docker call,
        # whereas use_docker=False would only echo the payload back.
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        from phrase_connector import aws as connector_aws
        from phrase_connector.services import reset_services

        connector_aws.reset_clients()
        reset_services()
        self._patch_moto()
        try:
            self._start_webhook_server()
            self._create_stack()
            self._start_event_poller()
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        self._stop.set()
        if self._webhook_server is not None:
            self._webhook_server.shutdown()
            self._webhook_server.server_close()
            self._webhook_server = None
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        for target, attribute, original in reversed(self._patches):
            if original is None:
                delattr(target, attribute)
            else:
                setattr(target, attribute, original)
        self._patches.clear()
        if self._mock is not None:
            self._stop_running_executions()
            self._mock.stop()
            self._mock = None
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()
        from phrase_connector import aws as connector_aws
        from phrase_connector.services import reset_services

        connector_aws.reset_clients()
        reset_services()
        for name, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environ.clear()

    def _stop_running_executions(self) -> None:
        """Stop the executions still running, so their threads cannot write into the next stack's tables."""
        if not self.state_machine_arn:
            return
        sfn = self.client("stepfunctions")
        try:
            pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=self.state_machine_arn,
                                                                   statusFilter="RUNNING")
            for page in pages:
                for execution in page["executions"]:
                    sfn.stop_execution(executionArn=execution["executionArn"], cause="local runtime stopped")
        except Exception as exc:  # noqa: BLE001 - stopping is best effort while the mock shuts down
            logger.warning("running executions not stopped: %s", exc)

    def _set_environ(self, values: dict[str, str | None]) -> None:
        for name, value in values.items():
            self._saved_environ.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _patch(self, target: Any, attribute: str, replacement: Any) -> None:
        self._patches.append((target, attribute, getattr(target, attribute)))
        setattr(target, attribute, replacement)

    # ---- moto patches ----------------------------------------------------------------------------

    def _patch_moto(self) -> None:
        from moto.awslambda.models import LambdaFunction
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

        runtime = self

        def invoke_in_process(function_self: Any, event: Any = None) -> tuple[str, bool, str]:
            payload = json.loads(event) if isinstance(event, (str, bytes)) else (event or {})
            return runtime._invoke(function_self.function_name, payload)

        self._patch(LambdaFunction, "_invoke_lambda", invoke_in_process)
        self._serialize_moto_dynamodb()

        # Powertools prints each invocation's EMF metrics to stdout; keep them for tests and benchmarks.
        from aws_lambda_powertools.metrics.provider.cloudwatch_emf import cloudwatch

        def capture_metrics(text: str, *args: Any, **kwargs: Any) -> None:
            with self._invocations_lock:
                self.metric_records.append(json.loads(text))

        cloudwatch.print = capture_metrics  # type: ignore[attr-defined]
        self._patches.append((cloudwatch, "print", None))
        scale = self.settings.retry_time_scale
        # Step Functions Retry intervals are real seconds in moto; scale them for local runs.
        self._patch(retrier_decl, "time", SimpleNamespace(sleep=lambda seconds: time.sleep(seconds * scale)))

    def _serialize_moto_dynamodb(self) -> None:
        """Run moto's DynamoDB item operations one at a time, as DynamoDB applies each atomically.

        moto 5.2 evaluates a ConditionExpression and writes without a lock, and a query can fail with
        "dictionary changed size during iteration" while another thread writes. Handlers run in
        threads here, so without this lock conditional writes could both pass.
        """
        from moto.dynamodb.models import DynamoDBBackend

        lock = threading.RLock()

        def locked(original: Any) -> Any:
            def call(backend: Any, *args: Any, **kwargs: Any) -> Any:
                with lock:
                    return original(backend, *args, **kwargs)

            return call

        for name in MOTO_DYNAMODB_ITEM_OPERATIONS:
            self._patch(DynamoDBBackend, name, locked(getattr(DynamoDBBackend, name)))

    def _invoke(self, function_name: str, event: dict[str, Any]) -> tuple[str, bool, str]:
        function = self.by_name.get(function_name)
        if function is None:
            error = {"errorType": "ResourceNotFoundException", "errorMessage": f"No local function {function_name}"}
            return json.dumps(error), True, ""
        started = time.monotonic()
        try:
            handler = function.load()
            result = handler(event, FakeLambdaContext(function.name, function.timeout, function.memory))
            errored = False
            payload = json.dumps(result)
        except Exception as exc:  # noqa: BLE001 - every handler error becomes Lambda's error payload
            errored = True
            payload = json.dumps({
                "errorType": exc.error_type if isinstance(exc, InjectedFault) else type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception(exc)[-5:],
            })
            logger.info("local function %s raised %s: %s", function.logical_id, type(exc).__name__, exc)
        with self._invocations_lock:
            self.invocations.append((function.logical_id, time.monotonic() - started, errored))
        return payload, errored, ""

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        """Invoke a function through moto's Lambda API, as an AWS event source would."""
        response = self.client("lambda").invoke(
            FunctionName=self.functions[logical_id].name, Payload=json.dumps(event).encode("utf-8")
        )
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise LocalRuntimeError(f"{logical_id} failed: {payload.get('errorType')}: {payload.get('errorMessage')}")
        return payload

    # ---- stack creation -------------------------------------------------------------------------

    @staticmethod
    def client(service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=REGION)

    def _create_stack(self) -> None:
        template = load_template(self.template_path)
        resources: dict[str, dict[str, Any]] = template.get("Resources", {})
        s = self.settings
        params = {
            "PhraseTmsBaseUrl": s.phrase_tms_base_url,
            "PhrasePlatformBaseUrl": s.phrase_platform_base_url,
            "PhraseTemplateUid": s.template_uid,
            "SourceLocale": s.source_locale,
            "TargetLocales": ",".join(s.target_locales),
            "PollMinSeconds": str(s.poll_min_seconds),
            "PollMaxSeconds": str(s.poll_max_seconds),
            "LogLevel": os.environ.get("LOG_LEVEL", "WARNING"),
        }
        for name, spec in template.get("Parameters", {}).items():
            params.setdefault(name, str(spec.get("Default", "")))
        refs: dict[str, Any] = {**params, "AWS::StackName": STACK, "AWS::Region": REGION, "AWS::Partition": "aws",
                                "AWS::AccountId": ACCOUNT_ID, "AWS::URLSuffix": "amazonaws.com"}
        attributes: dict[str, dict[str, Any]] = {}
        resolver = Resolver(refs, attributes)

        self._create_storage(resources, refs, attributes)
        self._create_secrets(resources, refs)
        refs["ConnectorHttpApi"] = "local"
        refs["ConnectorLayer"] = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:connector:1"
        self._create_functions(template, resources, refs, attributes, resolver)
        self._create_state_machine(resources, refs, attributes, resolver)
        self._apply_function_environment(template, resources, resolver)

    def _create_storage(self, resources: dict[str, Any], refs: dict[str, Any],
                        attributes: dict[str, dict[str, Any]]) -> None:
        dynamodb, s3, sqs = self.client("dynamodb"), self.client("s3"), self.client("sqs")
        queues = [(n, r) for n, r in resources.items() if r["Type"] == "AWS::SQS::Queue"]
        # Dead-letter queues first: the main queue's redrive policy points at them.
        queues.sort(key=lambda item: "RedrivePolicy" in item[1].get("Properties", {}))
        for logical_id, resource in resources.items():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::DynamoDB::Table":
                name = f"{STACK}-{logical_id}"
                dynamodb.create_table(
                    TableName=name, BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=props["AttributeDefinitions"], KeySchema=props["KeySchema"],
                )
                refs[logical_id] = name
                attributes[logical_id] = {"Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"}
            elif resource["Type"] == "AWS::S3::Bucket":
                name = f"{STACK}-{logical_id}".lower()
                s3.create_bucket(Bucket=name)
                if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
                    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
                refs[logical_id] = name
                attributes[logical_id] = {"Arn": f"arn:aws:s3:::{name}"}
        for logical_id, resource in queues:
            props = resource.get("Properties", {})
            name = f"{STACK}-{logical_id}"
            queue_attributes = {"VisibilityTimeout": str(self.settings.queue_visibility_seconds)}
            if "RedrivePolicy" in props:
                redrive = Resolver(refs, attributes).resolve(props["RedrivePolicy"])
                queue_attributes["RedrivePolicy"] = json.dumps(redrive)
            url = sqs.create_queue(QueueName=name, Attributes=queue_attributes)["QueueUrl"]
            refs[logical_id] = url
            attributes[logical_id] = {"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}", "QueueName": name,
                                      "QueueUrl": url}
        self.physical = {k: v for k, v in refs.items() if k in resources}

    def _create_secrets(self, resources: dict[str, Any], refs: dict[str, Any]) -> None:
        values = {
            "PhraseApiTokenSecret": self.settings.phrase_api_token,
            "WebhookTokenSecret": self.settings.webhook_token,
            "CallbackSecret": self.settings.callback_secret,
            "ContentApiTokenSecret": self.settings.content_api_token,
            "PushTokenSecret": self.settings.push_token,
        }
        secrets = self.client("secretsmanager")
        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::SecretsManager::Secret":
                continue
            if logical_id not in values:
                raise LocalRuntimeError(f"Secret {logical_id} in template.yaml has no local value.")
            arn = secrets.create_secret(Name=f"{STACK}/{logical_id}", SecretString=values[logical_id])["ARN"]
            refs[logical_id] = arn
            self.physical[logical_id] = arn

    def _create_functions(self, template: dict[str, Any], resources: dict[str, Any], refs: dict[str, Any],
                          attributes: dict[str, dict[str, Any]], resolver: Resolver) -> None:
        iam = self.client("iam")
        role = iam.create_role(
            RoleName=f"{STACK}-functions",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
        )["Role"]["Arn"]
        self.role_arn = role
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr("app.py", "def lambda_handler(event, context):\n    return None\n")
        globals_fn = template.get("Globals", {}).get("Function", {})
        lambda_client = self.client("lambda")
        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            props = {**globals_fn, **resource.get("Properties", {})}
            name = f"{STACK}-{logical_id}"
            function = LocalFunction(
                logical_id=logical_id, name=name, code_dir=REPO_ROOT / props["CodeUri"],
                handler=props.get("Handler", "app.lambda_handler"), timeout=int(props.get("Timeout", 3)),
                memory=int(props.get("MemorySize", 128)), environment={},
            )
            lambda_client.create_function(
                FunctionName=name, Runtime=props.get("Runtime", "python3.13"), Role=role,
                Handler=function.handler, Code={"ZipFile": archive.getvalue()}, Timeout=function.timeout,
                MemorySize=function.memory,
            )
            arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
            refs[logical_id] = name
            attributes[logical_id] = {"Arn": arn}
            self.functions[logical_id] = function
            self.by_name[name] = function
            self.by_name[arn] = function

    def _create_state_machine(self, resources: dict[str, Any], refs: dict[str, Any],
                              attributes: dict[str, dict[str, Any]], resolver: Resolver) -> None:
        machines = [(n, r) for n, r in resources.items() if r["Type"] == "AWS::Serverless::StateMachine"]
        if len(machines) != 1:
            raise LocalRuntimeError(f"Expected one state machine in template.yaml, found {len(machines)}.")
        logical_id, resource = machines[0]
        props = resource["Properties"]
        definition = (REPO_ROOT / props["DefinitionUri"]).read_text(encoding="utf-8")
        for key, value in resolver.resolve(props.get("DefinitionSubstitutions", {})).items():
            definition = definition.replace("${" + key + "}", str(value))
        name = resolver.resolve(props["Name"]) if "Name" in props else f"{STACK}-{logical_id}"
        arn = self.client("stepfunctions").create_state_machine(
            name=name, definition=definition, roleArn=self.role_arn, type=props.get("Type", "STANDARD"),
        )["stateMachineArn"]
        refs[logical_id] = arn
        attributes[logical_id] = {"Name": name, "Arn": arn}
        self.state_machine_arn = arn
        self.definition = json.loads(definition)

    def _apply_function_environment(self, template: dict[str, Any], resources: dict[str, Any],
                                    resolver: Resolver) -> None:
        """Resolve each function's environment and set their union in os.environ.

        Handlers run in this process and share os.environ, so two functions must not disagree
        on a variable; the template keeps function-specific values distinct by name.
        """
        callback_base = f"http://127.0.0.1:{self.webhook_port}"
        overrides = {
            "CALLBACK_BASE_URL": callback_base,
            "EXPORT_POLL_SECONDS": str(self.settings.export_poll_seconds),
            **self.settings.environment,
        }
        globals_env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        union: dict[str, str] = {}
        for logical_id, function in self.functions.items():
            own = resources[logical_id].get("Properties", {}).get("Environment", {}).get("Variables", {})
            resolved = {k: str(v) for k, v in resolver.resolve({**globals_env, **own}).items()}
            resolved.update(overrides)
            function.environment = resolved
            for key, value in resolved.items():
                if key in union and union[key] != value:
                    raise LocalRuntimeError(
                        f"Functions disagree on {key} ({union[key]!r} vs {value!r}); the local runtime shares "
                        "one environment, so give function-specific values their own variable names."
                    )
                union[key] = value
        self._set_environ(union)

    # ---- API Gateway and SQS stand-ins ----------------------------------------------------------

    def _start_webhook_server(self) -> None:
        from phrase_connector_local.http_api import start_http_api

        self._webhook_server = start_http_api(self, self.settings.webhook_port)
        self.webhook_port = self._webhook_server.server_address[1]
        self.webhook_url = f"http://127.0.0.1:{self.webhook_port}/webhooks/phrase"

    def _start_event_poller(self) -> None:
        thread = threading.Thread(target=self._poll_event_queue, name="sqs-event-source", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _poll_event_queue(self) -> None:
        sqs = self.client("sqs")
        queue_url = self.physical["EventQueue"]
        queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue_url.rsplit('/', 1)[-1]}"
        while not self._stop.is_set():
            try:
                response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                               AttributeNames=["All"])
            except Exception:  # noqa: BLE001 - the mock is being torn down
                if self._stop.is_set():
                    return
                raise
            messages = response.get("Messages", [])
            if not messages:
                self._stop.wait(0.05)
                continue
            records = [{
                "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": REGION,
            } for m in messages]
            try:
                result = self.invoke("ProcessEventsFunction", {"Records": records}) or {}
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            except LocalRuntimeError as exc:
                logger.warning("event processor failed for the whole batch: %s", exc)
                failed = {m["MessageId"] for m in messages}
            for message in messages:
                if message["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    # ---- driving flows -------------------------------------------------------------------------

    def upload_sources(self, files: dict[str, bytes], prefix: str = "content/") -> list[dict[str, Any]]:
        """Put source files into the source bucket; return their S3 identities."""
        s3 = self.client("s3")
        bucket = self.physical["SourceBucket"]
        uploaded = []
        for relative, data in files.items():
            key = prefix + relative
            response = s3.put_object(Bucket=bucket, Key=key, Body=data)
            uploaded.append({"bucket": bucket, "key": key, "etag": response["ETag"].strip('"'), "size": len(data)})
        return uploaded

    def s3_event(self, uploaded: list[dict[str, Any]]) -> dict[str, Any]:
        """Build the S3 ObjectCreated notification that S3 would send for these objects."""
        from urllib.parse import quote_plus

        return {"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION, "eventName": "ObjectCreated:Put",
            "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": u["bucket"], "arn": f"arn:aws:s3:::{u['bucket']}"},
                   "object": {"key": quote_plus(u["key"], safe="/"), "size": u["size"], "eTag": u["etag"]}},
        } for u in uploaded]}

    def content_ready_event(self, batch_id: str, uploaded: list[dict[str, Any]],
                            target_locales: tuple[str, ...] = ()) -> dict[str, Any]:
        """Build the EventBridge 'Content Ready' event for a batch of uploaded files."""
        return {
            "version": "0", "id": str(uuid.uuid4()), "source": "phrase-connector.content",
            "detail-type": "Content Ready", "account": ACCOUNT_ID, "region": REGION,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "resources": [],
            "detail": {"batchId": batch_id, "files": [{"bucket": u["bucket"], "key": u["key"], "version": u["etag"]}
                                                      for u in uploaded],
                       **({"targetLocales": list(target_locales)} if target_locales else {})},
        }

    def send_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Deliver a content event to the start function, as the EventBridge rule or S3 would."""
        return self.invoke("StartFlowFunction", event)

    def stack_environment(self) -> dict[str, str]:
        """Return the connector's environment variables for this local stack (for operator commands)."""
        environment: dict[str, str] = {}
        for function in self.functions.values():
            environment.update(function.environment)
        environment["EVENT_DLQ_URL"] = self.physical.get("EventDeadLetterQueue", "")
        return environment

    def execution_arn(self, name: str) -> str:
        return self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"

    def wait_for_execution(self, flow_id: str, timeout: float, on_tick: Callable[[], None] | None = None) -> dict[str, Any]:
        """Wait until the flow's last execution ends; return its describe_execution response.

        A long flow continues in new executions; the flow record names the current one.
        """
        from phrase_connector.store import FlowStore

        sfn = self.client("stepfunctions")
        store = FlowStore(self.physical["FlowTable"])
        deadline = time.monotonic() + timeout
        while True:
            name = store.get_flow(flow_id).get("executionName") or flow_id
            execution = sfn.describe_execution(executionArn=self.execution_arn(name))
            current = store.get_flow(flow_id).get("executionName") or flow_id
            if execution["status"] != "RUNNING" and current == name:
                if on_tick:
                    on_tick()
                return execution
            if time.monotonic() > deadline:
                where = f"Flow {flow_id}" if name == flow_id else f"Flow {flow_id} (execution {name})"
                raise LocalRuntimeError(f"{where} still running after {timeout:g} s.")
            if on_tick:
                on_tick()
            time.sleep(0.2)

    def executions(self, flow_id: str) -> list[str]:
        """Return the execution names of a flow, first to last."""
        from phrase_connector.store import FlowStore

        generation = int(FlowStore(self.physical["FlowTable"]).get_flow(flow_id).get("generation") or 0)
        return [flow_id] + [f"{flow_id}-g{n}" for n in range(1, generation + 1)]

    def history(self, execution_name: str) -> list[dict[str, Any]]:
        """Return the full event history of one execution."""
        sfn = self.client("stepfunctions")
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": self.execution_arn(execution_name), "maxResults": 1000}
        while True:
            response = sfn.get_execution_history(**kwargs)
            events.extend(response["events"])
            if not response.get("nextToken"):
                return events
            kwargs["nextToken"] = response["nextToken"]


def metric_totals(records: list[dict[str, Any]]) -> dict[str, float]:
    """Sum the values of each metric over EMF records (the local runtime's `metric_records`)."""
    totals: dict[str, float] = {}
    for record in records:
        for directive in record.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive.get("Metrics", []):
                name = metric["Name"]
                value = record.get(name, 0)
                values = value if isinstance(value, list) else [value]
                totals[name] = totals.get(name, 0) + sum(float(v) for v in values)
    return totals
