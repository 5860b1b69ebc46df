from django.db.models import Q, QuerySet

from customers.errors import CustomerNotFound
from customers.models import Customer
from tenancy.models import Tenant


def customer_list(
    *, tenant: Tenant, search: str | None = None, currency: str | None = None, country: str | None = None
) -> QuerySet[Customer]:
    # With the customer's own dunning policy (a one-to-one of payments, read by its reverse
    # relation): the list's ``dunning_policy`` costs no query per customer.
    qs = Customer.objects.filter(tenant=tenant).select_related("dunning_policy", "partner")
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(external_id__icontains=search) | Q(email__icontains=search))
    if currency:
        qs = qs.filter(currency=currency.upper())
    if country:
        qs = qs.filter(country=country.upper())
    return qs


def customer_shown_get(*, tenant: Tenant, external_id: str) -> Customer:
    """``customer_get`` with what the customer's API representation shows of other rows (its partner's
    code, its own dunning policy) read in the same query."""
    customer = (
        Customer.objects.filter(tenant=tenant, external_id=external_id)
        .select_related("dunning_policy", "partner")
        .first()
    )
    if customer is None:
        raise CustomerNotFound(f"No customer with external_id {external_id}.")
    return customer


def customer_get(*, tenant: Tenant, external_id: str) -> Customer:
    customer = Customer.objects.filter(tenant=tenant, external_id=external_id).first()
    if customer is None:
        raise CustomerNotFound(f"No customer with external_id {external_id}.")
    return customer
