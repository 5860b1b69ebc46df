"""Usage writes outside ingestion (``usage/ingest.py``): the tenant's usage settings, read and
changed (audited). The getter may move to ``usage/selectors.py`` later."""

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from billing_platform.errors import FieldError
from billing_platform.generations import usage_changed
from subscriptions.models import Subscription
from tenancy.actors import Actor
from tenancy.errors import InvalidTenantSettings
from tenancy.models import Tenant
from tenancy.services import audited_update
from usage.archive import archived_overlap, month_bounds
from usage.models import UsageSettings

# (lowest, highest) accepted. A year of late events is already far more than any billing period; a
# higher rate limit would let one key starve the others.
USAGE_SETTINGS_LIMITS: dict[str, tuple[int, int]] = {
    "max_event_age_days": (1, 366),
    "rate_limit_per_second": (1, 10_000),
}


def usage_settings_get(*, tenant: Tenant) -> UsageSettings:
    """The tenant's settings, or the defaults (unsaved) while it has never changed them."""
    return UsageSettings.objects.filter(tenant=tenant).first() or UsageSettings(tenant=tenant)


def usage_settings_update(*, tenant: Tenant, actor: Actor, at: datetime, data: Mapping[str, Any]) -> UsageSettings:
    """Change ``max_event_age_days`` (older events are refused as too late to bill) and/or
    ``rate_limit_per_second`` (event requests per second per API key). Applies to the next request."""
    errors: list[FieldError] = []
    cleaned: dict[str, int] = {}
    for field, value in data.items():
        if field not in USAGE_SETTINGS_LIMITS:
            errors.append(FieldError(field, "not_editable", "%s is not a usage setting." % field))
            continue
        lowest, highest = USAGE_SETTINGS_LIMITS[field]
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(FieldError(field, "invalid_type", "%s must be a whole number." % field))
        elif not lowest <= value <= highest:
            errors.append(FieldError(field, "out_of_range", "%s must be between %d and %d." % (field, lowest, highest)))
        elif field == "max_event_age_days" and (archived := archived_overlap(start=at - timedelta(days=value), end=at)):
            # Events of an archived month could be accepted again, with no partition to hold them.
            newest = month_bounds(archived[-1])[1]
            errors.append(
                FieldError(
                    field,
                    "archived_month",
                    "%s would accept events of %s, whose raw events are archived: at most %d."
                    % (field, archived[-1].strftime("%Y-%m"), (at - newest).days),
                )
            )
        else:
            cleaned[field] = value
    if errors:
        raise InvalidTenantSettings("; ".join("%s: %s" % (e.field, e.message) for e in errors), errors=errors)
    with transaction.atomic():
        settings, _ = UsageSettings.objects.select_for_update().get_or_create(tenant=tenant)
        settings.tenant = tenant  # known: the audit entry reads no row for it
        audited_update(
            obj=settings,
            changes=cleaned,
            actor=actor,
            at=at,
            action="usage_settings.updated",
            object_type="tenant",
            object_id=tenant.slug,
        )
    return settings


def usage_written(*, tenant: Tenant, subscription_ids: Iterable[Any]) -> None:
    """Events of these subscriptions were written, in the current transaction: their customers'
    cached current usage is out of date now and once the transaction commits
    (``billing_platform.generations``). One query. Every writer of usage events or rollups for
    given subscriptions calls it (ingestion, per batch)."""
    external_ids = set(
        Subscription.objects.filter(tenant=tenant, pk__in=list(subscription_ids)).values_list(
            "customer__external_id", flat=True
        )
    )
    usage_changed(tenant=tenant, external_ids=external_ids)
