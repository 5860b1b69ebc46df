"""Back-office support pages: the queue of cases with its filters (status, age, assignee, overdue), a
case with its conversation and the answer form, assignment, resolve and reopen, a credit note issued
on the case's invoice, and a new case opened by staff for a customer.

Every member of the team reads and answers cases (support agents first); issuing a credit note is
for owners and finance admins, as on the invoice's page. Views stay thin: they call
``support.services``, the functions the API calls; a ``DomainError`` becomes an error on the form or
a message, never a 500.
"""

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from backoffice.access import WRITERS, can_write, current_actor, current_tenant, staff_view
from backoffice.formatting import money, query_string
from backoffice.invoicing.forms import CreditNoteEntry
from backoffice.invoicing.presenters import credit_rows
from backoffice.pages import clean_text, page_of
from backoffice.support.forms import AnswerForm, AssignForm, CaseFilterForm, CaseNewForm, TargetForm
from billing_platform.errors import DomainError, InvalidInput
from customers.models import Customer
from invoicing.models import Invoice
from invoicing.policies import invoice_actions
from invoicing.services.credit_notes import credit_note_lines_check
from support.errors import SupportCaseNotFound
from support.models import AuthorType, CaseStatus, SupportCase
from support.selectors import case_credit_notes, case_get, case_messages, first_response_hours
from support.services import (
    case_assign,
    case_credit_note_issue,
    case_open,
    case_status_set,
    message_add,
    support_settings_set,
)
from tenancy.models import Tenant

FILTERS = ("status", "assignee", "age", "overdue", "customer")


def _case_or_404(tenant: Tenant, pk: str) -> SupportCase:
    try:
        return case_get(tenant=tenant, pk=pk, at=timezone.now())
    except SupportCaseNotFound:
        raise Http404("No such support case.") from None


# --- the queue ------------------------------------------------------------------------------------


@staff_view()
def cases(request: HttpRequest) -> HttpResponse:
    """GET only; the filters are a GET form. Cases not resolved by default, newest first."""
    tenant = current_tenant(request)
    form = CaseFilterForm(request.GET, tenant=tenant)
    form.is_valid()
    page = page_of(request, form.cases(user=request.user, at=timezone.now()))
    params = {k: clean_text(request.GET.get(k, "")) for k in FILTERS}
    context = {
        "form": form,
        "page": page,
        "query": query_string(**params),
        "filtered": any(params.values()),
        "target_hours": first_response_hours(tenant=tenant),
        "target_form": TargetForm(initial={"first_response_hours": first_response_hours(tenant=tenant)})
        if can_write(request)
        else None,
        "tz_name": tenant.timezone,
    }
    return render(request, "backoffice/support/list.html", context)


@staff_view(WRITERS)
@require_POST
def target_update_view(request: HttpRequest) -> HttpResponse:
    """The tenant's first-response target, for owners and finance admins."""
    form = TargetForm(request.POST)
    if form.is_valid():
        hours = form.cleaned_data["first_response_hours"]
        support_settings_set(
            tenant=current_tenant(request), first_response_hours=hours, actor=current_actor(request), at=timezone.now()
        )
        messages.success(request, _("First-response target set to %(hours)d hours.") % {"hours": hours})
    else:
        messages.error(request, _("The first-response target is a whole number of hours, from 1 to 720."))
    return redirect("backoffice:support-cases")


# --- one case -------------------------------------------------------------------------------------


def _page(
    request: HttpRequest,
    case: SupportCase,
    *,
    answer: AnswerForm | None = None,
    credit: CreditNoteEntry | None = None,
    status: int = 200,
) -> HttpResponse:
    tenant = current_tenant(request)
    invoice = case.invoice
    creditable = can_write(request) and invoice is not None and "credit" in invoice_actions(invoice)
    rows = credit_rows(invoice) if creditable and invoice is not None else []
    if not any(r["open"] for r in rows):
        creditable = False
    if credit is not None:
        for row in rows:
            row["typed"] = credit.typed.get(row["line"].pk, "")
            row["error"] = credit.line_errors.get(row["line"].pk, "")
    context = {
        "case": case,
        "conversation": case_messages(case=case),
        "credit_notes": case_credit_notes(case=case),
        "answer_form": answer or AnswerForm(),
        "assign_form": AssignForm(tenant=tenant, initial={"assignee": case.assignee_id or ""}),
        "statuses": CaseStatus,
        "creditable": creditable,
        "credit_rows": rows,
        "credit": credit,
        "credit_errors": credit.summary(
            {r["line"].pk: "%s %d · %s" % (_("Line"), i + 1, r["description"]) for i, r in enumerate(rows)}
        )
        if credit is not None
        else [],
        "target_hours": first_response_hours(tenant=tenant),
        "tz_name": tenant.timezone,
    }
    return render(request, "backoffice/support/detail.html", context, status=status)


@staff_view()
def case_detail(request: HttpRequest, pk: str) -> HttpResponse:
    return _page(request, _case_or_404(current_tenant(request), pk))


