"""Back-office customer pages: the list with its search, a customer's page (the customer at a
glance: balance, subscriptions and devices, usage this period and the projected invoice, invoices,
timeline, and the actions from there), and the create and edit forms, which call
``customer_create`` and ``customer_update`` as the API does."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from djmoney.money import Money

from backoffice.access import EVERYONE, WRITERS, can_write, current_actor, current_tenant, sees_audit, staff_view
from backoffice.customers.forms import CustomerEditForm, CustomerForm
from backoffice.customers.portal_users import PortalInviteForm, portal_users_section
from backoffice.customers.presenters import mrr_money, subscription_rows, timeline, usage_panel
from backoffice.formatting import query_string
from backoffice.forms import error_summary
from backoffice.invoicing.presenters import OPEN, invoices_by_payment
from backoffice.pages import page_of
from billing_platform.errors import DomainError, InvalidInput
from billing_platform.periods import local_date
from customers.errors import CustomerCurrencyLocked
from customers.models import Collection, Customer
from customers.selectors import customer_get, customer_list
from customers.services import customer_create, customer_update
from invoicing.models import Invoice, InvoiceKind, InvoiceStatus
from invoicing.policies import invoice_actions
from invoicing.selectors import invoice_list
from invoicing.upcoming import CurrentUsage, invoice_upcoming
from payments.reports import customer_receivables
from revrec.metrics import subscription_mrr
from subscriptions.selectors import customer_history, devices_first_of, subscription_list_for_customer
from support.selectors import open_cases_of_customer
from tenancy.models import Tenant
from usage.usage_context import usage_context_load

# The customer page shows the first of each list and links to the whole list, filtered.
SUBSCRIPTIONS_SHOWN = 10
DEVICES_SHOWN = 5
INVOICES_SHOWN = 10
TIMELINE_SHOWN = 30


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
    """The customer at a glance: identity, balance and amounts due, subscriptions with their devices
    and MRR, usage this period with the projected invoice, the latest invoices with their payment
    status, and a timeline of changes. A fixed number of queries whatever the number of
    subscriptions, devices and invoices: each list is capped, with a link to the whole filtered list."""
    return customer_detail_page(request, _customer_or_404(request, external_id))


def customer_detail_page(
    request: HttpRequest, customer: Customer, *, portal_invite_form: PortalInviteForm | None = None, status: int = 200
) -> HttpResponse:
    """The customer page; with the portal users' invite form as it was sent, when it has errors."""
    tenant = current_tenant(request)
    now = timezone.now()
    today = local_date(now, tenant.timezone)
    finance = sees_audit(request)
    tz, currency = customer.timezone, customer.currency

    subscriptions = subscription_list_for_customer(tenant=tenant, customer=customer, limit=SUBSCRIPTIONS_SHOWN + 1)
    shown = subscriptions[:SUBSCRIPTIONS_SHOWN]
    devices = devices_first_of(tenant=tenant, subscription_ids=[s.pk for s in shown], per_subscription=DEVICES_SHOWN)
    usage, usage_error, mrr = _usage_and_mrr(tenant, customer, now)

    invoices = list(
        invoice_list(tenant=tenant, customer=customer.external_id)
        .prefetch_related(None)
        .annotate(
            overdue=Exists(invoices_by_payment(Invoice.objects.filter(pk=OuterRef("pk")), "overdue", today=today))
        )
        .order_by("-issue_date", "-created_at", "-id")[: INVOICES_SHOWN + 1]
    )
    owed = customer_receivables(tenant=tenant, customer_id=customer.pk, currency=currency, as_of=today)
    # Support agents see what happened to subscriptions, not who changed what (the audit log).
    entries, events = customer_history(tenant=tenant, customer=customer, limit=TIMELINE_SHOWN, audit=finance)
    context = {
        "customer": customer,
        "tz_name": tz,
        "history": entries,
        "timeline": timeline(entries, events, tz=tz, currency=currency, limit=TIMELINE_SHOWN),
        "can_write": can_write(request),
        "payment_terms": _payment_terms(customer),
        "balance": Money(customer.balance, currency),
        "owed": owed,
        # Past its due date: every bucket of the aging but "not yet due".
        "overdue": owed.total - owed.current,
        "today": today,
        "sees_payments": finance,
        "subscriptions": subscription_rows(shown, devices, mrr),
        "more_subscriptions": len(subscriptions) > SUBSCRIPTIONS_SHOWN,
        "mrr_total": mrr_money(sum((m.amount for m in mrr.values()), Decimal(0)), currency) if mrr else None,
        "usage": usage_panel(usage, tz=tz) if usage is not None else None,
        "usage_error": usage_error,
        "invoices": [
            {"invoice": i, "creditable": "credit" in invoice_actions(i), "payable": _payable(i)}
            for i in invoices[:INVOICES_SHOWN]
        ],
        "more_invoices": len(invoices) > INVOICES_SHOWN,
        "search": query_string(customer=customer.external_id),
        **portal_users_section(tenant=tenant, customer=customer, form=portal_invite_form),
        "support_cases": open_cases_of_customer(tenant=tenant, customer=customer, at=now),
    }
    return render(request, "backoffice/customers/detail.html", context, status=status)


def _usage_and_mrr(
    tenant: Tenant, customer: Customer, now: datetime
) -> tuple[CurrentUsage | None, str, dict[Any, Money]]:
    """The customer's usage this period and projected invoice (``invoice_upcoming``, the current
    usage the API gives), and the MRR now of each subscription billing a period now, both from one
    load of the usage context. A price the catalog cannot resolve leaves both out with its reason."""
    try:
        context = usage_context_load(tenant=tenant, customers_at=[(customer, now)])
        usage = invoice_upcoming(customer=customer, at=now, context=context)
        mrr = {
            s.pk: mrr_money(
                subscription_mrr(subscription=s, devices=context.devices[s.pk], prices=context.prices, at=now).amount,
                customer.currency,
            )
            for s in context.subscriptions[customer.pk]
        }
    except DomainError as exc:
        return None, exc.detail, {}
    return usage, "", mrr


def _payable(invoice: Invoice) -> bool:
    """A finalized invoice still open: a payment can be recorded against it."""
    return (
        invoice.kind == InvoiceKind.INVOICE
        and invoice.status == InvoiceStatus.FINALIZED
        and invoice.payment_status in OPEN
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
    initial = {f: getattr(customer, f) for f in CustomerForm.base_fields if f != "partner"}
    initial["partner"] = customer.partner.code if customer.partner is not None else ""
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
