"""Export task: request target-file exports, download finished ones and write them to S3."""

from phrase_connector.observability import bind_flow, logger, metrics, observe_step
from phrase_connector.services import get_services
from phrase_connector.usecases.export_target import export_targets


@logger.inject_lambda_context
@metrics.log_metrics
@observe_step("Export")
def lambda_handler(event, context):
    flow_id = event["flowId"]
    bind_flow(flow_id)
    services = get_services()
    services.bind_context(context)
    return export_targets(services, flow_id, wake_reason=str((event.get("wake") or {}).get("reason") or "timeout"))
