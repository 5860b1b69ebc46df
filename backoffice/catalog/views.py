"""Back-office catalog pages: products, meters, tax rates, plans with their price history, and the
price calculator.

Views stay thin: they parse forms and call the catalog services and selectors the API calls, so a
rule cannot differ between the pages and the API. What is left here is presentation: grouping the
price versions of a plan into books and turning stored decimal strings into numbers the templates
can print in the reader's language.
"""

import json
import logging
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from backoffice.access import EVERYONE, WRITERS, can_write, current_actor, current_tenant, staff_view
from backoffice.catalog_forms import (
    MAX_USAGE_ROWS,
    CalculatorForm,
    MeterEditForm,
    MeterForm,
    PlanJsonForm,
    PriceVersionForm,
    ProductEditForm,
    ProductForm,
    TaxRateForm,
    UsageFormSet,
)
from billing_platform.errors import DomainError
from billing_platform.money import minor_unit_exponent
from catalog.charge_models.base import decimal_str
from catalog.models import Meter, Plan, PlanComponent, PriceOverride, PriceVersion, Product, ProductKind, TaxCategory
from catalog.quotes import Quote, UsageInput, price_quote
from catalog.selectors import (
    meter_get,
    meter_list,
    plan_get,
    plan_list,
    product_get,
    product_list,
    tax_rate_list,
)
from catalog.services import (
    meter_create,
    meter_update,
    plan_create,
    price_version_create,
    product_create,
    product_update,
    tax_rate_set,
)
from customers.selectors import customer_get
from tenancy.models import Tenant

logger = logging.getLogger(__name__)

PAGE_SIZE = 50
CALCULATOR_ROWS = 3
USAGE_PREFIX = "usage"

# Keys of charges and quote details whose values are names (dimension values, codes), never numbers.
NAME_KEYS = frozenset(
    {"values", "match", "meter", "source", "model", "dimensions", "assumption", "clamped_to", "cell", "event_count"}
)
LINE_TYPES = {
    "hardware": gettext_lazy("Hardware"),
    "service": gettext_lazy("Service"),
    "usage": gettext_lazy("Usage"),
    "fee": gettext_lazy("Fee"),
}


# --- presentation helpers -------------------------------------------------------------------


def _plain(value: Decimal, places: int = 2) -> Decimal:
    """Trailing zeros off, but at least ``places`` decimals: 240.0000000000 -> 240.00, 0.0125 stays."""
    exponent = value.normalize().as_tuple().exponent
    shown = max(places, -exponent if isinstance(exponent, int) else 0)
    return value.quantize(Decimal(1).scaleb(-shown))


def _places(currency: str) -> int:
    try:
        return minor_unit_exponent(currency)
    except ValueError:  # not an ISO 4217 code: show it as it is stored, two places at least
        return 2


def _money(value: Decimal | None, currency: str) -> Decimal | None:
    return None if value is None else _plain(value, _places(currency))


def _numbers(value: Any, key: str = "") -> Any:
    """Stored JSON (charges, quote details) with its decimal strings turned into Decimals, so the
    templates print them in the reader's format (0,010 in French)."""
    if key in NAME_KEYS:
        return value
    if isinstance(value, dict):
        return {k: _numbers(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            return value
        return number if number.is_finite() else value
    return value


# Charge properties that are amounts of money (printed with the currency's decimals, 26 -> 26.00);
# unit amounts keep their own precision (0.0125).
MONEY_KEYS = frozenset({"amount", "package_amount", "fixed_per_event", "flat_amount"})


def _charge(charge: Any, currency: str) -> Any:
    """A stored charge ready to print: numbers as Decimals, amounts with the currency's decimals,
    and each tier with its lower bound (tier i covers (up_to[i-1], up_to[i]]), matrix cells included."""
    if not isinstance(charge, dict):
        return charge
    view = _numbers(charge)
    for key in MONEY_KEYS & set(view):
        if isinstance(view[key], Decimal):
            view[key] = _money(view[key], currency)
    if isinstance(view.get("tiers"), list):
        lower: Any = Decimal(0)
        for tier in view["tiers"]:
            if isinstance(tier, dict):
                tier["from"] = lower
                lower = tier.get("up_to") if tier.get("up_to") is not None else lower
                if isinstance(tier.get("flat_amount"), Decimal):
                    tier["flat_amount"] = _money(tier["flat_amount"], currency)
    if isinstance(view.get("cells"), list):
        view["cells"] = [
            {**cell, "charge": _charge(charge["cells"][i].get("charge"), currency)} if isinstance(cell, dict) else cell
            for i, cell in enumerate(view["cells"])
        ]
    if isinstance(view.get("default"), dict):
        view["default"] = _charge(charge["default"], currency)
    return view


def _page(request: HttpRequest, qs: Any) -> Any:
    return Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))


