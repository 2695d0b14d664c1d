"""Live-content variant and workflow extensions through the local runtime and the simulator."""

from __future__ import annotations

import io
import zipfile

import pytest

from phrase_connector.store import FlowStore

from workflow_helpers import local_stack, start_flow

pytestmark = pytest.mark.workflow

LIVE_CONTENT = {"PLUGIN_VARIANT": "live-content", "PREVIEW_MODE": "generate", "CONTINUOUS_UPDATES": "true"}
FILES = {
    "page.html": b"<html><body><p>Welcome home.</p></body></html>",
    "strings.json": b'{"greeting": "Hello"}',
    "notes.txt": b"Plain notes.\n",
}
CREATE_JOB = r"/projects/[^/]+/jobs$"


def test_live_content_sends_preview_on_every_job():
    with local_stack(locales=("de", "fr"), environment=LIVE_CONTENT) as (runtime, simulator):
        flow_id = start_flow(runtime, FILES)
        assert runtime.wait_for_execution(flow_id, 120)["status"] == "SUCCEEDED"
        flow = FlowStore(runtime.physical["FlowTable"]).get_flow(flow_id)
        snapshot = simulator.state_snapshot()

        packages = snapshot["previewPackages"]
        assert len(packages) == 1
        assert flow["previewFileUid"] == packages[0]["fileUid"]
        assert flow["previewSource"] == "generated"
        assert len(simulator.calls_to("POST", CREATE_JOB)) == len(FILES)
        assert len(snapshot["jobs"]) == len(FILES) * 2 * 2
        for job in snapshot["jobs"]:
            assert job["jobPreviewPackageFileUid"] == flow["previewFileUid"], job["filename"]

        # The package was uploaded after the project and before the first job.
        upload = simulator.calls_to("POST", r"/jobPreviewPackage$")[0]
        project = simulator.calls_to("POST", r"/applyTemplate/")[0]
        first_job = simulator.calls_to("POST", CREATE_JOB)[0]
        assert project.seq < upload.seq < first_job.seq


def test_supplied_preview_package_is_uploaded():
    environment = {**LIVE_CONTENT, "PREVIEW_MODE": "supplied"}
    with local_stack(locales=("de",), environment=environment) as (runtime, simulator):
        package = io.BytesIO()
        with zipfile.ZipFile(package, "w") as archive:
            archive.writestr("site/index.html", "<html><body>Supplied preview</body></html>")
            archive.writestr("site/style.css", "body { color: black; }")
        bucket = runtime.physical["SourceBucket"]
        runtime.client("s3").put_object(Bucket=bucket, Key="previews/site.zip", Body=package.getvalue())
        uploaded = runtime.upload_sources({"page.html": FILES["page.html"]})
        event = runtime.content_ready_event("supplied-preview", uploaded, ("de",))
        event["detail"]["previewPackage"] = {"bucket": bucket, "key": "previews/site.zip"}
        flow_id = runtime.send_event(event)["flowId"]
        assert runtime.wait_for_execution(flow_id, 120)["status"] == "SUCCEEDED"

        flow = FlowStore(runtime.physical["FlowTable"]).get_flow(flow_id)
        assert flow["previewSource"] == "supplied"
        for job in simulator.state_snapshot()["jobs"]:
            assert job["jobPreviewPackageFileUid"] == flow["previewFileUid"]


def test_supplied_preview_from_other_bucket_rejected():
    environment = {**LIVE_CONTENT, "PREVIEW_MODE": "supplied"}
    with local_stack(locales=("de",), environment=environment) as (runtime, _simulator):
        uploaded = runtime.upload_sources({"page.html": FILES["page.html"]})
        event = runtime.content_ready_event("foreign-preview", uploaded, ("de",))
        event["detail"]["previewPackage"] = {"bucket": "someone-elses-bucket", "key": "site.zip"}
        with pytest.raises(Exception, match="InvalidPreviewPackageError: .*someone-elses-bucket"):
            runtime.send_event(event)


