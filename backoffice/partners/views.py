"""Back-office partner pages, for the tenant's channel managers: the list of partners with its search
and status filter, a new partner, and a partner's page (its details and commission plan, its
customers, its users and its commission statements) with the edit form.

Every member of the team reads partners and their customers; commission figures and statements are
for the finance roles; owners and finance admins create and change partners. The views call
``partners.services``, the functions the API calls; a ``DomainError`` becomes an error on the form,
never a 500."""

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from backoffice.access import EVERYONE, WRITERS, can_write, current_actor, current_tenant, sees_audit, staff_view
from backoffice.formatting import query_string
from backoffice.forms import error_summary
from backoffice.pages import clean_text, page_of
from backoffice.partners.forms import (
    LEG_LABELS,
    PartnerFilterForm,
    PartnerForm,
    PartnerKeyForm,
    PartnerUserInviteForm,
    plan_initial,
)
from backoffice.partners.statements import month_accruals
from billing_platform.errors import DomainError
from customers.errors import PartnerNotFound
from customers.models import Customer, Partner
from customers.partners import partner_get
from partners.models import PartnerRole, StatementStatus
from partners.plans import LEGS
from partners.services import partner_create, partner_update
from partners.statements import commissions_by_month
from partners.users import partner_login_path, partner_user_list
from tenancy.models import ApiKey, Tenant

FILTERS = ("q", "status")
# The partner page shows its first customers and their count.
CUSTOMERS_SHOWN = 20


def partner_or_404(tenant: Tenant, code: str) -> Partner:
    try:
        return partner_get(tenant=tenant, code=code)
    except PartnerNotFound:
        raise Http404("No such partner.") from None


# --- the list -------------------------------------------------------------------------------------


@staff_view(EVERYONE)
def partners(request: HttpRequest) -> HttpResponse:
    """GET only; the search and the status are a GET form (the search live, with htmx)."""
    tenant = current_tenant(request)
    form = PartnerFilterForm(request.GET, tenant=tenant)
    form.is_valid()
    page = page_of(request, form.partners())
    params = {k: clean_text(request.GET.get(k, "")) for k in FILTERS}
    finance = sees_audit(request)
    if finance:
        # This month's commission so far, per partner of the page (its statement's once built): only
        # the page's partners are computed (the live search's rows show the column too).
        accruals = month_accruals(tenant=tenant, at=timezone.now(), partners=[p.pk for p in page.object_list])
        for partner in page.object_list:
            partner.accrued = accruals.get(partner.pk, [])
    context = {
        "form": form,
        "page": page,
        "sees_commission": finance,
        "query": query_string(**params),
        "filtered": any(params.values()),
        "can_write": can_write(request),
    }
    template = "backoffice/partners/_rows.html" if request.htmx else "backoffice/partners/list.html"  # type: ignore[attr-defined]
    return render(request, template, context)


