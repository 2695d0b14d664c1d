"""Await task (waitForTaskToken): store the task token that webhook or callback processing resumes."""

from phrase_connector.observability import bind_flow, logger, metrics
from phrase_connector.services import get_services
from phrase_connector.usecases.monitor import register_task_token


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    flow_id = event["flowId"]
    bind_flow(flow_id)
    services = get_services()
    services.bind_context(context)
    return register_task_token(services, flow_id, event["taskToken"])
