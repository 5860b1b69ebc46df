"""Back-office payments pages: the payments list with its filters, a payment's detail (allocations,
refunds, its share kept as credit balance, the gateway's id) with the refund form, "record a
payment", the receivables report (aging table and chart, DSO, collection rate, dunning recovery), and
dunning (the queue of next steps, suspended subscriptions, recent steps, "run now" and the policy).

Finance roles read; owners and finance admins record payments and refunds, run dunning and set its
policy. Views stay thin: they call ``payments.ledger.payment_record``, ``payments.refunds.payment_refund``,
``payments.reports.receivables_aging``, ``payments.dunning`` and ``payments.policies``, the functions
the API and the beat call; a ``DomainError`` becomes an error on the form or a message, never a 500.
"""

import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.db.models import Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from djmoney.money import Money

from backoffice.access import FINANCE, WRITERS, can_write, current_actor, current_tenant, staff_view
from backoffice.formatting import money, query_string
from backoffice.pages import clean_text, page_of
from backoffice.payments.forms import AsOfForm, DunningPolicyForm, PaymentFilterForm, PaymentRecordForm, RefundForm
from billing_platform.errors import DomainError
from billing_platform.periods import local_date, local_midnight
from customers.models import Customer
from payments.dunning import Step, dunning_queue, dunning_run, suspended_subscriptions
from payments.ledger import payment_record
from payments.models import BalanceTransaction, DunningAction, DunningActionKind, DunningPolicy, Payment
from payments.policies import bill_while_suspended_get, tenant_policy_get, tenant_policy_set
from payments.refunds import payment_refund
from payments.reports import BUCKETS, receivables_aging
from tenancy.models import Tenant


def today_of(tenant: Tenant) -> date:
    return local_date(timezone.now(), tenant.timezone)


def _payment_or_404(tenant: Tenant, pk: str) -> Payment:
    try:
        return Payment.objects.select_related("customer").get(tenant=tenant, pk=uuid.UUID(pk))
    except (ValueError, Payment.DoesNotExist):
        raise Http404("No such payment.") from None


# --- list ---------------------------------------------------------------------------------------


@staff_view(FINANCE)
def payments(request: HttpRequest) -> HttpResponse:
    """GET only; the filters are a GET form. Two queries whatever the page holds: the count and the
    page, with each payment's customer joined."""
    tenant = current_tenant(request)
    form = PaymentFilterForm(request.GET)
    form.is_valid()
    page = page_of(request, form.payments(tenant).select_related("customer"))
    params = {k: clean_text(request.GET.get(k, "")) for k in ("customer", "method", "status", "date_from", "date_to")}
    context = {
        "form": form,
        "page": page,
        "query": query_string(**params),
        "filtered": any(params.values()),
        "can_write": can_write(request),
        "tz_name": tenant.timezone,
    }
    return render(request, "backoffice/payments/list.html", context)


# --- detail and refund --------------------------------------------------------------------------


def _detail_context(request: HttpRequest, payment: Payment, refund_form: RefundForm | None = None) -> dict[str, Any]:
    allocations = list(payment.allocations.select_related("invoice").order_by("created_at", "id"))
    balance = BalanceTransaction.objects.filter(tenant_id=payment.tenant_id, payment=payment).aggregate(s=Sum("amount"))
    refundable = payment.amount - payment.amount_refunded
    writable = can_write(request) and refundable.amount > 0 and payment.status != "failed"
    return {
        "payment": payment,
        "allocations": allocations,
        "allocated": Money(sum((a.amount.amount for a in allocations), Decimal(0)), payment.currency),
        "balance_share": Money(balance["s"] or 0, payment.currency),
        "refunds": list(payment.refunds.all()),
        "refundable": refundable,
        "refund_form": (refund_form or RefundForm(currency=payment.currency)) if writable else None,
        "tz_name": payment.customer.timezone,
    }


@staff_view(FINANCE)
def payment_detail(request: HttpRequest, pk: str) -> HttpResponse:
    payment = _payment_or_404(current_tenant(request), pk)
    return render(request, "backoffice/payments/detail.html", _detail_context(request, payment))


