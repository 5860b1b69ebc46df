"""Dunning policies: the tenant's, and a customer's own that replaces it (specs/payments.md).

A tenant without a stored policy uses ``DEFAULT_POLICY``. Days count from the invoice's due date in
the customer's time zone; a negative reminder day is before it; ``None`` for suspension or
write-off means never.
"""

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q

from billing_platform.errors import FieldError, InvalidInput, NotFound
from customers.models import Customer
from invoicing.models import InvoicingSettings
from payments.models import DunningPolicy
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record

# Reminders may go out up to 60 days before the due date; no step is planned beyond a year after it.
MIN_DAY = -60
MAX_DAY = 365
# Subscriptions are suspended one day past due at the earliest: never on the due date itself, when a
# customer charged automatically has not had a single retry and one paying by transfer is on time.
MIN_SUSPEND_AFTER_DAYS = 1
SUSPEND_TOO_SOON = (
    "suspend_after_days is from %d to %d days past due, or null for never: subscriptions are not suspended "
    "on the due date itself." % (MIN_SUSPEND_AFTER_DAYS, MAX_DAY)
)
POLICY_FIELDS = ("retry_days", "reminder_days", "suspend_after_days", "uncollectible_after_days")


class DunningPolicyNotFound(NotFound):
    code = "dunning_policy_not_found"


class DunningPolicyInvalid(InvalidInput):
    """422, as every field validation of the API."""

    code = "invalid_dunning_policy"
    title = "Invalid dunning policy"


@dataclass(frozen=True, slots=True)
class Policy:
    retry_days: tuple[int, ...]
    reminder_days: tuple[int, ...]
    suspend_after_days: int | None
    uncollectible_after_days: int | None

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        return {**values, "retry_days": list(self.retry_days), "reminder_days": list(self.reminder_days)}


DEFAULT_POLICY = Policy(retry_days=(3, 5, 7), reminder_days=(-3, 7), suspend_after_days=21, uncollectible_after_days=60)


def policy_of(row: DunningPolicy) -> Policy:
    return Policy(
        retry_days=tuple(row.retry_days),
        reminder_days=tuple(row.reminder_days),
        suspend_after_days=row.suspend_after_days,
        uncollectible_after_days=row.uncollectible_after_days,
    )


def _days_errors(field: str, value: Any, *, low: int) -> list[FieldError]:
    if not isinstance(value, list | tuple) or any(isinstance(d, bool) or not isinstance(d, int) for d in value):
        return [FieldError(field, "invalid", "%s is a list of whole numbers of days." % field)]
    if any(d < low or d > MAX_DAY for d in value):
        return [FieldError(field, "out_of_range", "%s holds days from %d to %d." % (field, low, MAX_DAY))]
    if list(value) != sorted(set(value)):
        return [FieldError(field, "not_sorted", "%s is sorted in increasing order, each day once." % field)]
    return []


def policy_validate(values: Mapping[str, Any]) -> Policy:
    """A policy from its four fields, or ``DunningPolicyInvalid`` (422) naming every bad one: days
    whole numbers, sorted and unique; reminders from -60 to 365, retries 0 to 365; suspension 1 to
    365 or null, write-off 0 to 365 or null and no sooner than suspension."""
    errors: list[FieldError] = []
    missing = [f for f in POLICY_FIELDS if f not in values]
    errors += [FieldError(f, "required", "%s is required (null for never)." % f) for f in missing if f.endswith("days")]
    errors += _days_errors("retry_days", values.get("retry_days", []), low=0)
    errors += _days_errors("reminder_days", values.get("reminder_days", []), low=MIN_DAY)
    suspend = values.get("suspend_after_days")
    if suspend is not None and (
        isinstance(suspend, bool) or not isinstance(suspend, int) or not MIN_SUSPEND_AFTER_DAYS <= suspend <= MAX_DAY
    ):
        errors.append(FieldError("suspend_after_days", "suspend_too_soon", SUSPEND_TOO_SOON))
    write_off = values.get("uncollectible_after_days")
    if write_off is not None and (
        isinstance(write_off, bool) or not isinstance(write_off, int) or not 0 <= write_off <= MAX_DAY
    ):
        errors.append(
            FieldError(
                "uncollectible_after_days",
                "out_of_range",
                "uncollectible_after_days is from 0 to %d days, or null." % MAX_DAY,
            )
        )
    if not errors and suspend is not None and write_off is not None and write_off < suspend:
        errors.append(
            FieldError(
                "uncollectible_after_days",
                "before_suspension",
                "An invoice is written off no sooner than its subscriptions are suspended (%d days)." % suspend,
            )
        )
    if errors:
        raise DunningPolicyInvalid("; ".join(e.message for e in errors), errors=errors)
    return Policy(
        retry_days=tuple(values["retry_days"]),
        reminder_days=tuple(values["reminder_days"]),
        suspend_after_days=suspend,
        uncollectible_after_days=write_off,
    )


