from billing_platform.errors import Conflict, InvalidInput, NotFound


class WebhookEndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"


class WebhookDeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"


class InvalidWebhookEndpoint(InvalidInput):
    code = "invalid_webhook_endpoint"


class TooManyWebhookEndpoints(Conflict):
    code = "too_many_webhook_endpoints"


class WebhookEndpointDisabled(Conflict):
    code = "webhook_endpoint_disabled"
