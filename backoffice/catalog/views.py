"""Back-office catalog pages: products, meters, tax rates, plans with their price history, and the
price calculator.

Views stay thin: they parse forms and call the catalog services and selectors the API calls, so a
rule cannot differ between the pages and the API. What the pages show is computed in
``backoffice.catalog.presenters``.
"""

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from backoffice.access import EVERYONE, WRITERS, can_write, current_actor, current_tenant, staff_view
from backoffice.catalog.forms import (
    MAX_USAGE_ROWS,
    CalculatorForm,
    MeterEditForm,
    MeterForm,
    PlanJsonForm,
    ProductEditForm,
    ProductForm,
    TaxRateForm,
    UsageFormSet,
)
from backoffice.catalog.presenters import (
    example_plan,
    override_row,
    plan_books,
    price_books,
    product_ssps,
    quote_lines,
    quote_taxes,
)
from backoffice.catalog.price_change import PriceChange, affected, service_dry_run
from backoffice.formatting import currency_places, decimal_plain, moment
from backoffice.pages import page_of
from billing_platform.errors import DomainError, InvalidInput
from catalog.models import TAX_RATE_SINCE_ALWAYS, Meter, Plan, PriceVersion
from catalog.quotes import UsageInput, price_quote
from catalog.selectors import (
    meter_get,
    meter_list,
    plan_get,
    plan_list,
    price_override_list,
    product_get,
    product_list,
    tax_rate_list,
)
from catalog.services import (
    meter_create,
    meter_update,
    plan_create,
    plan_update,
    price_version_create,
    product_create,
    product_update,
    tax_rate_set,
)
from customers.selectors import customer_get
from tenancy.models import Tenant

logger = logging.getLogger(__name__)

CALCULATOR_ROWS = 3
USAGE_PREFIX = "usage"


# --- products -------------------------------------------------------------------------------


def _created(request: HttpRequest, form: Any, create: Callable[..., Any], message: str) -> Any:
    """On a valid POST, the object made by the catalog service ``create`` from the form's
    ``service_kwargs``, with ``message`` (its code in ``%(code)s``) flashed; else None, and the
    service's refusal on the form."""
    if request.method != "POST" or not form.is_valid():
        return None
    try:
        made = create(
            tenant=current_tenant(request), actor=current_actor(request), at=timezone.now(), **form.service_kwargs()
        )
    except DomainError as exc:
        form.apply_domain_errors(exc)
        return None
    messages.success(request, message % {"code": made.code})
    return made


@staff_view(EVERYONE)
def products(request: HttpRequest) -> HttpResponse:
    page = page_of(request, product_list(tenant=current_tenant(request)))
    rows = [{"product": p, "ssps": product_ssps(p)} for p in page.object_list]
    return render(
        request, "backoffice/catalog/products.html", {"page": page, "rows": rows, "can_write": can_write(request)}
    )


@staff_view(WRITERS)
def product_new(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    form = ProductForm(request.POST or None, initial={"ssp_currency": tenant.default_currency})
    if _created(request, form, product_create, _("Product %(code)s created.")) is not None:
        return redirect("backoffice:catalog-products")
    return render(request, "backoffice/catalog/product_form.html", {"form": form, "creating": True})


@staff_view(WRITERS)
def product_edit(request: HttpRequest, code: str) -> HttpResponse:
    tenant = current_tenant(request)
    try:
        product = product_get(tenant=tenant, code=code)
    except DomainError:
        raise Http404("No such product.") from None
    current = product_ssps(product)
    ssp = next((m for m in current if m.currency.code == tenant.default_currency), current[0] if current else None)
    initial = {
        "name": product.name,
        "tax_category": product.tax_category,
        "revenue_treatment": product.revenue_treatment,
        "ssp_currency": ssp.currency.code if ssp is not None else tenant.default_currency,
        "ssp_amount": decimal_plain(ssp.amount, currency_places(ssp.currency.code)) if ssp is not None else None,
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
        "ssps": current,
    }
    return render(request, "backoffice/catalog/product_form.html", context)


# --- meters ---------------------------------------------------------------------------------


@staff_view(EVERYONE)
def meters(request: HttpRequest) -> HttpResponse:
    page = page_of(request, meter_list(tenant=current_tenant(request)))
    return render(request, "backoffice/catalog/meters.html", {"page": page, "can_write": can_write(request)})


@staff_view(WRITERS)
def meter_new(request: HttpRequest) -> HttpResponse:
    form = MeterForm(request.POST or None)
    if _created(request, form, meter_create, _("Meter %(code)s created.")) is not None:
        return redirect("backoffice:catalog-meters")
    return render(request, "backoffice/catalog/meter_form.html", {"form": form, "creating": True})


@staff_view(WRITERS)
def meter_edit(request: HttpRequest, code: str) -> HttpResponse:
    tenant = current_tenant(request)
    try:
        meter = meter_get(tenant=tenant, code=code)
    except DomainError:
        raise Http404("No such meter.") from None
    form = MeterEditForm(request.POST or None, initial={"name": meter.name, "accepts_negative": meter.accepts_negative})
    if request.method == "POST" and form.is_valid():
        try:
            meter_update(
                tenant=tenant,
                actor=current_actor(request),
                at=timezone.now(),
                code=code,
                changes={"name": form.cleaned_data["name"], "accepts_negative": form.cleaned_data["accepts_negative"]},
            )
        except DomainError as exc:
            form.apply_domain_errors(exc)
        else:
            messages.success(request, _("Meter %(code)s updated.") % {"code": code})
            return redirect("backoffice:catalog-meters")
    return render(request, "backoffice/catalog/meter_form.html", {"form": form, "creating": False, "meter": meter})


# --- tax rates ------------------------------------------------------------------------------


def _tax_rates_page(request: HttpRequest, form: TaxRateForm) -> HttpResponse:
    page = page_of(request, tax_rate_list(tenant=current_tenant(request)))
    rows = [{"rate": r, "since_always": r.valid_from == TAX_RATE_SINCE_ALWAYS} for r in page.object_list]
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
                _("Tax rate for %(country)s, %(category)s set to %(rate)s %% from %(start)s.")
                % {
                    "country": rate.country,
                    "category": rate.get_tax_category_display(),
                    "rate": decimal_plain(rate.rate, 0),
                    "start": _("always") if rate.valid_from == TAX_RATE_SINCE_ALWAYS else rate.valid_from.isoformat(),
                },
            )
            return redirect("backoffice:catalog-tax-rates")
    return _tax_rates_page(request, form)


