"""Forms of the support pages: the queue's filters, an answer, the assignee, and a new case."""

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy

from backoffice.forms import DomainErrorFormMixin, InputRulesMixin
from backoffice.pages import clean_text
from billing_platform.errors import FieldError
from customers.models import Customer
from invoicing.models import Invoice, InvoiceKind
from support.models import FIRST_RESPONSE_HOURS_MAX, CaseStatus, SupportCase
from support.selectors import case_list, staff_members
from support.services import BODY_MAX, SUBJECT_MAX
from tenancy.models import Tenant

NOT_RESOLVED = ""
ANY_STATUS = "all"
UNASSIGNED = "none"
ME = "me"
# "Waiting for more than": days since the case was opened.
AGES = [
    ("", gettext_lazy("Any age")),
    ("1", gettext_lazy("1 day")),
    ("3", gettext_lazy("3 days")),
    ("7", gettext_lazy("7 days")),
]

# The services' field errors, as the pages say them.
MESSAGES = {
    "required": gettext_lazy("This field is required."),
    "too_long": gettext_lazy("This text is too long."),
    "not_the_customers": gettext_lazy("Not an invoice of this customer."),
    "not_a_member": gettext_lazy("Not a member of the team."),
}


class SupportFormMixin(DomainErrorFormMixin):
    def error_message(self, error: FieldError) -> Any:
        return MESSAGES.get(error.code, error.message)


def member_choices(tenant: Tenant) -> list[tuple[str, str]]:
    return [(str(u.pk), u.email or u.username) for u in staff_members(tenant=tenant)]


class CaseFilterForm(InputRulesMixin, forms.Form):
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        required=False,
        choices=[
            (NOT_RESOLVED, gettext_lazy("Not resolved")),
            *CaseStatus.choices,
            (ANY_STATUS, gettext_lazy("Any status")),
        ],
    )
    assignee = forms.ChoiceField(label=gettext_lazy("Assigned to"), required=False)
    age = forms.ChoiceField(label=gettext_lazy("Opened more than"), required=False, choices=AGES)
    overdue = forms.BooleanField(label=gettext_lazy("Overdue only"), required=False)
    customer = forms.CharField(
        label=gettext_lazy("Customer"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": gettext_lazy("Name or external ID")}),
    )

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        field: Any = self.fields["assignee"]
        field.choices = [
            ("", gettext_lazy("Anyone")),
            (ME, gettext_lazy("Me")),
            (UNASSIGNED, gettext_lazy("Nobody")),
            *member_choices(tenant),
        ]

    def cases(self, *, user: Any, at: datetime) -> QuerySet[SupportCase]:
        """The cases the filters select (after ``is_valid``: a field in error is left out), newest first."""
        data = self.cleaned_data
        status = data.get("status") or NOT_RESOLVED
        assignee = data.get("assignee") or ""
        age = data.get("age") or ""
        qs = case_list(
            tenant=self.tenant,
            at=at,
            status=status if status in CaseStatus.values else None,
            unassigned=assignee == UNASSIGNED,
            assignee=user if assignee == ME else None,
            overdue=True if data.get("overdue") else None,
            opened_before=at - timedelta(days=int(age)) if age else None,
        )
        if status == NOT_RESOLVED:
            qs = qs.exclude(status=CaseStatus.RESOLVED)
        if assignee and assignee not in (ME, UNASSIGNED):
            qs = qs.filter(assignee_id=int(assignee))
        text = clean_text(data.get("customer") or "")
        if text:
            qs = qs.filter(Q(customer__external_id=text) | Q(customer__name__icontains=text))
        return qs


class TargetForm(InputRulesMixin, forms.Form):
    first_response_hours = forms.IntegerField(
        label=gettext_lazy("First-response target (hours)"),
        min_value=1,
        max_value=FIRST_RESPONSE_HOURS_MAX,
        help_text=gettext_lazy("A case without an answer from the team after this many hours is overdue."),
    )


class AnswerForm(InputRulesMixin, SupportFormMixin, forms.Form):
    body = forms.CharField(
        label=gettext_lazy("Your answer"),
        max_length=BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 5}),
    )


class AssignForm(InputRulesMixin, forms.Form):
    assignee = forms.ChoiceField(label=gettext_lazy("Assigned to"), required=False)

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["assignee"]
        field.choices = [("", gettext_lazy("Nobody")), *member_choices(tenant)]


class CaseNewForm(InputRulesMixin, SupportFormMixin, forms.Form):
    """A case staff open for a customer chosen first (the page asks for one), about one of its
    invoices when chosen."""

    invoice = forms.ChoiceField(
        label=gettext_lazy("Invoice"),
        required=False,
        help_text=gettext_lazy("The invoice the question is about, if any."),
    )
    subject = forms.CharField(label=gettext_lazy("Subject"), max_length=SUBJECT_MAX)
    body = forms.CharField(
        label=gettext_lazy("Message to the customer"), max_length=BODY_MAX, widget=forms.Textarea(attrs={"rows": 5})
    )
    assignee = forms.ChoiceField(label=gettext_lazy("Assigned to"), required=False)

    def __init__(self, *args: Any, tenant: Tenant, customer: Customer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenant, self.customer = tenant, customer
        fields: Any = self.fields
        # The customer's latest 100 finalized invoices (a draft has no number to talk about yet).
        invoices = [
            (str(i.pk), "%s · %s" % (i.number, i.issue_date.isoformat()))
            for i in Invoice.objects.filter(tenant=tenant, customer=customer, kind=InvoiceKind.INVOICE)
            .exclude(number="")
            .order_by("-issue_date", "-created_at")
            .only("pk", "number", "issue_date")[:100]
        ]
        fields["invoice"].choices = [("", gettext_lazy("No invoice")), *invoices]
        fields["assignee"].choices = [("", gettext_lazy("Nobody")), *member_choices(tenant)]