@staff_view(WRITERS)
@require_POST
def payment_refund_view(request: HttpRequest, pk: str) -> HttpResponse:
    payment = _payment_or_404(current_tenant(request), pk)
    form = RefundForm(request.POST, currency=payment.currency)
    if form.is_valid():
        try:
            refund = payment_refund(
                payment=payment,
                amount=Money(form.cleaned_data["amount"], payment.currency),
                reason=form.cleaned_data["reason"],
                actor=current_actor(request),
                at=timezone.now(),
            )
        except DomainError as exc:
            form.apply_domain_errors(exc)
        else:
            messages.success(request, _("Refund of %(amount)s recorded.") % {"amount": money(refund.amount)})
            return redirect("backoffice:payment-detail", pk=payment.pk)
    payment.refresh_from_db()
    context = _detail_context(request, payment, form)
    return render(request, "backoffice/payments/detail.html", context, status=422)


# --- record a payment ---------------------------------------------------------------------------


def _customer_from(request: HttpRequest, tenant: Tenant, external_id: str) -> Customer | None:
    if not external_id:
        return None
    return Customer.objects.filter(tenant=tenant, external_id=external_id).first()


@staff_view(WRITERS)
def payment_new(request: HttpRequest) -> HttpResponse:
    """``?customer=<external id>`` (and ``&invoice=<id>``) prefill the form; without a customer the
    page asks for one first."""
    tenant = current_tenant(request)
    source = request.POST if request.method == "POST" else request.GET
    external_id = clean_text(source.get("customer", ""))[:200]
    customer = _customer_from(request, tenant, external_id)
    if customer is None:
        context = {
            "customers": Customer.objects.filter(tenant=tenant)
            .order_by("name", "external_id")
            .only("external_id", "name", "currency"),
            "unknown": bool(external_id),
        }
        return render(request, "backoffice/payments/record.html", context, status=404 if external_id else 200)
    today = today_of(tenant)
    if request.method == "POST":
        form = PaymentRecordForm(request.POST, customer=customer, today=today)
        if form.is_valid():
            data = form.cleaned_data
            try:
                payment = payment_record(
                    customer=customer,
                    amount=Money(data["amount"], data["currency"]),
                    method=data["method"],
                    received_at=local_midnight(data["received_on"], tenant.timezone),
                    actor=current_actor(request),
                    at=timezone.now(),
                    invoice=data["invoice"],
                    reference=data["reference"],
                )
            except DomainError as exc:
                form.apply_domain_errors(exc)
            else:
                messages.success(
                    request,
                    _("Payment of %(amount)s from %(name)s recorded.")
                    % {"amount": money(payment.amount), "name": customer.name},
                )
                return redirect("backoffice:payment-detail", pk=payment.pk)
        status = 422
    else:
        initial: dict[str, Any] = {"currency": customer.currency, "received_on": today, "method": "bank_transfer"}
        invoice_id = clean_text(request.GET.get("invoice", ""))
        form = PaymentRecordForm(customer=customer, today=today, initial=initial)
        invoice_field: Any = form.fields["invoice"]
        if invoice_id:
            try:
                invoice = invoice_field.queryset.filter(pk=uuid.UUID(invoice_id)).first()
            except ValueError:
                invoice = None
            if invoice is not None:
                form.initial.update({"invoice": invoice.pk, "amount": invoice.amount_due.amount.normalize()})
        status = 200
    context = {"customer": customer, "form": form, "balance": Money(customer.balance, customer.currency)}
    return render(request, "backoffice/payments/record.html", context, status=status)


# --- receivables --------------------------------------------------------------------------------


