"""Check task: update job part statuses (polling Phrase after a timeout) and choose the next state."""

from phrase_connector.observability import bind_flow, logger, metrics, observe_step
from phrase_connector.services import get_services
from phrase_connector.usecases.monitor import check_flow


@logger.inject_lambda_context
@metrics.log_metrics
@observe_step("Monitor")
def lambda_handler(event, context):
    flow_id = event["flowId"]
    bind_flow(flow_id)
    services = get_services()
    services.bind_context(context)
    wake = event.get("wake") or {}
    monitor = event.get("monitor") or {}
    return check_flow(services, flow_id, wake_reason=str(wake.get("reason") or "timeout"),
                      attempt=int(monitor.get("attempt") or 0), loops=int(monitor.get("loops") or 0))