# --- plans ----------------------------------------------------------------------------------


@staff_view(EVERYONE)
def plans(request: HttpRequest) -> HttpResponse:
    page = page_of(request, plan_list(tenant=current_tenant(request)))
    rows = [{"plan": p, "components": len(p.components.all()), "books": plan_books(p)} for p in page.object_list]
    return render(
        request, "backoffice/catalog/plans.html", {"page": page, "rows": rows, "can_write": can_write(request)}
    )


@staff_view(WRITERS)
def plan_new(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    form = PlanJsonForm(request.POST or None, initial={"definition": json.dumps(example_plan(tenant), indent=2)})
    plan = _created(request, form, plan_create, _("Plan %(code)s created."))
    if plan is not None:
        return redirect("backoffice:catalog-plan-detail", code=plan.code)
    context = {
        "form": form,
        "products": product_list(tenant=tenant),
        "meters": meter_list(tenant=tenant),
    }
    return render(request, "backoffice/catalog/plan_new.html", context)


def _plan_or_404(tenant: Tenant, code: str) -> Plan:
    try:
        return plan_get(tenant=tenant, code=code)
    except DomainError:
        raise Http404("No such plan.") from None


def _plan_page(
    request: HttpRequest,
    plan: Plan,
    change: PriceChange | None = None,
    preview: dict[str, Any] | None = None,
) -> HttpResponse:
    tenant = current_tenant(request)
    components = list(plan.components.all())
    tz = ZoneInfo(tenant.timezone)
    if change is None and can_write(request):
        change = PriceChange.build(plan=plan, tenant=tenant, components=components, tz=tz)
    overrides = price_override_list(tenant=tenant, plan=plan).order_by(
        "customer__external_id", "component__position", "effective_from"
    )
    context = {
        "plan": plan,
        "components": components,
        "books": price_books(plan.price_versions.all(), timezone.now()),
        "overrides": [override_row(o) for o in overrides],
        "change": change,
        "form": change.form if change else None,
        "errors": change.error_rows() if change and change.form.is_bound else [],
        "preview": preview,
        "tz_name": tenant.timezone,
        "can_write": can_write(request),
    }
    return render(request, "backoffice/catalog/plan_detail.html", context)


@staff_view(EVERYONE)
def plan_detail(request: HttpRequest, code: str) -> HttpResponse:
    return _plan_page(request, _plan_or_404(current_tenant(request), code))


@staff_view(WRITERS)
@require_POST
def plan_self_service(request: HttpRequest, code: str) -> HttpResponse:
    """Offer the plan in the customer portal's shop, or stop offering it."""
    tenant = current_tenant(request)
    plan = _plan_or_404(tenant, code)
    offered = request.POST.get("self_service") == "on"
    plan_update(tenant=tenant, actor=current_actor(request), at=timezone.now(), code=plan.code, self_service=offered)
    if offered:
        messages.success(request, _("Plan %(code)s is offered in the customer portal's shop.") % {"code": plan.code})
    else:
        messages.success(request, _("Plan %(code)s is no longer offered in the shop.") % {"code": plan.code})
    return redirect("backoffice:catalog-plan-detail", code=plan.code)


@staff_view(WRITERS)
@require_POST
def plan_partner_visible(request: HttpRequest, code: str) -> HttpResponse:
    """Offer the plan to partners for their customers, or stop offering it."""
    tenant = current_tenant(request)
    plan = _plan_or_404(tenant, code)
    offered = request.POST.get("partner_visible") == "on"
    plan_update(tenant=tenant, actor=current_actor(request), at=timezone.now(), code=plan.code, partner_visible=offered)
    if offered:
        messages.success(request, _("Plan %(code)s is offered to partners.") % {"code": plan.code})
    else:
        messages.success(request, _("Plan %(code)s is no longer offered to partners.") % {"code": plan.code})
    return redirect("backoffice:catalog-plan-detail", code=plan.code)


# What stands in for a top field the form refused, so that the rows are checked in the same pass.
def _substitutes(tenant: Tenant) -> dict[str, Any]:
    return {"currency": tenant.default_currency, "price_book": "", "regions": None, "effective_from": None}


@staff_view(WRITERS)
def price_version_new(request: HttpRequest, code: str) -> HttpResponse:
    """A price change in up to three steps, each on the plan page: the rows are checked with the
    service in one pass (nothing written); a change that takes effect in the past, or a "preview"
    asked for, shows who is affected (old → new) and, for the past, needs its box ticked; then
    the version is created."""
    tenant = current_tenant(request)
    plan = _plan_or_404(tenant, code)
    if request.method != "POST":
        return redirect("backoffice:catalog-plan-detail", code=plan.code)
    components = list(plan.components.all())
    change = PriceChange.build(
        plan=plan, tenant=tenant, components=components, tz=ZoneInfo(tenant.timezone), data=request.POST
    )
    change.is_valid()
    substituted = {name for name in _substitutes(tenant) if name in change.form.errors}
    data = change.service_data(substitute=_substitutes(tenant))
    actor, now = current_actor(request), timezone.now()

    def create() -> PriceVersion:
        return price_version_create(tenant=tenant, actor=actor, at=now, plan=plan, data=data)

    if "add_tier" in request.POST or "refresh" in request.POST:
        # A row changed shape (a tier added, another model chosen): shown again, nothing checked yet.
        return _plan_page(request, plan, change)
    error, preview = service_dry_run(create, lambda v: affected(tenant=tenant, plan=plan, version=v, now=now))
    if isinstance(error, InvalidInput):
        change.apply_errors(list(error.errors), skip_fields=substituted)
    elif error is not None and not substituted:
        change.form.add_error(None, error.detail)
    if change.has_errors():
        return _plan_page(request, plan, change)
    assert preview is not None
    confirmed = change.form.cleaned_data.get("confirm_past")
    if preview["in_past"] and not confirmed and request.POST.get("step") == "confirm" and "preview" not in request.POST:
        change.form.add_error("confirm_past", _("Tick this box to create a version that takes effect in the past."))
        return _plan_page(request, plan, change, preview)
    if "preview" in request.POST or (preview["in_past"] and not confirmed):
        return _plan_page(request, plan, change, preview)
    try:
        version = create()
    except DomainError as exc:
        change.form.apply_domain_errors(exc)
        return _plan_page(request, plan, change)
    when = moment(version.effective_from, tenant.timezone) if version.effective_from else "—"
    messages.success(
        request,
        _("Price change scheduled: %(currency)s prices from %(when)s.") % {"currency": version.currency, "when": when},
    )
    return redirect("backoffice:catalog-plan-detail", code=plan.code)


# --- price calculator -----------------------------------------------------------------------


def _calculator_choices(tenant: Tenant) -> tuple[list[Plan], list[tuple[str, str]], list[Meter]]:
    all_plans = list(plan_list(tenant=tenant))
    return all_plans, [(p.code, "%s (%s)" % (p.name, p.code)) for p in all_plans], list(meter_list(tenant=tenant))


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
    return {"quote": quote, "lines": quote_lines(quote, usage), "taxes": quote_taxes(quote)}


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
        form = CalculatorForm(data, plans=plan_choices, tenant=tenant)
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
            tenant=tenant,
        )
        formset = UsageFormSet(prefix=USAGE_PREFIX, initial=rows, form_kwargs={"meters": meter_choices})
    context = {"form": form, "formset": formset, "has_plans": bool(all_plans), **result}
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "backoffice/catalog/_quote.html", context)
    return render(request, "backoffice/catalog/calculator.html", context)