def tenant_policy_get(*, tenant: Tenant) -> Policy:
    row = DunningPolicy.objects.filter(tenant=tenant, customer__isnull=True).first()
    return policy_of(row) if row else DEFAULT_POLICY


def bill_while_suspended_get(*, tenant: Tenant) -> bool:
    settings = InvoicingSettings.objects.filter(tenant=tenant).only("bill_while_suspended").first()
    return settings.bill_while_suspended if settings else True


def tenant_policy_set(
    *,
    tenant: Tenant,
    values: Mapping[str, Any],
    actor: Actor,
    at: datetime,
    bill_while_suspended: bool | None = None,
    pay_url: str | None = None,
) -> Policy:
    """Replace the tenant's policy (validated: ``DunningPolicyInvalid``), and set whether suspended
    subscriptions are still billed when given; audited."""
    policy = policy_validate(values)
    before = tenant_policy_get(tenant=tenant).as_dict()
    with transaction.atomic():
        defaults = policy.as_dict()
        if pay_url is not None:
            defaults["pay_url"] = pay_url
        DunningPolicy.objects.update_or_create(tenant=tenant, customer=None, defaults=defaults)
        after = dict(defaults)
        if bill_while_suspended is not None:
            before["bill_while_suspended"] = bill_while_suspended_get(tenant=tenant)
            InvoicingSettings.objects.update_or_create(
                tenant=tenant, defaults={"bill_while_suspended": bill_while_suspended}
            )
            after["bill_while_suspended"] = bill_while_suspended
        audit_record(
            tenant=tenant,
            actor=actor,
            action="dunning_policy.updated",
            object_type="tenant",
            object_id=str(tenant.pk),
            at=at,
            before=before,
            after=after,
        )
    return policy


def customer_policy_get(*, customer: Customer) -> Policy | None:
    """The customer's own policy, or None when it follows the tenant's."""
    row = DunningPolicy.objects.filter(tenant_id=customer.tenant_id, customer=customer).first()
    return policy_of(row) if row else None


def customer_policy_set(*, customer: Customer, values: Mapping[str, Any], actor: Actor, at: datetime) -> Policy:
    policy = policy_validate(values)
    with transaction.atomic():
        DunningPolicy.objects.update_or_create(
            tenant_id=customer.tenant_id, customer=customer, defaults=policy.as_dict()
        )
        audit_record(
            tenant=customer.tenant,
            actor=actor,
            action="customer.dunning_policy_updated",
            object_type="customer",
            object_id=str(customer.pk),
            at=at,
            after=policy.as_dict(),
        )
    return policy


def customer_policy_delete(*, customer: Customer, actor: Actor, at: datetime) -> bool:
    """The customer follows the tenant's policy again. Returns whether it had its own."""
    with transaction.atomic():
        deleted, _ = DunningPolicy.objects.filter(tenant_id=customer.tenant_id, customer=customer).delete()
        if deleted:
            audit_record(
                tenant=customer.tenant,
                actor=actor,
                action="customer.dunning_policy_removed",
                object_type="customer",
                object_id=str(customer.pk),
                at=at,
            )
    return bool(deleted)


def policies_load(*, tenant_id: Any, customer_ids: Iterable[Any] | None = None) -> tuple[Policy, dict[Any, Policy]]:
    """The tenant's policy and the customers' own (by customer id), in one query."""
    rows = DunningPolicy.objects.filter(tenant_id=tenant_id)
    if customer_ids is not None:
        rows = rows.filter(Q(customer__isnull=True) | Q(customer_id__in=list(customer_ids)))
    tenant_policy = DEFAULT_POLICY
    own: dict[Any, Policy] = {}
    for row in rows:
        if row.customer_id is None:
            tenant_policy = policy_of(row)
        else:
            own[row.customer_id] = policy_of(row)
    return tenant_policy, own
