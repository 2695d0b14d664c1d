"""Import task: project from template and jobs for every source file of the flow."""

from phrase_connector.observability import bind_flow, logger, metrics, observe_step
from phrase_connector.services import get_services
from phrase_connector.usecases.import_content import import_content


@logger.inject_lambda_context
@metrics.log_metrics
@observe_step("Create")
def lambda_handler(event, context):
    flow_id = event["flowId"]
    bind_flow(flow_id)
    services = get_services()
    services.bind_context(context)
    return import_content(services, flow_id)