@staff_view(FINANCE)
def receivables(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    today = today_of(tenant)
    form = AsOfForm(request.GET if "as_of" in request.GET else None, initial={"as_of": today})
    as_of = form.cleaned_data["as_of"] if form.is_bound and form.is_valid() else today
    report = receivables_aging(tenant_id=tenant.pk, as_of=as_of)
    labels = [
        _("Not yet due"),
        _("1–30 days"),
        _("31–60 days"),
        _("61–90 days"),
        _("Over 90 days"),
    ]
    chart = {
        "labels": [c.currency for c in report.currencies],
        "datasets": [
            {"label": str(label), "data": [str(getattr(c.total, name).amount) for c in report.currencies]}
            for label, name in zip(labels, BUCKETS, strict=True)
        ],
    }
    context = {
        "form": form,
        "report": report,
        "labels": labels,
        "chart": chart,
        "as_of": as_of,
        "payments_url": reverse("backoffice:payments"),
    }
    return render(request, "backoffice/payments/receivables.html", context)


# --- dunning ------------------------------------------------------------------------------------

RECENT_STEPS = 50
# The steps whose day tells them apart (an invoice has several reminders and retries).
DAY_KINDS = {DunningActionKind.REMINDER, DunningActionKind.RETRY}
QUEUE_LIMIT = 200


def _steps_label(steps: Sequence[Step]) -> str:
    """ "Reminder e-mail (day -3), Payment retry (day 7)": the steps in the reader's language."""
    labels = dict(DunningActionKind.choices)
    return ", ".join(
        _("%(step)s (day %(day)s)") % {"step": labels[s.kind], "day": s.day}
        if s.kind in DAY_KINDS
        else str(labels[s.kind])
        for s in steps
    )


def _policy_form(tenant: Tenant) -> DunningPolicyForm:
    policy = tenant_policy_get(tenant=tenant)
    pay_url = (
        DunningPolicy.objects.filter(tenant=tenant, customer__isnull=True).values_list("pay_url", flat=True).first()
    )
    return DunningPolicyForm(
        initial={
            **policy.as_dict(),
            "bill_while_suspended": bill_while_suspended_get(tenant=tenant),
            "pay_url": pay_url,
        }
    )


def _dunning_page(
    request: HttpRequest, policy_form: DunningPolicyForm | None = None, status: int = 200
) -> HttpResponse:
    """The queue (``payments.dunning.dunning_queue``, its first ``QUEUE_LIMIT`` entries), the
    subscriptions suspended now, the latest steps taken and the tenant's policy: a fixed number of
    queries however many invoices are open."""
    tenant = current_tenant(request)
    now = timezone.now()
    queue = dunning_queue(tenant_id=tenant.pk, as_of=now, limit=QUEUE_LIMIT)
    recent = list(
        DunningAction.objects.filter(tenant=tenant)
        .select_related("invoice__customer", "subscription__customer")
        .order_by("-at", "-id")[:RECENT_STEPS]
    )
    writable = can_write(request)
    context = {
        "queue": [(entry, _steps_label(entry.steps)) for entry in queue],
        "queue_limit": QUEUE_LIMIT,
        "suspended": suspended_subscriptions(tenant_id=tenant.pk),
        "recent": recent,
        "can_write": writable,
        "policy_form": policy_form or _policy_form(tenant),
        "tz_name": tenant.timezone,
        "today": today_of(tenant),
    }
    return render(request, "backoffice/payments/dunning.html", context, status=status)


@staff_view(FINANCE)
def dunning(request: HttpRequest) -> HttpResponse:
    return _dunning_page(request)


@staff_view(WRITERS)
@require_POST
def dunning_run_view(request: HttpRequest) -> HttpResponse:
    """The hourly pass, now: the steps due today are taken once (a second click takes none)."""
    tenant = current_tenant(request)
    counts = dunning_run(tenant_id=tenant.pk, at=timezone.now()).counts()
    messages.success(
        request,
        _(
            "Dunning done: %(reminders)s reminders, %(retries)s retries, %(overdue)s invoices overdue, "
            "%(suspensions)s subscriptions suspended, %(reactivations)s reactivated, %(write_offs)s invoices "
            "written off."
        )
        % counts,
    )
    return redirect("backoffice:dunning")


@staff_view(WRITERS)
@require_POST
def dunning_policy_view(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    form = DunningPolicyForm(request.POST)
    if form.is_valid():
        try:
            tenant_policy_set(
                tenant=tenant,
                values=form.policy_values(),
                actor=current_actor(request),
                at=timezone.now(),
                bill_while_suspended=form.cleaned_data["bill_while_suspended"],
                pay_url=form.cleaned_data["pay_url"],
            )
        except DomainError as exc:
            form.apply_domain_errors(exc)
        else:
            messages.success(request, _("Dunning policy saved."))
            return redirect("backoffice:dunning")
    return _dunning_page(request, policy_form=form, status=422)