def test_canonical_run_sends_no_preview():
    with local_stack(locales=("de",)) as (runtime, simulator):
        flow_id = start_flow(runtime, {"notes.txt": FILES["notes.txt"]})
        assert runtime.wait_for_execution(flow_id, 120)["status"] == "SUCCEEDED"
        assert simulator.calls_to("POST", r"/jobPreviewPackage$") == []
        assert all(job["jobPreviewPackageFileUid"] is None for job in simulator.state_snapshot()["jobs"])


EXTENSIONS = {"ASSIGN_PROVIDERS": "true", "CREATE_ANALYSES": "true", "NOTIFY_ASSIGNED": "true",
              "NOTIFY_EMAIL_TEMPLATE_ID": "42"}
ASSIGN = r"/assignProviders/forJobParts$"
ANALYSES = r"/analyses/byProviders$"
NOTIFY = r"/jobs/notifyAssigned$"


def test_extensions_run_in_order_after_jobs():
    with local_stack(locales=("de", "fr"), environment=EXTENSIONS) as (runtime, simulator):
        flow_id = start_flow(runtime, FILES)
        assert runtime.wait_for_execution(flow_id, 120)["status"] == "SUCCEEDED"

        assign = simulator.calls_to("POST", ASSIGN)
        analyses = simulator.calls_to("POST", ANALYSES)
        notify = simulator.calls_to("POST", NOTIFY)
        assert [len(assign), len(analyses), len(notify)] == [1, 1, 1]
        last_job = simulator.calls_to("POST", CREATE_JOB)[-1]
        assert last_job.seq < assign[0].seq < analyses[0].seq < notify[0].seq
        assert all(call.status in (200, 204) for call in assign + analyses + notify)

        snapshot = simulator.state_snapshot()
        job_uids = {job["uid"] for job in snapshot["jobs"]}
        assert {uid for n in snapshot["notifications"] for uid in n["jobUids"]} == job_uids
        assert snapshot["notifications"][0]["emailTemplateId"] == "42"
        assert snapshot["analyses"]
        flow = FlowStore(runtime.physical["FlowTable"]).get_flow(flow_id)
        for step in ("AssignProviders", "CreateAnalyses", "NotifyAssigned"):
            assert flow[f"ext{step}DoneAt"]


def test_extensions_off_by_default():
    with local_stack(locales=("de",)) as (runtime, simulator):
        flow_id = start_flow(runtime, {"notes.txt": FILES["notes.txt"]})
        assert runtime.wait_for_execution(flow_id, 120)["status"] == "SUCCEEDED"
        for path in (ASSIGN, ANALYSES, NOTIFY):
            assert simulator.calls_to("POST", path) == [], path


def test_only_enabled_extension_runs():
    with local_stack(locales=("de",), environment={"CREATE_ANALYSES": "true"}) as (runtime, simulator):
        flow_id = start_flow(runtime, {"notes.txt": FILES["notes.txt"]})
        assert runtime.wait_for_execution(flow_id, 120)["status"] == "SUCCEEDED"
        assert simulator.calls_to("POST", ASSIGN) == []
        assert simulator.calls_to("POST", NOTIFY) == []
        assert len(simulator.calls_to("POST", ANALYSES)) == 1


def test_extensions_not_repeated_on_import_replay():
    with local_stack(locales=("de",), environment=EXTENSIONS) as (runtime, simulator):
        # The Import handler dies right after the notification; the retry must not send it again.
        runtime.faults.after_phrase_call("notify_assigned_users", mode="crash")
        flow_id = start_flow(runtime, {"notes.txt": FILES["notes.txt"]})
        assert runtime.wait_for_execution(flow_id, 120)["status"] == "SUCCEEDED"
        assert runtime.faults.fired == ["Phrase notify_assigned_users"]
        assert len(simulator.calls_to("POST", ASSIGN)) == 1
        assert len(simulator.calls_to("POST", ANALYSES)) == 1
        # The crash hit between the call and its record, so only that batch is sent again.
        assert len(simulator.calls_to("POST", NOTIFY)) == 2
