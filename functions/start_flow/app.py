"""Start handler: an S3 ObjectCreated or EventBridge content event becomes one flow execution."""

from phrase_connector.observability import bind_flow, logger, metrics, observe_step
from phrase_connector.services import get_services
from phrase_connector.usecases.start_flow import start_flow


@logger.inject_lambda_context
@metrics.log_metrics
@observe_step("Start")
def lambda_handler(event, context):
    services = get_services()
    services.bind_context(context)
    result = start_flow(services, event, context)
    bind_flow(result["flowId"])
    return result
