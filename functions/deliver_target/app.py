"""Deliver task: set DELIVERED in Phrase for every target written to the target bucket."""

from phrase_connector.observability import bind_flow, logger, metrics, observe_step
from phrase_connector.services import get_services
from phrase_connector.usecases.deliver_target import deliver_targets


@logger.inject_lambda_context
@metrics.log_metrics
@observe_step("Deliver")
def lambda_handler(event, context):
    flow_id = event["flowId"]
    bind_flow(flow_id)
    services = get_services()
    services.bind_context(context)
    return deliver_targets(services, flow_id)
