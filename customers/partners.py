"""Reading the tenant's partners (resellers), for the apps below ``partners`` that need one: a
customer is assigned to a partner by its code. Partners are created and changed by
``partners.services``, which also checks their commission plan."""

from django.db.models import QuerySet

from customers.errors import PartnerNotFound
from customers.models import Partner
from tenancy.models import Tenant


def partner_list(*, tenant: Tenant, status: str | None = None) -> QuerySet[Partner]:
    qs = Partner.objects.filter(tenant=tenant)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("name", "code")


def partner_get(*, tenant: Tenant, code: str) -> Partner:
    partner = Partner.objects.filter(tenant=tenant, code=code).first()
    if partner is None:
        raise PartnerNotFound("No partner with code %s." % code)
    return partner
