"""Back-office commission pages (Finance): the queue of partners' commission statements with its
filters (month, status, partner), a statement with its lines, its approval and payment, its PDF and
CSV, and the commission report of a month (per partner: its lines, net collected, commission and
the statement's status, or what accrues before it is built).

The finance roles read them; owners and finance admins approve a statement and mark it paid. The
views call ``partners.statements`` and ``partners.documents``, as the API does."""

from collections.abc import Collection
from datetime import date
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from backoffice.access import FINANCE, WRITERS, can_write, current_actor, current_tenant, staff_view
from backoffice.formatting import query_string
from backoffice.forms import InputRulesMixin
from backoffice.pages import clean_text, page_of
from billing_platform.errors import DomainError, InvalidInput
from customers.models import Partner
from customers.partners import partner_list
from partners.commissions import month_before
from partners.documents import statement_csv, statement_filename, statement_pdf
from partners.models import CommissionLeg, CommissionStatement, StatementStatus
from partners.statements import (
    EarlierStatementDraft,
    PartnerCommission,
    commission_report,
    current_month,
    month_parse,
    statement_approve,
    statement_get,
    statement_lines,
    statement_list,
    statement_mark_paid,
)
from tenancy.models import Tenant

FILTERS = ("month", "status", "partner")
ACCRUING = "accruing"


def month_of(text: str) -> date | None:
    """``2026-04`` -> 1 April 2026; None for anything else."""
    try:
        return month_parse(text)
    except InvalidInput:
        return None


class MonthField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        widget = forms.TextInput(attrs={"type": "month", "placeholder": "2026-04"})
        super().__init__(max_length=7, widget=widget, **kwargs)

    def clean(self, value: Any) -> Any:
        text = super().clean(value)
        if text and month_of(text) is None:
            raise forms.ValidationError(gettext_lazy("Give a month as YYYY-MM, e.g. 2026-04."), code="invalid")
        return text


class StatementFilterForm(InputRulesMixin, forms.Form):
    month = MonthField(label=gettext_lazy("Month"), required=False)
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        required=False,
        choices=[("", gettext_lazy("Any status")), *StatementStatus.choices],
    )
    partner = forms.ChoiceField(label=gettext_lazy("Partner"), required=False)

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        field: Any = self.fields["partner"]
        field.choices = [("", gettext_lazy("Any partner")), *((p.code, p.name) for p in partner_list(tenant=tenant))]

    def statements(self) -> QuerySet[CommissionStatement]:
        data = self.cleaned_data
        qs = statement_list(tenant=self.tenant, month=month_of(data.get("month") or ""))
        if data.get("status"):
            qs = qs.filter(status=data["status"])
        if data.get("partner"):
            qs = qs.filter(partner__code=data["partner"])
        return qs.annotate(line_count=Count("lines")).order_by("-month", "partner__name", "currency")


class MarkPaidForm(InputRulesMixin, forms.Form):
    reference = forms.CharField(
        label=gettext_lazy("Payment reference"),
        max_length=200,
        help_text=gettext_lazy("Your transfer's reference, as the partner will see it on its bank statement."),
    )


@staff_view(FINANCE)
def statements(request: HttpRequest) -> HttpResponse:
    """The statements, newest month first; GET filters."""
    tenant = current_tenant(request)
    form = StatementFilterForm(request.GET, tenant=tenant)
    form.is_valid()
    params = {k: clean_text(request.GET.get(k, "")) for k in FILTERS}
    context = {
        "form": form,
        "page": page_of(request, form.statements()),
        "query": query_string(**params),
        "filtered": any(params.values()),
        "tz_name": tenant.timezone,
    }
    return render(request, "backoffice/partners/statements.html", context)


def statement_or_404(tenant: Tenant, pk: str) -> CommissionStatement:
    try:
        return statement_get(tenant=tenant, pk=pk)
    except DomainError:
        raise Http404("No such statement.") from None


def statement_page(
    request: HttpRequest, statement: CommissionStatement, *, paid_form: MarkPaidForm | None = None, status: int = 200
) -> HttpResponse:
    tenant = current_tenant(request)
    writer = can_write(request)
    legs = dict(CommissionLeg.choices)
    context = {
        "statement": statement,
        "lines": [{"line": line, "leg": legs.get(line.leg, line.leg)} for line in statement_lines(statement)],
        "can_approve": writer and statement.status == StatementStatus.DRAFT,
        "can_mark_paid": writer and statement.status == StatementStatus.APPROVED,
        "paid_form": paid_form or MarkPaidForm(),
        "tz_name": tenant.timezone,
    }
    return render(request, "backoffice/partners/statement.html", context, status=status)


@staff_view(FINANCE)
def statement_detail(request: HttpRequest, pk: str) -> HttpResponse:
    return statement_page(request, statement_or_404(current_tenant(request), pk))


