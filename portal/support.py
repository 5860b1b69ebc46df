"""The portal's Support pages: the customer's cases with a form to open one (from an invoice's page
the form comes with that invoice: ``?invoice=<id>``), and a case's conversation with the reply form.
Every portal user may open cases and write in them, whatever their role.

Cases and invoices are looked up with the session's customer: another customer's case or invoice
is a 404, like an unknown one. The views call ``support.services``, as the back-office and the API
do, speaking for the customer (``AuthorType.CUSTOMER``)."""

import dataclasses
import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing_platform.errors import DomainError
from billing_platform.validation import find_refused_character
from customers.models import Customer
from invoicing.models import Invoice, InvoiceKind, InvoiceStatus
from portal.access import current_portal, portal_actor, portal_view
from support.errors import SupportCaseNotFound
from support.models import AuthorType, SupportCase
from support.selectors import case_get, case_list, case_messages
from support.services import BODY_MAX, SUBJECT_MAX, case_open, message_add
from tenancy.actors import Actor

PAGE_SIZE = 20
MESSAGES = {
    "required": gettext_lazy("This field is required."),
    "too_long": gettext_lazy("This text is too long."),
    "not_the_customers": gettext_lazy("Not an invoice of this customer."),
}


def _text_validator(*, multiline: bool) -> Any:
    def validate(value: Any) -> None:
        found = find_refused_character(value, multiline=multiline) if isinstance(value, str) else None
        if found is not None:
            raise forms.ValidationError(
                _("Remove the invisible character %(character)s: it cannot be printed or stored."),
                code="control_character",
                params={"character": "U+%04X" % ord(found.group())},
            )

    return validate


class _SupportForm(forms.Form):
    """Texts hold no control character (a text box keeps tabs and line breaks), as everywhere in
    Tripod; a service's field errors go on their fields, in the reader's language."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field, forms.CharField):
                field.validators.append(_text_validator(multiline=isinstance(field.widget, forms.Textarea)))

    def apply_domain_errors(self, exc: DomainError) -> None:
        for error in exc.errors:
            message = MESSAGES.get(error.code, error.message)
            self.add_error(error.field if error.field in self.fields else None, message)
        if not exc.errors:
            self.add_error(None, exc.detail)


class CaseForm(_SupportForm):
    subject = forms.CharField(label=gettext_lazy("Subject"), max_length=SUBJECT_MAX)
    invoice = forms.ChoiceField(
        label=gettext_lazy("Invoice"),
        required=False,
        help_text=gettext_lazy("The invoice your question is about, if any."),
    )
    body = forms.CharField(
        label=gettext_lazy("Your question"), max_length=BODY_MAX, widget=forms.Textarea(attrs={"rows": 6})
    )

    def __init__(self, *args: Any, invoices: list[Invoice], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["invoice"]
        field.choices = [
            ("", gettext_lazy("No invoice")),
            *((str(i.pk), "%s · %s" % (i.number, i.issue_date.isoformat())) for i in invoices),
        ]


class ReplyForm(_SupportForm):
    body = forms.CharField(
        label=gettext_lazy("Your reply"), max_length=BODY_MAX, widget=forms.Textarea(attrs={"rows": 5})
    )


def _actor(request: HttpRequest) -> Actor:
    """The portal user, shown to the team by name when it has one."""
    actor = portal_actor(request)
    user = current_portal(request).user
    if user is not None and user.name:
        return dataclasses.replace(actor, label="%s <%s>" % (user.name, user.email))
    return actor


def _invoices(customer: Customer) -> list[Invoice]:
    """The customer's issued invoices, newest first (the latest 100): a draft is not theirs to see."""
    return list(
        Invoice.objects.filter(tenant_id=customer.tenant_id, customer=customer, kind=InvoiceKind.INVOICE)
        .exclude(status=InvoiceStatus.DRAFT)
        .exclude(number="")
        .order_by("-issue_date", "-created_at")
        .only("pk", "number", "issue_date")[:100]
    )


def _invoice_or_404(invoices: list[Invoice], wanted: str) -> Invoice:
    try:
        key = uuid.UUID(wanted)
    except ValueError:
        raise Http404("No such invoice.") from None
    for invoice in invoices:
        if invoice.pk == key:
            return invoice
    raise Http404("No such invoice.")


@portal_view()
def support(request: HttpRequest) -> HttpResponse:
    """The customer's cases, newest first, and the form to open one."""
    portal = current_portal(request)
    customer = portal.customer
    invoices = _invoices(customer)
    if request.method == "POST":
        form = CaseForm(request.POST, invoices=invoices)
        if form.is_valid():
            data = form.cleaned_data
            invoice = _invoice_or_404(invoices, data["invoice"]) if data["invoice"] else None
            try:
                case = case_open(
                    customer=customer,
                    subject=data["subject"],
                    body=data["body"],
                    actor=_actor(request),
                    author_type=AuthorType.CUSTOMER,
                    at=timezone.now(),
                    invoice=invoice,
                )
            except DomainError as exc:
                form.apply_domain_errors(exc)
            else:
                messages.success(request, _("Your question is sent. We will answer you by e-mail and here."))
                return redirect("portal:support-case", pk=case.pk)
        status = 422
    else:
        initial: dict[str, Any] = {}
        wanted = request.GET.get("invoice", "")
        if wanted:
            initial["invoice"] = str(_invoice_or_404(invoices, wanted).pk)
        form = CaseForm(invoices=invoices, initial=initial)
        status = 200
    cases = case_list(tenant=portal.tenant, at=timezone.now(), customer=customer)
    page = Paginator(cases, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "form": form, "from_invoice": "invoice" in form.initial}
    return render(request, "portal/support/list.html", context, status=status)


def _case_or_404(request: HttpRequest, pk: str) -> SupportCase:
    portal = current_portal(request)
    try:
        return case_get(tenant=portal.tenant, pk=pk, at=timezone.now(), customer=portal.customer)
    except SupportCaseNotFound:
        raise Http404("No such support case.") from None


@portal_view()
def support_case(request: HttpRequest, pk: str) -> HttpResponse:
    """A case's conversation and the reply form; a reply to a resolved case opens it again."""
    case = _case_or_404(request, pk)
    if request.method == "POST":
        form = ReplyForm(request.POST)
        if form.is_valid():
            try:
                message_add(
                    case=case,
                    body=form.cleaned_data["body"],
                    actor=_actor(request),
                    author_type=AuthorType.CUSTOMER,
                    at=timezone.now(),
                )
            except DomainError as exc:
                form.apply_domain_errors(exc)
            else:
                messages.success(request, _("Your reply is sent."))
                return redirect("portal:support-case", pk=case.pk)
        status = 422
    else:
        form = ReplyForm()
        status = 200
    context = {"case": case, "conversation": case_messages(case=case), "form": form}
    return render(request, "portal/support/case.html", context, status=status)