@staff_view(WRITERS)
def partner_new(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    form = PartnerForm(
        request.POST or None,
        tenant=tenant,
        initial={"currency": tenant.default_currency, "language": "en", "country": tenant.country or ""},
    )
    if request.method == "POST" and form.is_valid():
        try:
            partner = partner_create(
                tenant=tenant,
                actor=current_actor(request),
                at=timezone.now(),
                code=form.cleaned_data["code"],
                **form.details(),
            )
        except DomainError as exc:
            form.apply_domain_errors(exc)
        else:
            messages.success(request, _("Partner %(name)s created.") % {"name": partner.name})
            return redirect("backoffice:partner-detail", code=partner.code)
    status = 422 if request.method == "POST" else 200
    context = {"form": form, "creating": True, "errors": error_summary(form)}
    return render(request, "backoffice/partners/form.html", context, status=status)


# --- one partner ----------------------------------------------------------------------------------


def plan_rows(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The commission plan as the page shows it: each leg with its rate or tiers."""
    rows = []
    for leg in LEGS:
        value = plan.get(leg, "0")
        tiers = value.get("tiers", []) if isinstance(value, dict) else []
        rows.append({"leg": leg, "label": LEG_LABELS[leg], "rate": None if tiers else value, "tiers": tiers})
    return rows


def partner_page_context(request: HttpRequest, partner: Partner) -> dict[str, Any]:
    tenant = current_tenant(request)
    customers = list(
        Customer.objects.filter(tenant=tenant, partner=partner)
        .order_by("name", "external_id")
        .only("external_id", "name", "country", "currency", "email")[: CUSTOMERS_SHOWN + 1]
    )
    finance = sees_audit(request)
    # The last twelve months, newest first: each statement, and this month's commission so far.
    months = list(reversed(commissions_by_month(tenant=tenant, partner=partner, at=timezone.now()))) if finance else []
    statuses = dict(StatementStatus.choices)
    return {
        "partner": partner,
        "plan": plan_rows(partner.commission_plan or {}),
        "customers": customers[:CUSTOMERS_SHOWN],
        "more_customers": len(customers) > CUSTOMERS_SHOWN,
        "customer_count": Customer.objects.filter(tenant=tenant, partner=partner).count(),
        "months": [{"row": row, "status": statuses.get(row.status) or _("Accruing")} for row in months],
        "sees_commission": finance,
        "can_write": can_write(request),
        "tz_name": tenant.timezone,
    }


def partner_sections(
    *,
    tenant: Tenant,
    partner: Partner,
    writer: bool,
    invite_form: PartnerUserInviteForm | None = None,
    key_form: PartnerKeyForm | None = None,
    new_key: str | None = None,
) -> dict[str, Any]:
    """The sections' context on the partner page; its API keys for owners and finance admins only."""
    context: dict[str, Any] = {
        "partner_users": list(partner_user_list(tenant=tenant, partner=partner)),
        "partner_invite_form": invite_form or PartnerUserInviteForm(),
        "partner_roles": PartnerRole.choices,
        "partner_keys": None,
        "partner_login_path": partner_login_path(tenant=tenant),
    }
    if writer:
        context["partner_keys"] = list(ApiKey.objects.filter(tenant=tenant, partner=partner).order_by("-created_at"))
        context["partner_key_form"] = key_form or PartnerKeyForm()
        context["new_key"] = new_key
    return context


@staff_view(EVERYONE)
def partner_detail(request: HttpRequest, code: str) -> HttpResponse:
    tenant = current_tenant(request)
    if code == "new" and not Partner.objects.filter(tenant=tenant, code=code).exists():
        return redirect("backoffice:partner-new")  # the form's earlier address
    partner = partner_or_404(tenant, code)
    context = partner_page_context(request, partner)
    context.update(partner_sections(tenant=tenant, partner=partner, writer=can_write(request)))
    return render(request, "backoffice/partners/detail.html", context)


@staff_view(WRITERS)
def partner_edit(request: HttpRequest, code: str) -> HttpResponse:
    """The partner's details and commission plan in one form; every error said at once, each on its field."""
    tenant = current_tenant(request)
    partner = partner_or_404(tenant, code)
    initial = {name: getattr(partner, name) for name in PartnerForm.DETAIL_FIELDS}
    initial.update(plan_initial(partner.commission_plan or {}))
    form = PartnerForm(request.POST or None, tenant=tenant, partner=partner, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            partner_update(
                tenant=tenant,
                actor=current_actor(request),
                at=timezone.now(),
                code=partner.code,
                changes=form.details(),
            )
        except DomainError as exc:
            form.apply_domain_errors(exc)
        else:
            messages.success(request, _("Partner %(name)s updated.") % {"name": form.cleaned_data["name"]})
            return redirect("backoffice:partner-detail", code=partner.code)
    status = 422 if request.method == "POST" else 200
    context = {"form": form, "creating": False, "partner": partner, "errors": error_summary(form)}
    return render(request, "backoffice/partners/form.html", context, status=status)