@staff_view()
@require_POST
def case_answer_view(request: HttpRequest, pk: str) -> HttpResponse:
    case = _case_or_404(current_tenant(request), pk)
    form = AnswerForm(request.POST)
    if form.is_valid():
        try:
            message_add(
                case=case,
                body=form.cleaned_data["body"],
                actor=current_actor(request),
                author_type=AuthorType.STAFF,
                at=timezone.now(),
            )
        except DomainError as exc:
            form.apply_domain_errors(exc)
        else:
            messages.success(request, _("Answer sent to %(name)s.") % {"name": case.customer.name})
            return redirect("backoffice:support-case", pk=case.pk)
    return _page(request, case, answer=form, status=422)


@staff_view()
@require_POST
def case_assign_view(request: HttpRequest, pk: str) -> HttpResponse:
    tenant = current_tenant(request)
    case = _case_or_404(tenant, pk)
    form = AssignForm(request.POST, tenant=tenant)
    if not form.is_valid():
        messages.error(request, _("Choose a member of the team."))
        return redirect("backoffice:support-case", pk=case.pk)
    chosen = form.cleaned_data["assignee"]
    assignee = get_user_model().objects.filter(pk=int(chosen)).first() if chosen else None
    try:
        case_assign(case=case, assignee=assignee, actor=current_actor(request), at=timezone.now())
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        if assignee is None:
            messages.success(request, _("The case is assigned to nobody."))
        else:
            messages.success(request, _("The case is assigned to %(who)s.") % {"who": assignee.email})
    return redirect("backoffice:support-case", pk=case.pk)


@staff_view()
@require_POST
def case_status_view(request: HttpRequest, pk: str) -> HttpResponse:
    case = _case_or_404(current_tenant(request), pk)
    wanted = request.POST.get("status", "")
    try:
        case_status_set(case=case, status=wanted, actor=current_actor(request), at=timezone.now())
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        if wanted == CaseStatus.RESOLVED:
            messages.success(request, _("The case is resolved."))
        else:
            messages.success(request, _("The case is open again."))
    return redirect("backoffice:support-case", pk=case.pk)


@staff_view(WRITERS)
@require_POST
def case_credit_view(request: HttpRequest, pk: str) -> HttpResponse:
    """A credit note on the case's invoice, with the invoice page's form and rules: refused, the page
    comes back with every error at once and the amounts typed kept."""
    case = _case_or_404(current_tenant(request), pk)
    credit = CreditNoteEntry(request.POST)
    credit.check()
    if credit.errors or case.invoice is None:
        return _page(request, case, credit=credit, status=422)
    if credit.reason_error:
        try:
            credit_note_lines_check(invoice=case.invoice, lines=credit.lines)
        except InvalidInput as exc:
            credit.apply_service_errors(list(exc.errors), exc.detail)
        except DomainError as exc:
            credit.errors.append(exc.detail)
        return _page(request, case, credit=credit, status=422)
    try:
        note = case_credit_note_issue(
            case=case, actor=current_actor(request), at=timezone.now(), lines=credit.lines, reason=credit.reason
        )
    except InvalidInput as exc:
        credit.apply_service_errors(list(exc.errors), exc.detail)
        return _page(request, case, credit=credit, status=422)
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(
            request,
            _("Credit note %(number)s created: %(total)s.") % {"number": note.number, "total": money(note.total)},
        )
    return redirect("backoffice:support-case", pk=case.pk)


# --- a new case -----------------------------------------------------------------------------------


@staff_view()
def case_new(request: HttpRequest) -> HttpResponse:
    """``?customer=<external id>`` (and ``&invoice=<id>``) prefill the form; without a customer the
    page asks for one first."""
    tenant = current_tenant(request)
    source = request.POST if request.method == "POST" else request.GET
    external_id = clean_text(source.get("customer", ""))[:200]
    customer = Customer.objects.filter(tenant=tenant, external_id=external_id).first() if external_id else None
    if customer is None:
        context = {
            "customers": Customer.objects.filter(tenant=tenant)
            .order_by("name", "external_id")
            .only("external_id", "name"),
            "unknown": bool(external_id),
        }
        return render(request, "backoffice/support/new.html", context, status=404 if external_id else 200)
    if request.method == "POST":
        form = CaseNewForm(request.POST, tenant=tenant, customer=customer)
        if form.is_valid():
            data = form.cleaned_data
            invoice = Invoice.objects.filter(tenant=tenant, pk=data["invoice"]).first() if data["invoice"] else None
            assignee = get_user_model().objects.filter(pk=int(data["assignee"])).first() if data["assignee"] else None
            try:
                case = case_open(
                    customer=customer,
                    subject=data["subject"],
                    body=data["body"],
                    actor=current_actor(request),
                    author_type=AuthorType.STAFF,
                    at=timezone.now(),
                    invoice=invoice,
                    assignee=assignee,
                )
            except DomainError as exc:
                form.apply_domain_errors(exc)
            else:
                messages.success(request, _("Case opened; %(name)s is e-mailed.") % {"name": customer.name})
                return redirect("backoffice:support-case", pk=case.pk)
        status = 422
    else:
        initial: dict[str, Any] = {"assignee": str(request.user.pk)}
        form = CaseNewForm(tenant=tenant, customer=customer, initial=initial)
        wanted = clean_text(request.GET.get("invoice", ""))
        field: Any = form.fields["invoice"]
        if wanted in {value for value, _label in field.choices}:
            form.initial["invoice"] = wanted
        status = 200
    return render(request, "backoffice/support/new.html", {"customer": customer, "form": form}, status=status)
