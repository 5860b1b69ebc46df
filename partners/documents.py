"""A commission statement as documents: the PDF, in the partner's language (WeasyPrint, as
invoices are printed: system fonts, nothing fetched), and the CSV, one row per line. Both print the
stored lines; nothing here computes a commission."""

import csv
import io
from typing import Any

from babel.dates import format_date
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import pgettext

from billing_platform.money import round_minor
from partners.models import CommissionStatement
from partners.statements import month_label, statement_lines

CSV_HEADER = ("invoice", "customer", "leg", "net_collected", "rate", "amount")


def _legs() -> dict[str, str]:
    return {
        "hardware": pgettext("commission statement", "Hardware"),
        "service": pgettext("commission statement", "Service"),
        "usage": pgettext("commission statement", "Usage"),
        "fee": pgettext("commission statement", "Fees"),
    }


def _statuses() -> dict[str, str]:
    return {
        "draft": pgettext("commission statement", "Draft"),
        "approved": pgettext("commission statement", "Approved"),
        "paid": pgettext("commission statement", "Paid"),
    }


def statement_filename(statement: CommissionStatement, extension: str) -> str:
    return "commission-%s-%s-%s.%s" % (
        statement.partner.code,
        month_label(statement.month),
        statement.currency.lower(),
        extension,
    )


def statement_csv(statement: CommissionStatement) -> str:
    """One row per line: the invoice's number, the customer's external id, the leg, and the net
    collected, rate (a percentage) and amount as plain decimals (amounts at the currency's minor
    unit)."""
    currency = statement.currency
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for row in statement_lines(statement):
        writer.writerow(
            (
                row.invoice,
                row.customer,
                row.leg,
                round_minor(row.net_collected, currency),
                f"{row.rate.normalize():f}",
                round_minor(row.amount, currency),
            )
        )
    return out.getvalue()


def statement_context(statement: CommissionStatement) -> dict[str, Any]:
    """What the PDF prints, in the active language."""
    from invoicing.pdf import DocumentFormatter

    language = statement.partner.language or "en"
    fmt = DocumentFormatter(language=language, currency=statement.currency)
    legs = _legs()
    lines = statement_lines(statement)
    tenant = statement.partner.tenant
    return {
        "language": language,
        "seller": tenant.seller_name,
        "partner": statement.partner,
        "month": format_date(statement.month, format="MMMM y", locale=fmt.locale).capitalize(),
        "month_code": month_label(statement.month),
        "status": _statuses().get(statement.status, statement.status),
        "is_draft": statement.status == "draft",
        "currency": statement.currency,
        "built": fmt.day(statement.built_at.date()),
        "paid_reference": statement.paid_reference,
        "rows": [
            {
                "invoice": x.invoice,
                "customer": x.customer_name or x.customer,
                "leg": legs.get(x.leg, x.leg),
                "net_collected": fmt.money(x.net_collected),
                "rate": fmt.percent(x.rate),
                "amount": fmt.money(x.amount),
                "negative": x.amount < 0,
            }
            for x in lines
        ],
        "total": fmt.money(statement.total),
    }


def statement_html(statement: CommissionStatement) -> str:
    with translation.override(statement.partner.language or "en"):
        return render_to_string("partners/statement_pdf.html", statement_context(statement))


def statement_pdf(statement: CommissionStatement) -> bytes:
    """The statement's PDF in the partner's language."""
    from weasyprint import HTML

    pdf = HTML(string=statement_html(statement)).write_pdf()
    assert pdf is not None  # write_pdf returns bytes when no target is given
    return bytes(pdf)
