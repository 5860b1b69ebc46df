"""Back-office customer pages: the list with its search, a customer's detail with its history, and
the create and edit forms, which call ``customer_create`` and ``customer_update`` as the API does."""

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from djmoney.money import Money

from backoffice.access import EVERYONE, WRITERS, can_write, current_actor, current_tenant, sees_audit, staff_view
from backoffice.customers.forms import CustomerEditForm, CustomerForm
from backoffice.forms import error_summary
from backoffice.pages import page_of
from billing_platform.errors import DomainError, InvalidInput
from customers.errors import CustomerCurrencyLocked
from customers.models import Collection, Customer
from customers.selectors import customer_get, customer_list
from customers.services import customer_create, customer_update
from tenancy.selectors import audit_log_list


@staff_view(EVERYONE)
def customers(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()
    qs = customer_list(tenant=current_tenant(request), search=search or None).order_by("name", "id")
    page = page_of(request, qs)
    template = "backoffice/customers/_rows.html" if request.htmx else "backoffice/customers/list.html"  # type: ignore[attr-defined]
    return render(request, template, {"page": page, "q": search, "can_write": can_write(request)})


@staff_view(WRITERS)
def customer_new(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    form = CustomerForm(
        request.POST or None,
        initial={"currency": tenant.default_currency, "timezone": tenant.timezone, "language": "en"},
        tenant=tenant,
    )
    if request.method == "POST" and form.is_valid():
        try:
            customer = customer_create(
                tenant=tenant, actor=current_actor(request), at=timezone.now(), **_customer_fields(form)
            )
        except InvalidInput as exc:
            form.apply_domain_errors(exc)
        except DomainError as exc:
            # Taken meanwhile (the form checked it, the database is the referee): said on its field.
            form.apply_domain_errors(exc)
        else:
            messages.success(request, _("Customer %(name)s created.") % {"name": customer.name})
            return redirect("backoffice:customer-detail", external_id=customer.external_id)
    context = {"form": form, "creating": True, "errors": error_summary(form)}
    return render(request, "backoffice/customers/form.html", context)


@staff_view(EVERYONE)
def customer_detail(request: HttpRequest, external_id: str) -> HttpResponse:
    tenant = current_tenant(request)
    customer = _customer_or_404(request, external_id)
    history: Any = []
    if sees_audit(request):
        history = audit_log_list(tenant=tenant, object_type="customer", object_id=external_id)[:20]
    return render(
        request,
        "backoffice/customers/detail.html",
        {
            "customer": customer,
            "history": history,
            "can_write": can_write(request),
            "payment_terms": _payment_terms(customer),
            "balance": Money(customer.balance, customer.currency),
            "sees_payments": sees_audit(request),
        },
    )


def _payment_terms(customer: Customer) -> int:
    """The customer's own terms, or the tenant's default (none when it is charged automatically)."""
    if customer.payment_terms_days is not None:
        return customer.payment_terms_days
    if customer.collection == Collection.CHARGE_AUTOMATICALLY:
        return 0
    return int(customer.tenant.payment_terms_days)


@staff_view(WRITERS)
def customer_edit(request: HttpRequest, external_id: str) -> HttpResponse:
    tenant = current_tenant(request)
    customer = _customer_or_404(request, external_id)
    initial = {f: getattr(customer, f) for f in CustomerForm.base_fields}
    form = CustomerEditForm(request.POST or None, initial=initial, tenant=tenant, customer=customer)
    if request.method == "POST" and form.is_valid():
        changes = _customer_fields(form)
        changes.pop("external_id")
        try:
            customer_update(
                tenant=tenant,
                actor=current_actor(request),
                at=timezone.now(),
                external_id=external_id,
                changes=changes,
            )
        except (InvalidInput, CustomerCurrencyLocked) as exc:
            form.apply_domain_errors(exc)
        else:
            messages.success(request, _("Customer updated."))
            return redirect("backoffice:customer-detail", external_id=external_id)
    context = {"form": form, "creating": False, "customer": customer, "errors": error_summary(form)}
    return render(request, "backoffice/customers/form.html", context)


def _customer_fields(form: CustomerForm) -> dict[str, Any]:
    data = dict(form.cleaned_data)
    for field in ("tax_id", "address_line1", "address_line2", "postal_code", "city"):
        data[field] = data.get(field) or ""
    return data


def _customer_or_404(request: HttpRequest, external_id: str) -> Customer:
    try:
        return customer_get(tenant=current_tenant(request), external_id=external_id)
    except DomainError:
        raise Http404("No such customer.") from None
