"""Back-office commission pages (Finance): the queue of partners' commission statements with its
filters (month, status, partner), a statement with its lines, and the commission report of a month
(per partner: its lines, net collected, commission and the statement's status).

The finance roles read them; owners and finance admins approve a statement and mark it paid."""

from datetime import date
from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import Count, QuerySet, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backoffice.access import FINANCE, can_write, current_tenant, staff_view
from backoffice.formatting import query_string
from backoffice.forms import InputRulesMixin
from backoffice.pages import clean_text, page_of
from billing_platform.periods import local_date
from customers.models import Partner
from customers.partners import partner_list
from partners.models import CommissionLine, CommissionStatement, StatementStatus
from tenancy.models import Tenant

FILTERS = ("month", "status", "partner")


def month_of(text: str) -> date | None:
    """``2026-04`` -> 1 April 2026; None for anything else."""
    try:
        year, month = (int(part) for part in text.split("-"))
        return date(year, month, 1) if 1900 <= year <= 9999 else None
    except ValueError:
        return None


class MonthField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            max_length=7, widget=forms.TextInput(attrs={"type": "month", "placeholder": "2026-04"}), **kwargs
        )

    def clean(self, value: Any) -> Any:
        text = super().clean(value)
        if text and month_of(text) is None:
            raise forms.ValidationError(_("Give a month as YYYY-MM, e.g. 2026-04."), code="invalid")
        return text


class StatementFilterForm(InputRulesMixin, forms.Form):
    month = MonthField(label=_("Month"), required=False)
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any status")), *StatementStatus.choices]
    )
    partner = forms.ChoiceField(label=_("Partner"), required=False)

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        field: Any = self.fields["partner"]
        field.choices = [("", _("Any partner")), *((p.code, p.name) for p in partner_list(tenant=tenant))]

    def statements(self) -> QuerySet[CommissionStatement]:
        data = self.cleaned_data
        qs = CommissionStatement.objects.filter(tenant=self.tenant).select_related("partner")
        month = month_of(data.get("month") or "")
        if month is not None:
            qs = qs.filter(month=month)
        if data.get("status"):
            qs = qs.filter(status=data["status"])
        if data.get("partner"):
            qs = qs.filter(partner__code=data["partner"])
        return qs.annotate(line_count=Count("lines")).order_by("-month", "partner__name", "currency")


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
        statement = CommissionStatement.objects.select_related("partner").filter(tenant=tenant, pk=pk).first()
    except (ValueError, forms.ValidationError):
        statement = None
    if statement is None:
        raise Http404("No such statement.")
    return statement


def statement_page(request: HttpRequest, statement: CommissionStatement, **extra: Any) -> HttpResponse:
    tenant = current_tenant(request)
    status = extra.pop("status", 200)
    lines = list(
        CommissionLine.objects.filter(tenant=tenant, statement=statement)
        .select_related("invoice", "customer")
        .order_by("invoice__issue_date", "invoice__number", "leg")
    )
    context = {
        "statement": statement,
        "lines": lines,
        "can_write": can_write(request),
        "tz_name": tenant.timezone,
        **extra,
    }
    return render(request, "backoffice/partners/statement.html", context, status=status)


@staff_view(FINANCE)
def statement_detail(request: HttpRequest, pk: str) -> HttpResponse:
    return statement_page(request, statement_or_404(current_tenant(request), pk))


# --- the commission report ------------------------------------------------------------------------


def report_rows(*, tenant: Tenant, month: date) -> list[dict[str, Any]]:
    """Per partner with a statement for ``month``: its lines, net collected and commission, and the
    statement's status, by partner name."""
    rows = []
    statements = (
        CommissionStatement.objects.filter(tenant=tenant, month=month)
        .select_related("partner")
        .annotate(line_count=Count("lines"), net=Sum("lines__net_collected"))
        .order_by("partner__name", "currency")
    )
    for s in statements:
        rows.append(
            {
                "statement": s,
                "partner": s.partner,
                "lines": s.line_count,
                "net_collected": s.net or Decimal(0),
                "commission": s.total,
                "currency": s.currency,
                "status": s.get_status_display(),
            }
        )
    return rows


@staff_view(FINANCE)
def commission_report(request: HttpRequest) -> HttpResponse:
    """A month (``?month=YYYY-MM``; the month before this one by default): each partner's figures."""
    tenant = current_tenant(request)
    today = local_date(timezone.now(), tenant.timezone)
    first = today.replace(day=1)
    default = first.replace(year=first.year - 1, month=12) if first.month == 1 else first.replace(month=first.month - 1)
    form = forms.Form(request.GET)
    form.fields["month"] = MonthField(label=_("Month"), required=False)
    form.is_valid()
    month = month_of(form.cleaned_data.get("month") or "") or default
    rows = report_rows(tenant=tenant, month=month)
    totals: dict[str, dict[str, Decimal]] = {}
    for row in rows:
        total = totals.setdefault(row["currency"], {"net_collected": Decimal(0), "commission": Decimal(0)})
        total["net_collected"] += row["net_collected"]
        total["commission"] += row["commission"]
    context = {
        "form": form,
        "month": month,
        "rows": rows,
        "totals": sorted(totals.items()),
        "partners_without": Partner.objects.filter(tenant=tenant).count() - len({r["partner"].pk for r in rows}),
    }
    return render(request, "backoffice/partners/report.html", context)