# --- products -------------------------------------------------------------------------------


def _ssps(product: Product) -> list[tuple[str, Decimal]]:
    return [(s.currency, s.amount) for s in product.ssps.all()]


@staff_view(EVERYONE)
def products(request: HttpRequest) -> HttpResponse:
    page = _page(request, product_list(tenant=current_tenant(request)))
    rows = [{"product": p, "ssps": [(c, _money(a, c)) for c, a in _ssps(p)]} for p in page.object_list]
    return render(
        request, "backoffice/catalog/products.html", {"page": page, "rows": rows, "can_write": can_write(request)}
    )


@staff_view(WRITERS)
def product_new(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    form = ProductForm(request.POST or None, initial={"ssp_currency": tenant.default_currency})
    if request.method == "POST" and form.is_valid():
        try:
            product = product_create(
                tenant=tenant, actor=current_actor(request), at=timezone.now(), **form.service_kwargs()
            )
        except DomainError as exc:
            form.apply_domain_errors(exc)
        else:
            messages.success(request, _("Product %(code)s created.") % {"code": product.code})
            return redirect("backoffice:catalog-products")
    return render(request, "backoffice/catalog/product_form.html", {"form": form, "creating": True})


@staff_view(WRITERS)
def product_edit(request: HttpRequest, code: str) -> HttpResponse:
    tenant = current_tenant(request)
    try:
        product = product_get(tenant=tenant, code=code)
    except DomainError:
        raise Http404("No such product.") from None
    current = _ssps(product)
    ssp_currency, ssp_amount = next(
        ((c, a) for c, a in current if c == tenant.default_currency), current[0] if current else ("", None)
    )
    initial = {
        "name": product.name,
        "tax_category": product.tax_category,
        "revenue_treatment": product.revenue_treatment,
        "ssp_currency": ssp_currency or tenant.default_currency,
        "ssp_amount": _money(ssp_amount, ssp_currency) if ssp_amount is not None else None,
    }
    form = ProductEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            product_update(
                tenant=tenant,
                actor=current_actor(request),
                at=timezone.now(),
                code=code,
                changes=form.changes(current),
            )
        except DomainError as exc:
            form.apply_domain_errors(exc)
        else:
            messages.success(request, _("Product %(code)s updated.") % {"code": code})
            return redirect("backoffice:catalog-products")
    context = {
        "form": form,
        "creating": False,
        "product": product,
        "ssps": [(c, _money(a, c)) for c, a in current],
    }
    return render(request, "backoffice/catalog/product_form.html", context)


# --- meters ---------------------------------------------------------------------------------


@staff_view(EVERYONE)
def meters(request: HttpRequest) -> HttpResponse:
    page = _page(request, meter_list(tenant=current_tenant(request)))
    return render(request, "backoffice/catalog/meters.html", {"page": page, "can_write": can_write(request)})


@staff_view(WRITERS)
def meter_new(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    form = MeterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            meter = meter_create(
                tenant=tenant, actor=current_actor(request), at=timezone.now(), **form.service_kwargs()
            )
        except DomainError as exc:
            form.apply_domain_errors(exc)
        else:
            messages.success(request, _("Meter %(code)s created.") % {"code": meter.code})
            return redirect("backoffice:catalog-meters")
    return render(request, "backoffice/catalog/meter_form.html", {"form": form, "creating": True})


@staff_view(WRITERS)
def meter_edit(request: HttpRequest, code: str) -> HttpResponse:
    tenant = current_tenant(request)
    try:
        meter = meter_get(tenant=tenant, code=code)
    except DomainError:
        raise Http404("No such meter.") from None
    form = MeterEditForm(request.POST or None, initial={"name": meter.name})
    if request.method == "POST" and form.is_valid():
        try:
            meter_update(
                tenant=tenant,
                actor=current_actor(request),
                at=timezone.now(),
                code=code,
                changes={"name": form.cleaned_data["name"]},
            )
        except DomainError as exc:
            form.apply_domain_errors(exc)
        else:
            messages.success(request, _("Meter %(code)s updated.") % {"code": code})
            return redirect("backoffice:catalog-meters")
    return render(request, "backoffice/catalog/meter_form.html", {"form": form, "creating": False, "meter": meter})


# --- tax rates ------------------------------------------------------------------------------


def _tax_rates_page(request: HttpRequest, form: TaxRateForm) -> HttpResponse:
    page = _page(request, tax_rate_list(tenant=current_tenant(request)))
    rows = [{"rate": r, "percent": _plain(r.rate, 0)} for r in page.object_list]
    context = {"page": page, "rows": rows, "form": form, "can_write": can_write(request)}
    return render(request, "backoffice/catalog/tax_rates.html", context)


@staff_view(EVERYONE)
def tax_rates(request: HttpRequest) -> HttpResponse:
    return _tax_rates_page(request, TaxRateForm())


@staff_view(WRITERS)
@require_POST
def tax_rate_set_view(request: HttpRequest) -> HttpResponse:
    form = TaxRateForm(request.POST)
    if form.is_valid():
        try:
            rate = tax_rate_set(
                tenant=current_tenant(request), actor=current_actor(request), at=timezone.now(), **form.cleaned_data
            )
        except DomainError as exc:
            form.apply_domain_errors(exc)
        else:
            messages.success(
                request,
                _("Tax rate for %(country)s, %(category)s set to %(rate)s %%.")
                % {"country": rate.country, "category": rate.get_tax_category_display(), "rate": _plain(rate.rate, 0)},
            )
            return redirect("backoffice:catalog-tax-rates")
    return _tax_rates_page(request, form)


# --- plans ----------------------------------------------------------------------------------


def _books(plan: Plan) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for version in plan.price_versions.all():
        seen.setdefault((version.currency, version.regions_key), None)
    return list(seen)


@staff_view(EVERYONE)
def plans(request: HttpRequest) -> HttpResponse:
    page = _page(request, plan_list(tenant=current_tenant(request)))
    rows = [{"plan": p, "components": len(p.components.all()), "books": _books(p)} for p in page.object_list]
    return render(
        request, "backoffice/catalog/plans.html", {"page": page, "rows": rows, "can_write": can_write(request)}
    )


def _example_plan(tenant: Tenant) -> dict[str, Any]:
    """api.md's Smart Fleet offer, with the tenant's own product and meter codes where it has them."""
    codes: dict[str, str] = {}
    for product in product_list(tenant=tenant):
        codes.setdefault(product.kind, product.code)
    for code, kind in (("eld-200", "hardware"), ("fleet-platform", "service"), ("data-overage", "usage")):
        if product_list(tenant=tenant, kind=kind).filter(code=code).exists():
            codes[kind] = code
    meter = meter_list(tenant=tenant).filter(code="data_mb").first() or meter_list(tenant=tenant).first()
    return {
        "code": "smart-fleet",
        "name": "Smart Fleet",
        "interval": "month",
        "commitment_months": 12,
        "components": [
            {
                "product": codes.get(ProductKind.HARDWARE, "eld-200"),
                "kind": "hardware",
                "price": "240.00",
                "instalments": 12,
                "bill_on": "signature",
            },
            {
                "product": codes.get(ProductKind.SERVICE, "fleet-platform"),
                "kind": "service",
                "per_device": True,
                "starts_on": "activation",
                "charge": {"model": "flat", "amount": "25.00"},
            },
            {
                "product": codes.get(ProductKind.USAGE, "data-overage"),
                "kind": "usage",
                "meter": meter.code if meter else "data_mb",
                "pooled": True,
                "included_per_device": 1024,
                "charge": {
                    "model": "graduated",
                    "tiers": [{"up_to": 10000, "unit_amount": "0.010"}, {"up_to": None, "unit_amount": "0.005"}],
                },
            },
        ],
        "prices": [{"currency": tenant.default_currency}],
    }


@staff_view(WRITERS)
def plan_new(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    form = PlanJsonForm(request.POST or None, initial={"definition": json.dumps(_example_plan(tenant), indent=2)})
    if request.method == "POST" and form.is_valid():
        try:
            plan = plan_create(tenant=tenant, actor=current_actor(request), at=timezone.now(), **form.service_kwargs())
        except DomainError as exc:
            form.apply_domain_errors(exc)
        else:
            messages.success(request, _("Plan %(code)s created.") % {"code": plan.code})
            return redirect("backoffice:catalog-plan-detail", code=plan.code)
    context = {
        "form": form,
        "products": product_list(tenant=tenant),
        "meters": meter_list(tenant=tenant),
    }
    return render(request, "backoffice/catalog/plan_new.html", context)


def _effective_key(version: PriceVersion) -> tuple[bool, Any]:
    # As catalog/versions.py orders them: a version without effective_from is in effect from the start.
    return (version.effective_from is not None, version.effective_from or version.created_at)


def _component_price(price: Any, currency: str) -> dict[str, Any]:
    return {
        "component": price.component,
        "price": _money(price.price, currency),
        "charge": _charge(price.charge, currency),
        "min_amount": _money(price.min_amount, currency),
        "max_amount": _money(price.max_amount, currency),
    }


def _price_books(versions: Iterable[PriceVersion], now: Any) -> list[dict[str, Any]]:
    """The versions grouped by (currency, regions), oldest first, each marked scheduled (not yet in
    effect), current (the latest in effect) or superseded."""
    groups: dict[tuple[str, str], list[PriceVersion]] = {}
    for version in versions:
        groups.setdefault((version.currency, version.regions_key), []).append(version)
    books = []
    for (currency, regions_key), items in groups.items():
        items.sort(key=_effective_key)
        in_effect = [v for v in items if v.effective_from is None or v.effective_from <= now]
        current = in_effect[-1] if in_effect else None
        rows = []
        for version in items:
            if version.effective_from is not None and version.effective_from > now:
                status = "scheduled"
            elif version is current:
                status = "current"
            else:
                status = "superseded"
            prices = sorted(version.prices.all(), key=lambda p: p.component.position)
            rows.append(
                {"version": version, "status": status, "prices": [_component_price(p, currency) for p in prices]}
            )
        books.append({"currency": currency, "regions": regions_key.split(",") if regions_key else [], "rows": rows})
    return books


def _price_change_initial(plan: Plan, tenant: Tenant, components: list[PlanComponent]) -> dict[str, Any]:
    """The price change form starts from the latest version (the tenant's currency first), so a
    change is an edit of the prices in force, not a blank page."""
    versions = list(plan.price_versions.all())
    preferred = [v for v in versions if v.currency == tenant.default_currency and not v.regions] or versions
    latest = max(preferred, key=_effective_key, default=None)
    entries: list[dict[str, Any]] = []
    if latest is not None:
        by_component = {p.component_id: p for p in latest.prices.all()}
        for component in components:
            price = by_component.get(component.pk)
            entry: dict[str, Any] = {"product": component.product.code}
            if price is not None and price.price is not None:
                entry["price"] = decimal_str(_plain(price.price, _places(latest.currency)))
            elif price is not None:
                entry["charge"] = price.charge
                for name in ("min_amount", "max_amount"):
                    value = getattr(price, name)
                    if value is not None:
                        entry[name] = decimal_str(_plain(value, _places(latest.currency)))
            entries.append(entry)
    return {
        "currency": latest.currency if latest else tenant.default_currency,
        "regions": ", ".join(latest.regions) if latest else "",
        "components": json.dumps(entries, indent=2),
    }


def _plan_or_404(tenant: Tenant, code: str) -> Plan:
    try:
        return plan_get(tenant=tenant, code=code)
    except DomainError:
        raise Http404("No such plan.") from None


def _plan_page(request: HttpRequest, plan: Plan, form: PriceVersionForm | None = None) -> HttpResponse:
    tenant = current_tenant(request)
    components = list(plan.components.all())
    tz = ZoneInfo(tenant.timezone)
    if form is None and can_write(request):
        form = PriceVersionForm(initial=_price_change_initial(plan, tenant, components), tz=tz)
    # The API lists a plan's overrides the same way; there is no selector for them yet.
    overrides = (
        PriceOverride.objects.filter(tenant=tenant, component__plan=plan)
        .select_related("customer", "component__product")
        .order_by("customer__external_id", "component__position", "effective_from")
    )
    context = {
        "plan": plan,
        "components": components,
        "books": _price_books(plan.price_versions.all(), timezone.now()),
        "overrides": [
            {
                "override": o,
                "price": _money(o.price, o.currency),
                "charge": _charge(o.charge, o.currency),
                "min_amount": _money(o.min_amount, o.currency),
                "max_amount": _money(o.max_amount, o.currency),
            }
            for o in overrides
        ],
        "form": form,
        "tz_name": tenant.timezone,
        "can_write": can_write(request),
    }
    return render(request, "backoffice/catalog/plan_detail.html", context)


@staff_view(EVERYONE)
def plan_detail(request: HttpRequest, code: str) -> HttpResponse:
    return _plan_page(request, _plan_or_404(current_tenant(request), code))


@staff_view(WRITERS)
def price_version_new(request: HttpRequest, code: str) -> HttpResponse:
    tenant = current_tenant(request)
    plan = _plan_or_404(tenant, code)
    if request.method != "POST":
        return redirect("backoffice:catalog-plan-detail", code=plan.code)
    form = PriceVersionForm(request.POST, tz=ZoneInfo(tenant.timezone))
    if form.is_valid():
        try:
            version = price_version_create(
                tenant=tenant, actor=current_actor(request), at=timezone.now(), plan=plan, data=form.service_data()
            )
        except DomainError as exc:
            form.apply_domain_errors(exc)
        else:
            when = (
                timezone.localtime(version.effective_from, ZoneInfo(tenant.timezone))
                if version.effective_from
                else None
            )
            messages.success(
                request,
                _("Price change scheduled: %(currency)s prices from %(when)s.")
                % {"currency": version.currency, "when": when.strftime("%Y-%m-%d %H:%M %Z") if when else "—"},
            )
            return redirect("backoffice:catalog-plan-detail", code=plan.code)
    return _plan_page(request, plan, form)


# --- price calculator -----------------------------------------------------------------------


def _calculator_choices(tenant: Tenant) -> tuple[list[Plan], list[tuple[str, str]], list[Meter]]:
    all_plans = list(plan_list(tenant=tenant))
    return all_plans, [(p.code, "%s (%s)" % (p.name, p.code)) for p in all_plans], list(meter_list(tenant=tenant))


def _quote_lines(quote: Quote, usage: list[UsageInput]) -> list[dict[str, Any]]:
    used: dict[str, Decimal] = {}
    for u in usage:
        used[u.meter] = used.get(u.meter, Decimal(0)) + u.quantity
    lines = []
    for line in quote.lines:
        detail = _numbers(line.detail)
        if "price_per_device" in detail:
            detail["price_per_device"] = _money(detail["price_per_device"], quote.currency)
        if line.type == "usage":
            # What was entered for the meter, before the allowance (the line's quantity is after it).
            detail["used"] = _plain(used.get(str(detail.get("meter")), Decimal(0)), 0)
        lines.append(
            {
                "line": line,
                "type_label": LINE_TYPES.get(line.type, line.type),
                "quantity": _plain(line.quantity, 0),
                "unit_amount": None if line.unit_amount is None else _money(line.unit_amount, quote.currency),
                "detail": detail,
            }
        )
    return lines


def _run_quote(tenant: Tenant, form: CalculatorForm, rows: Iterable[Any]) -> dict[str, Any]:
    data = form.cleaned_data
    try:
        customer = customer_get(tenant=tenant, external_id=data["customer"]) if data["customer"] else None
        usage = [
            UsageInput(
                row.cleaned_data["meter"],
                row.cleaned_data["quantity"],
                row.cleaned_data["dimensions"],
                row.cleaned_data["events"] or 0,
            )
            for row in rows
            if row.is_used()
        ]
        quote = price_quote(
            tenant=tenant,
            plan=plan_get(tenant=tenant, code=data["plan"]),
            currency=data["currency"],
            country=data["region"],
            devices=data["devices"],
            usage=usage,
            at=timezone.now(),
            customer=customer,
        )
    except DomainError as exc:
        return {"error": exc}
    except ArithmeticError:
        # Decimal traps (an amount too large to rate exactly): a bad input, not a page crash.
        logger.warning("price calculator could not rate plan %s", data["plan"], exc_info=True)
        return {"arithmetic_error": True}
    taxes = [
        {
            "tax": t,
            "label": TaxCategory(t.category).label if t.category in TaxCategory.values else t.category,
            "rate": _plain(t.rate, 0),
        }
        for t in quote.taxes
    ]
    return {"quote": quote, "lines": _quote_lines(quote, usage), "taxes": taxes}


@staff_view(EVERYONE)
def calculator(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    all_plans, plan_choices, all_meters = _calculator_choices(tenant)
    meter_choices = [(m.code, "%s (%s)" % (m.name, m.code)) for m in all_meters]
    result: dict[str, Any] = {}
    if request.method == "POST":
        data = request.POST.copy()
        if "add_row" in data:
            # Without JavaScript, "add a row" is a round trip that posts one more (empty) row.
            total = data.get(f"{USAGE_PREFIX}-TOTAL_FORMS", "")
            if total.isdigit():
                data[f"{USAGE_PREFIX}-TOTAL_FORMS"] = str(min(int(total) + 1, MAX_USAGE_ROWS))
        form = CalculatorForm(data, plans=plan_choices)
        formset = UsageFormSet(data, prefix=USAGE_PREFIX, form_kwargs={"meters": meter_choices})
        form_valid, rows_valid = form.is_valid(), formset.is_valid()
        if form_valid and rows_valid:
            result = _run_quote(tenant, form, formset.forms)
        else:
            result = {"invalid": True}
    else:
        asked = request.GET.get("plan")
        first = next((p for p in all_plans if p.code == asked), all_plans[0] if all_plans else None)
        usage_meters = [c.meter.code for c in first.components.all() if c.meter is not None] if first else []
        rows = [{"meter": m} for m in usage_meters[:MAX_USAGE_ROWS]]
        rows += [{} for _ in range(max(0, CALCULATOR_ROWS - len(rows)))]
        form = CalculatorForm(
            initial={"plan": first.code if first else "", "currency": tenant.default_currency, "devices": 1},
            plans=plan_choices,
        )
        formset = UsageFormSet(prefix=USAGE_PREFIX, initial=rows, form_kwargs={"meters": meter_choices})
    context = {"form": form, "formset": formset, "has_plans": bool(all_plans), **result}
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "backoffice/catalog/_quote.html", context)
    return render(request, "backoffice/catalog/calculator.html", context)
