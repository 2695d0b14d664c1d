"""SQS consumer: apply stored webhooks and callbacks; failed messages are retried, then dead-lettered."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from phrase_connector.observability import logger, metrics
from phrase_connector.services import get_services
from phrase_connector.usecases.process_events import process_event

processor = BatchProcessor(event_type=EventType.SQS)


def _record_handler(record):
    return process_event(get_services(), record.body)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    get_services().bind_context(context)
    return process_partial_response(event=event, record_handler=_record_handler, processor=processor, context=context)
