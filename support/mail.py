"""The e-mails of a conversation: a customer's message goes to the staff who handle the case, a
staff answer goes to the customer. Built in the transaction, sent once it commits (a rolled-back
message mails nobody); a mail server refusing one is logged and does not undo the message."""

import logging
from functools import partial

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation

from customers.models import PortalUser
from support.models import AuthorType, SupportCase, SupportMessage
from tenancy.models import Role

logger = logging.getLogger(__name__)


def case_recipients_staff(case: SupportCase) -> list[str]:
    """Who hears of a customer's message: the case's assignee; unassigned, the tenant's support
    agents; with none, the tenant's billing e-mail."""
    if case.assignee is not None and case.assignee.email:
        return [case.assignee.email]
    agents = list(
        get_user_model()
        .objects.filter(memberships__tenant_id=case.tenant_id, memberships__role=Role.SUPPORT_AGENT)
        .exclude(email="")
        .order_by("email")
        .values_list("email", flat=True)
    )
    if agents:
        return agents
    return [case.tenant.billing_email] if case.tenant.billing_email else []


def case_recipients_customer(case: SupportCase) -> list[tuple[str, str]]:
    """Who hears of a staff answer on the customer's side, each with the language to write in: the
    customer's active portal users (each in its own language, or the customer's); a customer
    without any, at its own e-mail address."""
    customer = case.customer
    users = PortalUser.objects.filter(tenant_id=case.tenant_id, customer=customer, is_active=True).order_by("email")
    found = [(u.email, u.language or customer.language) for u in users.only("email", "language") if u.email]
    if found:
        return found
    return [(customer.email, customer.language)] if customer.email else []


def _message(case: SupportCase, message: SupportMessage, *, to: list[str], language: str) -> EmailMessage:
    context = {
        "subject": case.subject,
        "seller": case.tenant.name,
        "customer": case.customer.name,
        "author": message.author_label,
        "body": message.body,
        "invoice": case.invoice.number if case.invoice is not None else "",
        "from_customer": message.author_type == AuthorType.CUSTOMER,
    }
    with translation.override(language):
        subject = " ".join(render_to_string("support/email/message_subject.txt", context).split())
        body = render_to_string("support/email/message_body.txt", context).strip() + "\n"
    return EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=to)


def message_notify_on_commit(*, case: SupportCase, message: SupportMessage) -> None:
    """Once the transaction commits, e-mail the other side of the conversation about ``message``."""
    if message.author_type == AuthorType.CUSTOMER:
        recipients = [(email, settings.LANGUAGE_CODE) for email in case_recipients_staff(case)]
    else:
        recipients = case_recipients_customer(case)
    if not recipients:
        logger.info(
            "support message %s: nobody to e-mail",
            message.pk,
            extra={"tenant_id": str(case.tenant_id), "case_id": str(case.pk)},
        )
        return
    # One e-mail per language, to everyone who reads it.
    languages: dict[str, list[str]] = {}
    for address, language in recipients:
        languages.setdefault(language or settings.LANGUAGE_CODE, []).append(address)
    for language, to in languages.items():
        transaction.on_commit(partial(_send, _message(case, message, to=to, language=language), case))


def _send(email: EmailMessage, case: SupportCase) -> None:
    try:
        email.send()
    except Exception:  # the message is recorded; a mail server refusing it must not fail the request
        logger.exception(
            "support e-mail for case %s not sent",
            case.pk,
            extra={"tenant_id": str(case.tenant_id), "case_id": str(case.pk)},
        )