@staff_view(WRITERS)
@require_POST
def statement_approve_view(request: HttpRequest, pk: str) -> HttpResponse:
    """A draft approved: it never changes again. Refused, said on the page: an earlier month still
    a draft, or a statement already approved."""
    statement = statement_or_404(current_tenant(request), pk)
    try:
        statement_approve(statement=statement, actor=current_actor(request), at=timezone.now())
    except EarlierStatementDraft:
        earlier = (
            statement_list(tenant=statement.partner.tenant, partner=statement.partner)
            .filter(currency=statement.currency, month__lt=statement.month, status=StatementStatus.DRAFT)
            .order_by("month")
            .first()
        )
        month = earlier.month.strftime("%Y-%m") if earlier is not None else ""
        messages.error(request, _("The statement of %(month)s is still a draft: approve it first.") % {"month": month})
    except DomainError:
        messages.error(request, _("Only a draft is approved: this statement is %(status)s.") % _status(statement))
    else:
        messages.success(
            request,
            _("Statement of %(partner)s for %(month)s approved: it will not change again.")
            % {"partner": statement.partner.name, "month": statement.month.strftime("%Y-%m")},
        )
    return redirect("backoffice:commission-statement", pk=statement.pk)


def _status(statement: CommissionStatement) -> dict[str, str]:
    return {"status": str(statement.get_status_display()).lower()}


@staff_view(WRITERS)
@require_POST
def statement_mark_paid_view(request: HttpRequest, pk: str) -> HttpResponse:
    statement = statement_or_404(current_tenant(request), pk)
    form = MarkPaidForm(request.POST)
    if form.is_valid():
        try:
            statement_mark_paid(
                statement=statement,
                reference=form.cleaned_data["reference"],
                actor=current_actor(request),
                at=timezone.now(),
            )
        except InvalidInput:
            form.add_error("reference", _("The payment's reference, 1 to 200 characters."))
        except DomainError:
            messages.error(
                request, _("Only an approved statement is marked paid: this one is %(status)s.") % _status(statement)
            )
            return redirect("backoffice:commission-statement", pk=statement.pk)
        else:
            messages.success(
                request,
                _("Statement of %(partner)s for %(month)s marked paid.")
                % {"partner": statement.partner.name, "month": statement.month.strftime("%Y-%m")},
            )
            return redirect("backoffice:commission-statement", pk=statement.pk)
    return statement_page(request, statement, paid_form=form, status=422)


@staff_view(FINANCE)
def statement_pdf_view(request: HttpRequest, pk: str) -> HttpResponse:
    """The statement's PDF, in the partner's language."""
    statement = statement_or_404(current_tenant(request), pk)
    response = HttpResponse(statement_pdf(statement), content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(True, statement_filename(statement, "pdf"))
    return response


@staff_view(FINANCE)
def statement_csv_view(request: HttpRequest, pk: str) -> HttpResponse:
    statement = statement_or_404(current_tenant(request), pk)
    response = HttpResponse(statement_csv(statement), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, statement_filename(statement, "csv"))
    return response


# --- the commission report ------------------------------------------------------------------------


def month_accruals(*, tenant: Tenant, at: Any, partners: Collection[Any]) -> dict[Any, list[PartnerCommission]]:
    """Each of ``partners``' (ids) commission this month so far (its statement's, once built), by
    partner id: the partners list's column, for the partners of the page shown."""
    out: dict[Any, list[PartnerCommission]] = {}
    month = current_month(tenant=tenant, at=at)
    for row in commission_report(tenant=tenant, month=month, at=at, partners=partners):
        out.setdefault(row.partner.pk, []).append(row)
    return out


@staff_view(FINANCE)
def commission_report_view(request: HttpRequest) -> HttpResponse:
    """A month (``?month=YYYY-MM``; the month before this one by default): each partner's lines, net
    collected, commission and status; "accruing" for a partner whose statement is not built yet."""
    tenant = current_tenant(request)
    now = timezone.now()
    form = forms.Form(request.GET)
    form.fields["month"] = MonthField(label=gettext_lazy("Month"), required=False)
    form.is_valid()
    month = month_of(form.cleaned_data.get("month") or "") or month_before(current_month(tenant=tenant, at=now))
    rows = commission_report(tenant=tenant, month=month, at=now)
    totals: dict[str, dict[str, Decimal]] = {}
    for row in rows:
        total = totals.setdefault(row.currency, {"net_collected": Decimal(0), "commission": Decimal(0)})
        total["net_collected"] += row.net_collected
        total["commission"] += row.total
    statuses = dict(StatementStatus.choices)
    context = {
        "form": form,
        "month": month,
        "rows": [
            {"row": row, "status": statuses.get(row.status) or _("Accruing (not built yet)")}
            for row in sorted(rows, key=lambda r: (r.partner.name, r.currency))
        ],
        "totals": sorted(totals.items()),
        "partners_without": Partner.objects.filter(tenant=tenant).count() - len({r.partner.pk for r in rows}),
    }
    return render(request, "backoffice/partners/report.html", context)
