from django.db.models import Prefetch, QuerySet

from catalog.errors import MeterNotFound, PlanNotFound, ProductNotFound
from catalog.models import ComponentPrice, Meter, Plan, PlanComponent, PriceOverride, PriceVersion, Product, TaxRate
from tenancy.models import Tenant


def product_list(*, tenant: Tenant, kind: str | None = None) -> QuerySet[Product]:
    qs = Product.objects.filter(tenant=tenant).prefetch_related("ssps")
    if kind:
        qs = qs.filter(kind=kind)
    return qs


def product_get(*, tenant: Tenant, code: str) -> Product:
    product = Product.objects.filter(tenant=tenant, code=code).prefetch_related("ssps").first()
    if product is None:
        raise ProductNotFound("No product with code %s." % code)
    return product


def meter_list(*, tenant: Tenant) -> QuerySet[Meter]:
    return Meter.objects.filter(tenant=tenant)


def meter_get(*, tenant: Tenant, code: str) -> Meter:
    meter = Meter.objects.filter(tenant=tenant, code=code).first()
    if meter is None:
        raise MeterNotFound("No meter with code %s." % code)
    return meter


def tax_rate_list(*, tenant: Tenant, country: str | None = None) -> QuerySet[TaxRate]:
    qs = TaxRate.objects.filter(tenant=tenant)
    if country:
        qs = qs.filter(country=country.upper())
    return qs


def _plan_prefetch(qs: QuerySet[Plan]) -> QuerySet[Plan]:
    components = PlanComponent.objects.select_related("product", "meter").order_by("position")
    versions = PriceVersion.objects.prefetch_related(
        Prefetch("prices", queryset=ComponentPrice.objects.select_related("component__product"))
    ).order_by("currency", "price_book", "regions_key", "effective_from")
    return qs.prefetch_related(
        Prefetch("components", queryset=components), Prefetch("price_versions", queryset=versions)
    )


def plan_list(*, tenant: Tenant) -> QuerySet[Plan]:
    return _plan_prefetch(Plan.objects.filter(tenant=tenant))


def plan_get(*, tenant: Tenant, code: str) -> Plan:
    plan = _plan_prefetch(Plan.objects.filter(tenant=tenant, code=code)).first()
    if plan is None:
        raise PlanNotFound("No plan with code %s." % code)
    return plan


def price_version_list(*, tenant: Tenant, plan: Plan) -> QuerySet[PriceVersion]:
    return (
        PriceVersion.objects.filter(tenant=tenant, plan=plan)
        .prefetch_related(Prefetch("prices", queryset=ComponentPrice.objects.select_related("component__product")))
        .order_by("currency", "price_book", "regions_key", "effective_from")
    )


def price_override_list(*, tenant: Tenant, plan: Plan) -> QuerySet[PriceOverride]:
    """The prices negotiated with customers for the components of ``plan``."""
    return PriceOverride.objects.filter(tenant=tenant, component__plan=plan).select_related(
        "customer", "component__product"
    )


def plan_list_partner_visible(*, tenant: Tenant, currency: str | None = None) -> QuerySet[Plan]:
    """The plans the tenant offers to partners (``partner_visible``), with their components and
    versions; with ``currency``, only those with a price version in that currency (in any book: the
    partner's customer is priced when the subscription is made, ``catalog.versions``)."""
    qs = Plan.objects.filter(tenant=tenant, partner_visible=True)
    if currency:
        qs = qs.filter(pk__in=PriceVersion.objects.filter(tenant=tenant, currency=currency.upper()).values("plan_id"))
    return _plan_prefetch(qs)
