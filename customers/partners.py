"""Reading the tenant's partners (resellers), for the apps below ``partners`` that need one: a
customer is assigned to a partner by its code. Partners are created and changed by
``partners.services``, which also checks their commission plan; the one exception is the customers
API's deprecated ``reseller`` field, whose unknown names become partners here
(``partner_for_reseller``), as the free-text resellers were migrated."""

import re
from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet

from customers.errors import PartnerNotFound
from customers.models import Partner
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record


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


# Every leg of a commission plan, earning nothing: the plan of a partner made from a reseller's name
# until staff set one (partners.plans reads it).
EMPTY_COMMISSION_PLAN = {"hardware": "0", "service": "0", "usage": "0", "fee": "0"}


def partner_code_for_name(*, tenant: Tenant, name: str) -> str:
    """A free code for a partner named ``name``: the name in lower case with dashes ("Geo Sat" ->
    "geo-sat"), followed by -2, -3... when taken."""
    base = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")[:90] or "partner"
    code, n = base, 1
    while Partner.objects.filter(tenant=tenant, code=code).exists():
        n += 1
        code = "%s-%d" % (base, n)
    return code


def partner_for_reseller(*, tenant: Tenant, reseller: str, actor: Actor, at: datetime) -> Partner | None:
    """The partner a ``reseller`` value names (the customers API's field before ``partner``): the
    tenant's partner with this code, else the one with this name (in any case, spaces collapsed),
    else a new partner of that name, as the free-text resellers were migrated: its code made from
    the name, the tenant's currency and country, a commission plan that earns nothing until staff
    set one. Blank: no partner (a direct customer)."""
    name = " ".join((reseller or "").split())
    if not name:
        return None
    partner = Partner.objects.filter(tenant=tenant, code=name).first()
    if partner is not None:
        return partner
    partner = Partner.objects.filter(tenant=tenant, name__iexact=name).order_by("created_at").first()
    if partner is not None:
        return partner
    # A stored name with other spaces inside ("Geo  Sat").
    for candidate in Partner.objects.filter(tenant=tenant).only("name").order_by("created_at"):
        if " ".join(candidate.name.split()).casefold() == name.casefold():
            return Partner.objects.get(pk=candidate.pk)
    with transaction.atomic():
        partner = Partner.objects.create(
            tenant=tenant,
            code=partner_code_for_name(tenant=tenant, name=name),
            name=name[:200],
            currency=tenant.default_currency,
            country=tenant.country or "",
            commission_plan=dict(EMPTY_COMMISSION_PLAN),
        )
        audit_record(
            tenant=tenant,
            actor=actor,
            action="partner.created",
            object_type="partner",
            object_id=partner.code,
            at=at,
            after={"code": partner.code, "name": partner.name, "currency": partner.currency, "reseller": reseller},
        )
    return partner
