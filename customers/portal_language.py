"""A portal user's own language: the one the portal speaks to that person (blank: the customer's,
which is also the language of the customer's invoices and e-mails)."""

from datetime import datetime

from django.db import transaction

from billing_platform.validation import validate_language
from customers.models import PortalUser
from tenancy.actors import Actor
from tenancy.services import audit_record


def portal_user_language_set(*, user: PortalUser, language: str, actor: Actor, at: datetime) -> PortalUser:
    """Set ``user``'s language ("" for the customer's); the change is on the tenant's audit log."""
    if language:
        validate_language(language, field="language")
    with transaction.atomic():
        locked = PortalUser.objects.select_for_update().select_related("customer", "tenant").get(pk=user.pk)
        before = locked.language
        if before == language:
            return locked
        locked.language = language
        locked.save(update_fields=["language"])
        audit_record(
            tenant=locked.tenant,
            actor=actor,
            action="portal_user.updated",
            object_type="customer",
            object_id=locked.customer.external_id,
            at=at,
            before={"user": locked.email, "language": before},
            after={"user": locked.email, "language": language},
        )
    return locked
