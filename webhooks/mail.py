"""The e-mail that tells a tenant one of its webhook endpoints was disabled after 5 days of failures."""

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import translation

from tenancy.models import Membership, Role, Tenant
from webhooks.models import WebhookAttempt, WebhookEndpoint

logger = logging.getLogger(__name__)


def tenant_recipients(tenant: Tenant) -> list[str]:
    """Who hears about the tenant's integrations: its billing contact and its owners, each once."""
    emails = [tenant.billing_email] if tenant.billing_email else []
    owners = Membership.objects.filter(tenant=tenant, role=Role.OWNER).order_by("user__email")
    for email in owners.values_list("user__email", flat=True):
        if email and email.lower() not in {e.lower() for e in emails}:
            emails.append(email)
    return emails


def endpoint_disabled_send(*, endpoint_id: str, failed: int = 0) -> bool:
    """E-mail the tenant that the endpoint was disabled, with the last error and what to do next.
    Returns False, sending nothing, when the endpoint is gone or the tenant has nobody to tell."""
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).select_related("tenant").first()
    if endpoint is None:
        return False
    tenant = endpoint.tenant
    recipients = tenant_recipients(tenant)
    if not recipients:
        logger.warning("webhook endpoint %s disabled: the tenant has no e-mail to tell", endpoint.pk)
        return False
    last = WebhookAttempt.objects.filter(delivery__endpoint=endpoint).order_by("-attempted_at", "-id").first()
    since = endpoint.failing_since or endpoint.disabled_at
    context = {
        "tenant": tenant.name,
        "url": endpoint.url,
        "since": since.strftime("%Y-%m-%d %H:%M") if since else "",
        "last_error": (last.error or ("HTTP %s" % last.status_code)) if last else "",
        "failed": failed,
    }
    with translation.override(settings.LANGUAGE_CODE):
        subject = " ".join(render_to_string("webhooks/email/endpoint_disabled_subject.txt", context).split())
        body = render_to_string("webhooks/email/endpoint_disabled_body.txt", context).strip() + "\n"
    EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=recipients).send()
    logger.info("webhook endpoint %s: disabling e-mailed", endpoint.pk, extra={"tenant_id": str(tenant.pk)})
    return True
